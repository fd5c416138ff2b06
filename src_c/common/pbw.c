/* pbw.c - protobuf wire-format writer. In: field numbers and values. Out: bytes appended to a
 * dds__buf. Never aborts on allocation failure (the buffer's sticky oom reports it) and never
 * touches buffer memory once oom is set. */
#include "common/pbw.h"

#include <assert.h>
#include <string.h>

size_t dds__pbw_varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

void dds__pbw_varint(dds__buf *b, uint64_t v) {
    if (!dds__buf_reserve(b, 10)) return;
    b->len += put_varint(b->data + b->len, v);
}

void dds__pbw_raw_fixed32(dds__buf *b, uint32_t v) {
    if (!dds__buf_reserve(b, 4)) return;
    uint8_t *p = b->data + b->len;
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    b->len += 4;
}

void dds__pbw_raw_fixed64(dds__buf *b, uint64_t v) {
    if (!dds__buf_reserve(b, 8)) return;
    uint8_t *p = b->data + b->len;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    b->len += 8;
}

void dds__pbw_raw_double(dds__buf *b, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    dds__pbw_raw_fixed64(b, bits);
}

void dds__pbw_tag(dds__buf *b, uint32_t field, unsigned wire_type) {
    assert(field >= 1 && field <= 536870911u && wire_type <= 5);
    dds__pbw_varint(b, ((uint64_t)field << 3) | wire_type);
}

void dds__pbw_uint64(dds__buf *b, uint32_t field, uint64_t v) {
    dds__pbw_tag(b, field, DDS__PB_VARINT);
    dds__pbw_varint(b, v);
}

void dds__pbw_int64(dds__buf *b, uint32_t field, int64_t v) {
    dds__pbw_tag(b, field, DDS__PB_VARINT);
    dds__pbw_varint(b, (uint64_t)v);
}

void dds__pbw_sint32(dds__buf *b, uint32_t field, int32_t v) {
    dds__pbw_tag(b, field, DDS__PB_VARINT);
    dds__pbw_varint(b, dds__pbw_zigzag32(v));
}

void dds__pbw_sint64(dds__buf *b, uint32_t field, int64_t v) {
    dds__pbw_tag(b, field, DDS__PB_VARINT);
    dds__pbw_varint(b, dds__pbw_zigzag64(v));
}

void dds__pbw_fixed32(dds__buf *b, uint32_t field, uint32_t v) {
    dds__pbw_tag(b, field, DDS__PB_I32);
    dds__pbw_raw_fixed32(b, v);
}

void dds__pbw_fixed64(dds__buf *b, uint32_t field, uint64_t v) {
    dds__pbw_tag(b, field, DDS__PB_I64);
    dds__pbw_raw_fixed64(b, v);
}

void dds__pbw_float(dds__buf *b, uint32_t field, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    dds__pbw_fixed32(b, field, bits);
}

void dds__pbw_double(dds__buf *b, uint32_t field, double v) {
    dds__pbw_tag(b, field, DDS__PB_I64);
    dds__pbw_raw_double(b, v);
}

void dds__pbw_bytes(dds__buf *b, uint32_t field, const void *p, size_t n) {
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__pbw_varint(b, n);
    dds__buf_append(b, p, n);
}

size_t dds__pbw_begin(dds__buf *b, uint32_t field) {
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__buf_putc(b, 0);
    return b->len;
}

void dds__pbw_end(dds__buf *b, size_t mark) {
    if (b->oom) return;  /* begin may not even have written its byte: nothing to patch */
    assert(mark >= 1 && mark <= b->len);
    size_t body = b->len - mark;
    if (body < 0x80) {
        b->data[mark - 1] = (uint8_t)body;
        return;
    }
    /* The one reserved byte is too small: shift the body right. Each byte moves at most once
     * per enclosing message that outgrows 127 bytes, cheaper than a sizing pass over every
     * message, and the output stays the canonical (minimal) encoding. */
    size_t n = dds__pbw_varint_size(body);
    if (!dds__buf_reserve(b, n - 1)) return;
    memmove(b->data + mark - 1 + n, b->data + mark, body);
    put_varint(b->data + mark - 1, body);
    b->len += n - 1;
}

/* Packed arrays: the body size is computed first so the length prefix is written once and
 * nothing moves. */
void dds__pbw_packed_uint32(dds__buf *b, uint32_t field, const uint32_t *v, size_t n) {
    if (n == 0) return;
    size_t sz = 0;
    for (size_t i = 0; i < n; i++) sz += dds__pbw_varint_size(v[i]);
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__pbw_varint(b, sz);
    if (!dds__buf_reserve(b, sz)) return;
    for (size_t i = 0; i < n; i++) b->len += put_varint(b->data + b->len, v[i]);
}

void dds__pbw_packed_sint32(dds__buf *b, uint32_t field, const int32_t *v, size_t n) {
    if (n == 0) return;
    size_t sz = 0;
    for (size_t i = 0; i < n; i++) sz += dds__pbw_varint_size(dds__pbw_zigzag32(v[i]));
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__pbw_varint(b, sz);
    if (!dds__buf_reserve(b, sz)) return;
    for (size_t i = 0; i < n; i++) b->len += put_varint(b->data + b->len, dds__pbw_zigzag32(v[i]));
}

void dds__pbw_packed_int64(dds__buf *b, uint32_t field, const int64_t *v, size_t n) {
    if (n == 0) return;
    size_t sz = 0;
    for (size_t i = 0; i < n; i++) sz += dds__pbw_varint_size((uint64_t)v[i]);
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__pbw_varint(b, sz);
    if (!dds__buf_reserve(b, sz)) return;
    for (size_t i = 0; i < n; i++) b->len += put_varint(b->data + b->len, (uint64_t)v[i]);
}

void dds__pbw_packed_double(dds__buf *b, uint32_t field, const double *v, size_t n) {
    if (n == 0) return;
    if (n > SIZE_MAX / 8) {
        b->oom = true;
        return;
    }
    dds__pbw_tag(b, field, DDS__PB_LEN);
    dds__pbw_varint(b, n * 8);
    if (!dds__buf_reserve(b, n * 8)) return;
    for (size_t i = 0; i < n; i++) dds__pbw_raw_double(b, v[i]);
}
