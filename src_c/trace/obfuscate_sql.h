/* obfuscate_sql.h - the SQL obfuscator of "sql" and "cassandra" spans: the Go Agent's legacy
 * tokenizer and its discard, replace and grouping filters (pkg/obfuscate/sql.go, the path the
 * Rust libdd-trace-obfuscation default config mirrors). Literals become '?', comments and
 * aliases go, tokens are re-joined with single spaces. Loop thread, request arena only. */
#ifndef DDS_TRACE_OBFUSCATE_SQL_H
#define DDS_TRACE_OBFUSCATE_SQL_H
#include <stdbool.h>

#include "common/arena.h"
#include "common/slice.h"

/* meta["db.type"] chooses the dialect: only '#' (a comment, an identifier for mssql, JSON
 * operators for postgresql), '@', '?' and "->" depend on it. */
typedef enum dds__sql_dbms {
    DDS__SQL_GENERIC = 0,
    DDS__SQL_MSSQL,
    DDS__SQL_MYSQL,
    DDS__SQL_POSTGRESQL,
    DDS__SQL_ORACLE,
} dds__sql_dbms;

/* "mssql", "mysql", "postgresql", "oracle" (ASCII case-insensitive); anything else is generic. */
dds__sql_dbms dds__sql_dbms_from(dds__slice db_type);

typedef enum dds__sql_result {
    DDS__SQL_OK = 0,            /* *out is the obfuscated query (arena memory) */
    DDS__SQL_NON_PARSABLE = 1,  /* the Go tokenizer fails on it, or nothing is left (only comments):
                                   *out is "Non-parsable SQL query", as the Go Agent sets */
    DDS__SQL_OOM = -1,          /* the arena is exhausted; *out untouched */
} dds__sql_result;

#define DDS__SQL_NON_PARSABLE_TEXT "Non-parsable SQL query"

/*
 * Obfuscate in[0..len) (not NUL-terminated; never read past len). Linear in the input: each
 * byte is read a bounded number of times, at most twice over (a string with a backslash that
 * fails to tokenize is retried with backslashes taken literally, as Go does). An OK result is at
 * most 3 * len + 16 bytes and lives in the arena; the NON_PARSABLE text is static. Any bytes are accepted: invalid UTF-8 is a
 * NON_PARSABLE result, never a crash. Not thread-affine: any thread with its own arena.
 */
dds__sql_result dds__obfuscate_sql(dds__slice in, dds__sql_dbms dbms, dds__arena *arena, dds__slice *out);

/*
 * A cache of results, as the Go Agent keeps one (apm_config.obfuscation.cache, on by default):
 * tracers send the same parameterized queries over and over. The result is a function of the
 * query and the dialect alone, so a hit gives exactly what dds__obfuscate_sql would (an OK
 * result copied into the caller's arena). Direct-mapped (DDS__SQL_CACHE_SLOTS slots, a new
 * query replaces the one in its slot), queries up to DDS__SQL_CACHE_MAX_QUERY bytes, entries
 * within budget bytes (NULL from new when out of memory: callers then go without). One thread
 * at a time.
 */
#define DDS__SQL_CACHE_SLOTS 4096
#define DDS__SQL_CACHE_MAX_QUERY 4096
typedef struct dds__sql_cache dds__sql_cache;
dds__sql_cache *dds__sql_cache_new(size_t budget);
void dds__sql_cache_free(dds__sql_cache *c);
size_t dds__sql_cache_bytes(const dds__sql_cache *c);  /* entry bytes held */
/* dds__obfuscate_sql through the cache (c may be NULL: no cache). */
dds__sql_result dds__obfuscate_sql_cached(dds__sql_cache *c, dds__slice in, dds__sql_dbms dbms, dds__arena *arena,
                                          dds__slice *out);
#endif
