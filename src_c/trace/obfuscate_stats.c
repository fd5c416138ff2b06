/* obfuscate_stats.c - stats group resources. In: a client stats body (msgpack). Out: the same
 * bytes with the Resource strings of sql/cassandra/redis/valkey groups rewritten, copied once
 * into the request arena; everything else passes through untouched and in order. Walks the
 * body once with the bounded msgpack reader; never trusts a length it has not checked. */
#include "trace/obfuscate_stats.h"

#include <stdio.h>
#include <string.h>

#include "common/msgpack.h"
#include "trace/obfuscate_redis.h"
#include "trace/obfuscate_sql.h"

typedef struct writer {
    dds__arena *arena;
    const uint8_t *body;
    size_t copied;          /* body bytes already in out */
    uint8_t *p;
    size_t len, cap;
    bool oom;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->oom || n == 0) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n + 256;
        uint8_t *np = dds__arena_alloc(w->arena, cap);
        if (!np) {
            w->oom = true;
            return;
        }
        if (w->len) memcpy(np, w->p, w->len);
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

static void put_str(writer *w, dds__slice s) {
    uint8_t h[5];
    size_t hn;
    if (s.len < 32) {
        h[0] = (uint8_t)(0xa0 | s.len);
        hn = 1;
    } else if (s.len <= 0xff) {
        h[0] = 0xd9;
        h[1] = (uint8_t)s.len;
        hn = 2;
    } else if (s.len <= 0xffff) {
        h[0] = 0xda;
        h[1] = (uint8_t)(s.len >> 8);
        h[2] = (uint8_t)s.len;
        hn = 3;
    } else {
        h[0] = 0xdb;
        h[1] = (uint8_t)(s.len >> 24);
        h[2] = (uint8_t)(s.len >> 16);
        h[3] = (uint8_t)(s.len >> 8);
        h[4] = (uint8_t)s.len;
        hn = 5;
    }
    put(w, h, hn);
    put(w, s.ptr, s.len);
}

static bool is(dds__slice s, const char *lit) { return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0; }

static size_t at(const dds__mp_reader *r) { return (size_t)(r->p - r->start); }

/* The new resource of one group, or false on arena exhaustion. *changed when it differs. */
static bool rewrite(const dds__trace_process_config *cfg, dds__slice type, dds__slice dbtype, dds__slice res,
                    dds__arena *arena, dds__slice *out, bool *changed) {
    *out = res;
    if ((is(type, "sql") || is(type, "cassandra")) && res.len > 0) {
        if (dds__obfuscate_sql(res, dds__sql_dbms_from(dbtype), arena, out) == DDS__SQL_OOM) return false;
    } else if (is(type, "redis") || is(type, "valkey")) {
        if (!dds__redis_quantize(res, arena, out)) return false;
    }
    const dds__replace_rules *rs = cfg->replace_rules;
    for (size_t i = 0; rs && i < rs->n; i++)
        if (rs->rule[i].target != DDS__REPLACE_TAG && !dds__replace_apply(&rs->rule[i], *out, arena, NULL, out)) return false;
    *changed = !dds__slice_eq(*out, res);
    return true;
}

/* One ClientGroupedStats map: find Type, DBType and the Resource's byte range, then rewrite. */
static long group(dds__mp_reader *r, const dds__trace_process_config *cfg, writer *w) {
    dds__slice type = {0}, dbtype = {0}, res = {0};
    size_t res_lo = 0, res_hi = 0;
    bool have_res = false;
    uint32_t n = dds__mp_read_map(r);
    for (uint32_t i = 0; i < n && dds__mp_ok(r); i++) {
        r->ctx = "stats group key";
        dds__slice k = dds__mp_read_str(r);
        if (is(k, "Resource") && dds__mp_peek(r) == DDS__MP_STR) {
            res_lo = at(r);
            r->ctx = "stats group Resource";
            res = dds__mp_read_str(r);
            res_hi = at(r);
            have_res = true;
        } else if (is(k, "Type") && dds__mp_peek(r) == DDS__MP_STR) {
            type = dds__mp_read_str(r);
        } else if (is(k, "DBType") && dds__mp_peek(r) == DDS__MP_STR) {
            dbtype = dds__mp_read_str(r);
        } else {
            dds__mp_skip(r);
        }
    }
    if (!dds__mp_ok(r) || !have_res) return 0;
    dds__slice nres;
    bool changed = false;
    if (!rewrite(cfg, type, dbtype, res, w->arena, &nres, &changed)) return -2;
    if (!changed) return 0;
    put(w, w->body + w->copied, res_lo - w->copied);
    put_str(w, nres);
    w->copied = res_hi;
    return w->oom ? -2 : 1;
}

long dds__trace_stats_obfuscate(const uint8_t *body, size_t len, const dds__trace_process_config *cfg,
                                dds__arena *arena, const uint8_t **out, size_t *out_len, char *err, size_t errcap) {
    dds__mp_reader r;
    dds__mp_reader_init(&r, body, len, arena);
    writer w = {.arena = arena, .body = body};
    long changed = 0;
    r.ctx = "stats payload";
    uint32_t n = dds__mp_read_map(&r);
    for (uint32_t i = 0; i < n && dds__mp_ok(&r); i++) {
        r.ctx = "stats payload key";
        dds__slice k = dds__mp_read_str(&r);
        if (!is(k, "Stats") || dds__mp_peek(&r) != DDS__MP_ARRAY) {
            dds__mp_skip(&r);
            continue;
        }
        uint32_t nb = dds__mp_read_array(&r);
        for (uint32_t b = 0; b < nb && dds__mp_ok(&r); b++) {
            r.ctx = "stats bucket";
            uint32_t nk = dds__mp_read_map(&r);
            for (uint32_t j = 0; j < nk && dds__mp_ok(&r); j++) {
                r.ctx = "stats bucket key";
                dds__slice bk = dds__mp_read_str(&r);
                if (!is(bk, "Stats") || dds__mp_peek(&r) != DDS__MP_ARRAY) {
                    dds__mp_skip(&r);
                    continue;
                }
                uint32_t ng = dds__mp_read_array(&r);
                for (uint32_t g = 0; g < ng && dds__mp_ok(&r); g++) {
                    r.ctx = "stats group";
                    long rc = group(&r, cfg, &w);
                    if (rc < 0) return rc;
                    changed += rc;
                }
            }
        }
    }
    if (!dds__mp_ok(&r)) {
        if (err && errcap) snprintf(err, errcap, "%s %s", r.err_ctx ? r.err_ctx : "stats body", r.err);
        return -1;
    }
    if (changed == 0) {
        *out = body;
        *out_len = len;
        return 0;
    }
    put(&w, body + w.copied, len - w.copied);
    if (w.oom) return -2;
    *out = w.p;
    *out_len = w.len;
    return changed;
}
