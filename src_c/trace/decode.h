/* decode.h - tracer payload decoders: /v0.3 and /v0.4 (array of traces of span maps), /v0.5
 * (string table + 12-item span arrays), /v0.7 (TracerPayload map). In: the request body. Out:
 * a dds__tracer_payload whose strings point into the body (zero copy) or into the arena (when
 * repaired). Lenient as tracers need (PROTOCOL.md section 4), strict on lengths: every declared
 * count is checked against the bytes left before anything is allocated. */
#ifndef DDS_TRACE_DECODE_H
#define DDS_TRACE_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "trace/span.h"

typedef enum dds__trace_format {
    DDS__TRACE_V04 = 4,  /* also /v0.3/traces */
    DDS__TRACE_V05 = 5,
    DDS__TRACE_V07 = 7,
} dds__trace_format;

/* 0, or -1 with a short reason in err ("v0.5 string index 7 out of range (table has 3)").
 * On failure *out is unusable (the arena may hold partial data: reset it). */
int dds__trace_decode(dds__trace_format fmt, const uint8_t *body, size_t len, dds__arena *arena,
                      dds__tracer_payload *out, char *err, size_t errcap);
#endif
