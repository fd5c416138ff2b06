/* obfuscate_stats.h - client-computed stats (/v0.6/stats) get the span obfuscators too: the
 * Go Agent rewrites each stats group's Resource as it rewrites the spans' (obfuscateStatsGroup,
 * ReplaceStatsGroup), so that stats and spans carry the same resource and no raw SQL reaches
 * Datadog through the stats. Loop thread, request arena only. */
#ifndef DDS_TRACE_OBFUSCATE_STATS_H
#define DDS_TRACE_OBFUSCATE_STATS_H
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "trace/process.h"

/*
 * body[0..len): a msgpack ClientStatsPayload {..., "Stats": [{..., "Stats": [group...]}]}. Each
 * group whose "Type" is sql or cassandra gets its "Resource" obfuscated as a span's (dialect
 * from "DBType"), redis or valkey quantized, and then the "resource.name" and "*" rules of
 * cfg->replace_rules applied. *out is body itself when nothing changed, else a new msgpack body
 * in the arena, the same but for those strings. Returns the number of groups rewritten (>= 0),
 * or -1 with err filled when the body is not such a payload (the caller answers 400), or -2 when
 * the arena is exhausted. Never reads past len.
 */
long dds__trace_stats_obfuscate(const uint8_t *body, size_t len, const dds__trace_process_config *cfg,
                                dds__arena *arena, const uint8_t **out, size_t *out_len, char *err, size_t errcap);
#endif
