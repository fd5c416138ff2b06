/* clock.h - time helpers. Wall clock for aggregation buckets and payload timestamps, monotonic
 * clock for timeouts and backoff. */
#ifndef DDS_COMMON_CLOCK_H
#define DDS_COMMON_CLOCK_H
#include <stdint.h>
#include <time.h>

static inline int64_t dds__wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}
static inline int64_t dds__wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline int64_t dds__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif
