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
#endif
