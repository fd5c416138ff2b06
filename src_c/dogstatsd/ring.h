/* ring.h - a bounded single-producer single-consumer byte ring of datagrams: the receive thread
 * of one DogStatsD socket copies each datagram in, the loop thread parses it in place. Records
 * are variable-sized (an 8-byte header + the datagram, padded to 8), so small datagrams cost
 * their size and not a whole buffer_size slot: a 4 MiB ring holds ~6,800 one-metric datagrams
 * of bench/dsdgen.h's realistic mix (611 bytes on average, many tags), ~130,000 bare counters.
 * All memory is allocated once by dds__ring_new; nothing here allocates, locks or blocks. */
#ifndef DDS_DOGSTATSD_RING_H
#define DDS_DOGSTATSD_RING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dds__ring dds__ring;

/* Record flags. */
#define DDS__RING_TRUNCATED 1u /* the datagram did not fit the read buffer: no bytes, its length */

/* Bytes one record of len bytes takes in the ring (header and padding included). */
size_t dds__ring_record_bytes(size_t len);

/* capacity_bytes is rounded down to a multiple of 8; it must hold at least two records of
 * max_len bytes (a wrap can waste up to one record's worth at the end). NULL when too small or
 * out of memory. */
dds__ring *dds__ring_new(size_t capacity_bytes, size_t max_len);
void dds__ring_free(dds__ring *r); /* accepts NULL; no thread may use it any more */
size_t dds__ring_capacity(const dds__ring *r);

/* ---- producer (one thread) ---- */
/* Copy one datagram in (len <= max_len; with DDS__RING_TRUNCATED, data may be NULL and only len
 * is kept). Not visible to the consumer until dds__ring_publish. false: no room (the caller
 * counts the drop). */
bool dds__ring_push(dds__ring *r, const void *data, size_t len, uint32_t flags);
/* Make what was pushed since the last publish visible. Returns true when the consumer had
 * consumed everything before this publish: it may be idle, so it must be woken. The check is
 * paired with the one in dds__ring_consumer_idle (sequentially consistent on both sides), so a
 * wake-up is never missed: either this returns true or the consumer sees the new records. */
bool dds__ring_publish(dds__ring *r);

/* ---- consumer (one thread) ---- */
/* The next published record, or false when none. *data points into the ring and stays valid
 * until dds__ring_release (the producer never writes over an unreleased record). */
bool dds__ring_peek(dds__ring *r, const char **data, size_t *len, uint32_t *flags);
/* Done with the record dds__ring_peek returned: its bytes go back to the producer. */
void dds__ring_release(dds__ring *r);
/* Call before going idle, after the last release: true when records were published meanwhile
 * (keep consuming), false when the ring is empty and the next publish returns true. */
bool dds__ring_consumer_idle_check(dds__ring *r);
/* Published and not yet released records' bytes (any thread; a snapshot). */
size_t dds__ring_used(const dds__ring *r);
#endif
