/* process.h - what the trace agent does to spans between decoding and forwarding: the Go
 * agent's normalization and trace validation, chunk priority and origin, top-level marking,
 * enrichment (cloud origin, function name, DD_TAGS, DD_ENV, the platform's span tags),
 * credit-card obfuscation in meta values, http.url query-string and digit-segment removal,
 * SQL/redis/valkey/memcached obfuscation (obfuscate_sql.c, obfuscate_redis.c) and
 * DD_APM_REPLACE_TAGS (PROTOCOL.md sections 4 and 6). In place, on
 * the loop thread, allocating only from the request's arena. */
#ifndef DDS_TRACE_PROCESS_H
#define DDS_TRACE_PROCESS_H
#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/counter.h"
#include "common/replace_rules.h"
#include "trace/obfuscate_sql.h"
#include "trace/span.h"

typedef struct dds__trace_process_config {
    dds__slice lang;                  /* Datadog-Meta-Lang, for "unnamed-<lang>-service" */
    bool client_computed_top_level;   /* Datadog-Client-Computed-Top-Level header set */
    dds__slice default_env;           /* DD_ENV: used when the payload and spans carry none */
    const char *cloud_origin;         /* "lambda", ... or NULL: root span gets _dd.origin, origin */
    dds__slice function_name;         /* root span meta functionname, when non-empty */
    dds__slice function_tags;         /* DD_TAGS normalized (dds__config_function_tags), as the
                                         tracer payload tag _dd.tags.function; empty = none */
    /* The platform's span tags (the Rust binary's mini-agent, Azure and Google metadata), set or
     * replaced in each span's meta: */
    const dds__kv *span_tags;         /* every span: _dd.serverless_compat_version, asa.*, gcrfx.* */
    uint32_t nspan_tags;
    const dds__kv *aas_tags;          /* Azure Functions aas.* tags: every span not named azure.apim */
    uint32_t naas_tags;
    bool remove_query_string;         /* DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING */
    bool remove_paths_with_digits;    /* DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS */
    bool obfuscate_credit_cards;      /* Luhn-valid card numbers in meta values become "?" */
    bool redis_obfuscate;             /* redis.raw_command obfuscated (the resource is always quantized) */
    bool redis_remove_all_args;       /* ... as "CMD ?" */
    bool valkey_obfuscate;            /* valkey.raw_command, likewise */
    bool valkey_remove_all_args;
    bool memcached_obfuscate;         /* memcached.command rewritten: */
    bool memcached_keep_command;      /* ... to its first line (true) or to "" (false, the Go Agent's default) */
    bool remove_stack_traces;         /* error.stack becomes "?" */
    const dds__replace_rules *replace_rules; /* DD_APM_REPLACE_TAGS, NULL for none */
    dds__sql_cache *sql_cache;        /* SQL results across requests (obfuscate_sql.h), NULL for none:
                                         used by one thread at a time, whoever processes */
    int64_t now_ns;
} dds__trace_process_config;

typedef struct dds__trace_process_counters {
    dds__counter traces_dropped;      /* chunks dropped by validation (trace_id 0, span_id 0, mixed ids) */
    dds__counter spans_dropped;       /* spans in those chunks */
    dds__counter spans_normalized;    /* spans with at least one field fixed */
    dds__counter spans_obfuscated;    /* sql/cassandra/redis/valkey/memcached spans an obfuscator rewrote */
    dds__counter sql_non_parsable;    /* SQL resources the tokenizer rejected ("Non-parsable SQL query") */
} dds__trace_process_counters;

/* Process tp in place; dropped chunks are removed from tp->chunks. Returns spans kept. */
uint32_t dds__trace_process(dds__tracer_payload *tp, const dds__trace_process_config *cfg, dds__arena *arena,
                            dds__trace_process_counters *counters);
#endif
