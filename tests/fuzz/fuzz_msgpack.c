/* fuzz_msgpack.c - the msgpack reader on arbitrary bytes: typed reads chosen by the input's own
 * type bytes, and skip. Every declared length must be checked before use; depth is bounded. */
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/msgpack.h"

static void walk(dds__mp_reader *r, int depth) {
    if (depth > 80) {
        dds__mp_skip(r);
        return;
    }
    switch (dds__mp_peek(r)) {
    case DDS__MP_ARRAY: {
        uint32_t n = dds__mp_read_array(r);
        for (uint32_t i = 0; i < n && dds__mp_ok(r); i++) walk(r, depth + 1);
        break;
    }
    case DDS__MP_MAP: {
        uint32_t n = dds__mp_read_map(r);
        for (uint32_t i = 0; i < n && dds__mp_ok(r); i++) {
            (void)dds__mp_read_bytes(r);
            walk(r, depth + 1);
        }
        break;
    }
    case DDS__MP_STR:
    case DDS__MP_BIN: (void)dds__mp_read_str(r); break;
    case DDS__MP_INT: (void)dds__mp_read_i64(r); break;
    case DDS__MP_UINT: (void)dds__mp_read_u64(r); break;
    case DDS__MP_FLOAT32:
    case DDS__MP_FLOAT64: (void)dds__mp_read_f64(r); break;
    case DDS__MP_BOOL: (void)dds__mp_read_bool(r); break;
    default: dds__mp_skip(r); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    dds__arena arena;
    dds__arena_init(&arena, 4096, 1u << 20);
    dds__mp_reader r;
    dds__mp_reader_init(&r, copy, size, &arena);
    while (dds__mp_ok(&r) && dds__mp_left(&r) > 0) walk(&r, 0);
    dds__mp_reader_init(&r, copy, size, &arena);
    while (dds__mp_ok(&r) && dds__mp_left(&r) > 0) dds__mp_skip(&r);
    dds__arena_free(&arena);
    free(copy);
    return 0;
}
