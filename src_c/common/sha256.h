/* sha256.h - SHA-256 (FIPS 180-4), written here so the core needs no crypto library. Used for
 * the trace receiver's Datadog-Agent-State header (the hex digest of the /info body), not for
 * secrets: no constant-time or key-wiping guarantees. Pure functions and a caller-owned state;
 * any thread. */
#ifndef DDS_COMMON_SHA256_H
#define DDS_COMMON_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define DDS__SHA256_DIGEST_LEN 32
#define DDS__SHA256_HEX_LEN 64  /* without the terminating NUL */

typedef struct dds__sha256 {
    uint32_t h[8];
    uint64_t total_len;   /* bytes hashed so far */
    uint8_t block[64];    /* the partial block not yet compressed */
    size_t block_len;
} dds__sha256;

void dds__sha256_init(dds__sha256 *s);
/* data may be NULL when n == 0. */
void dds__sha256_update(dds__sha256 *s, const void *data, size_t n);
/* Writes the digest; s must be re-initialised before another use. */
void dds__sha256_final(dds__sha256 *s, uint8_t out[DDS__SHA256_DIGEST_LEN]);

/* One-shot helpers. hex gets 64 lowercase hex digits and a NUL. */
void dds__sha256_digest(const void *data, size_t n, uint8_t out[DDS__SHA256_DIGEST_LEN]);
void dds__sha256_hex(const void *data, size_t n, char hex[DDS__SHA256_HEX_LEN + 1]);
#endif
