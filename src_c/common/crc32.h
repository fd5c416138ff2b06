/* crc32.h - the CRC-32 of gzip (zlib's crc32(): same value, same chaining: start from 0, pass
 * each result back in). On x86-64 CPUs with PCLMULQDQ, inputs of 64 bytes and more are folded
 * 64 bytes at a time with carry-less multiplies (about 5x zlib 1.2.13's table code here); other
 * CPUs and short inputs use zlib's. Any thread; no state but a CPU check done once. */
#ifndef DDS_COMMON_CRC32_H
#define DDS_COMMON_CRC32_H
#include <stddef.h>
#include <stdint.h>

uint32_t dds__crc32(uint32_t crc, const uint8_t *p, size_t n);
#endif
