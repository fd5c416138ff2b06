/* compress.c - one-shot zstd and gzip. In: a body. Out: a new malloc'd compressed block. Never
 * leaves anything allocated on failure and never aborts. */
#include "transport/compress.h"

#include <limits.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

/* The bound-sized block is often several times the output: hand back only what is used, since
 * payloads can sit in the retry queue, which is bounded in bytes. */
static uint8_t *shrink(uint8_t *p, size_t len) {
    uint8_t *q = realloc(p, len ? len : 1);
    return q ? q : p;
}

int dds__zstd_compress(const uint8_t *in, size_t n, int level, uint8_t **out, size_t *out_len) {
    if (level <= 0) level = 1;
    if (level > ZSTD_maxCLevel()) level = ZSTD_maxCLevel();
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound)) return -1;
    uint8_t *buf = malloc(bound);
    if (!buf) return -1;
    size_t r = ZSTD_compress(buf, bound, in, n, level);
    if (ZSTD_isError(r)) {
        free(buf);
        return -1;
    }
    *out = shrink(buf, r);
    *out_len = r;
    return 0;
}

int dds__gzip_compress(const uint8_t *in, size_t n, int level, uint8_t **out, size_t *out_len) {
    if (level <= 0) level = 6;
    if (level > 9) level = 9;
    /* zlib counts in uInt; bodies are a few MiB, so one call covers them. */
    if (n > UINT_MAX / 2) return -1;
    z_stream zs = {0};
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    uLong bound = deflateBound(&zs, (uLong)n);
    uint8_t *buf = malloc(bound);
    if (!buf) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = shrink(buf, len);
    *out_len = len;
    return 0;
}
