/* compress.h - one-shot compression for payload bodies. */
#ifndef DDS_TRANSPORT_COMPRESS_H
#define DDS_TRANSPORT_COMPRESS_H
#include <stddef.h>
#include <stdint.h>

/* Compress in[0..n) into a new malloc'd block (*out, *out_len). 0 on success, -1 on failure
 * (nothing allocated). zstd level 1 and gzip level 6 unless a level is given (<=0 = default). */
int dds__zstd_compress(const uint8_t *in, size_t n, int level, uint8_t **out, size_t *out_len);
int dds__gzip_compress(const uint8_t *in, size_t n, int level, uint8_t **out, size_t *out_len);
#endif
