/* pbw.h - protobuf writer: appends wire-format fields to a dds__buf (sticky oom, check once at
 * the end). Field writers always write: omitting proto3 default values is the caller's choice.
 * Nested messages and packed repeated fields: mark = dds__pbw_begin(b, field); write the body
 * (fields, or raw elements for packed); dds__pbw_end(b, mark). Begin/end pairs nest.
 * Single-threaded, no allocation of its own beyond the buffer. */
#ifndef DDS_COMMON_PBW_H
#define DDS_COMMON_PBW_H
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum { DDS__PB_VARINT = 0, DDS__PB_I64 = 1, DDS__PB_LEN = 2, DDS__PB_I32 = 5 };

/* Bytes a varint of v takes (1..10). */
size_t dds__pbw_varint_size(uint64_t v);

static inline uint32_t dds__pbw_zigzag32(int32_t v) {
    uint32_t u = (uint32_t)v;
    return (u << 1) ^ (0u - (u >> 31));
}
static inline uint64_t dds__pbw_zigzag64(int64_t v) {
    uint64_t u = (uint64_t)v;
    return (u << 1) ^ (UINT64_C(0) - (u >> 63));
}

/* Raw values, without a tag: for packed bodies and hand-built messages. */
void dds__pbw_varint(dds__buf *b, uint64_t v);
void dds__pbw_raw_fixed32(dds__buf *b, uint32_t v);  /* little endian */
void dds__pbw_raw_fixed64(dds__buf *b, uint64_t v);
void dds__pbw_raw_double(dds__buf *b, double v);
void dds__pbw_tag(dds__buf *b, uint32_t field, unsigned wire_type);

/* One field each. uint64 also serves uint32, bool and non-negative enums; int64 serves int32
 * and enums (a negative value takes 10 bytes, as protobuf sign-extends int32 too). */
void dds__pbw_uint64(dds__buf *b, uint32_t field, uint64_t v);
void dds__pbw_int64(dds__buf *b, uint32_t field, int64_t v);
void dds__pbw_sint32(dds__buf *b, uint32_t field, int32_t v);
void dds__pbw_sint64(dds__buf *b, uint32_t field, int64_t v);
void dds__pbw_fixed32(dds__buf *b, uint32_t field, uint32_t v);
void dds__pbw_fixed64(dds__buf *b, uint32_t field, uint64_t v);
void dds__pbw_float(dds__buf *b, uint32_t field, float v);
void dds__pbw_double(dds__buf *b, uint32_t field, double v);
/* string and bytes: p may be NULL when n == 0. */
void dds__pbw_bytes(dds__buf *b, uint32_t field, const void *p, size_t n);

/* Length-delimited field whose length is not known yet: writes the tag and one length byte
 * and returns the mark dds__pbw_end needs. dds__pbw_end patches the length, moving the body
 * when the length needs more than one byte (bodies under 128 bytes, the common case, never
 * move). Every field written in between belongs to the nested message. */
size_t dds__pbw_begin(dds__buf *b, uint32_t field);
void dds__pbw_end(dds__buf *b, size_t mark);

/* Packed repeated fields from arrays (n == 0 writes nothing, as proto3 does). */
void dds__pbw_packed_uint32(dds__buf *b, uint32_t field, const uint32_t *v, size_t n);
void dds__pbw_packed_sint32(dds__buf *b, uint32_t field, const int32_t *v, size_t n);
void dds__pbw_packed_int64(dds__buf *b, uint32_t field, const int64_t *v, size_t n);
void dds__pbw_packed_double(dds__buf *b, uint32_t field, const double *v, size_t n);
#endif
