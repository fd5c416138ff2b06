/* peer_tags.h - the peer tags of agent-computed trace stats: the keys whose values describe the
 * remote end of a client, producer or consumer span (the Rust agent's peer_tags.rs, 43 keys from
 * its peer_tags_mappings.json), and the IP-address quantization applied to their values so that
 * addresses do not explode the stats' cardinality. Pure functions, any thread. */
#ifndef DDS_TRACE_PEER_TAGS_H
#define DDS_TRACE_PEER_TAGS_H
#include <stddef.h>

#include "common/buf.h"
#include "common/slice.h"

/* Sorted (byte order), without duplicates: the order of PeerTags in a stats group and of
 * /info "peer_tags". */
extern const char *const dds__peer_tag_keys[];
extern const size_t dds__peer_tag_nkeys;

/* Append v to out with every IP address of its comma-separated entries replaced by
 * "blocked-ip-address" (a scheme or "ip-" prefix and a port or host suffix kept; loopback and
 * the cloud metadata addresses kept), and repeated entries dropped (first one kept). An entry
 * that is not an IP address is kept as is. */
void dds__peer_tag_quantize(dds__slice v, dds__buf *out);
#endif
