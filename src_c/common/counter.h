/* counter.h - statistics counters written by one thread (the loop) and read by any thread.
 * Relaxed atomics: plain loads and stores on x86, no lock prefix on the hot path, no data race. */
#ifndef DDS_COMMON_COUNTER_H
#define DDS_COMMON_COUNTER_H
#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t dds__counter;

/* Single writer only: load + store, not fetch_add. */
static inline void dds__counter_add(dds__counter *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void dds__counter_set(dds__counter *c, uint64_t v) {
    atomic_store_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t dds__counter_get(const dds__counter *c) {
    return atomic_load_explicit((dds__counter *)c, memory_order_relaxed);
}
#endif
