/* fuzz_sql.c - arbitrary bytes through the span obfuscators: the SQL tokenizer in every dialect
 * (the first byte picks it), redis quantization, obfuscation and remove-all-args, the
 * memcached command, and the client stats rewriter (the bytes as a msgpack stats body).
 * Checks: no over-read (exact-size copy), a result every time, outputs within their documented
 * bounds, and an untouched stats body handed back as is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "trace/obfuscate_redis.h"
#include "trace/obfuscate_sql.h"
#include "trace/obfuscate_stats.h"

static dds__arena arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    dds__sql_dbms dbms = (dds__sql_dbms)(data[0] % (DDS__SQL_ORACLE + 1));
    data++;
    size--;
    char *in = malloc(size ? size : 1);
    if (size) memcpy(in, data, size);
    dds__slice s = {in, size}, out;
    dds__arena_init(&arena, 0, 64u << 20);

    dds__sql_result r = dds__obfuscate_sql(s, dbms, &arena, &out);
    if (r == DDS__SQL_OOM) abort();
    if (out.len > 3 * size + 16 + sizeof(DDS__SQL_NON_PARSABLE_TEXT)) abort();
    if (r == DDS__SQL_OK && out.len == 0) abort();
    if (r == DDS__SQL_NON_PARSABLE && (out.len != sizeof(DDS__SQL_NON_PARSABLE_TEXT) - 1 ||
                                       memcmp(out.ptr, DDS__SQL_NON_PARSABLE_TEXT, out.len) != 0))
        abort();

    dds__slice q, t;
    if (!dds__redis_quantize(s, &arena, &q) || q.len > size + 4) abort();
    if (!dds__redis_obfuscate(s, &arena, &t)) abort();
    if (!dds__redis_remove_all_args(s, &arena, &t) || t.len > 2 * size + 8) abort();
    dds__slice m = dds__memcached_command(s);
    if (m.len > size || (m.len && (m.ptr < in || m.ptr + m.len > in + size))) abort();

    const uint8_t *sb;
    size_t sl;
    char err[160];
    dds__trace_process_config cfg = {0};
    long rc = dds__trace_stats_obfuscate((const uint8_t *)in, size, &cfg, &arena, &sb, &sl, err, sizeof(err));
    if (rc < -1 || (rc == 0 && (sb != (const uint8_t *)in || sl != size))) abort();

    dds__arena_free(&arena);
    free(in);
    return 0;
}
