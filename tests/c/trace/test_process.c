/* test_process.c - span processing: one table row per normalization rule (Go agent
 * normalizer/truncator), chunk drops, priority and origin, top-level, enrichment, credit cards,
 * http.url, UTF-8-safe truncation, and arena use (inputs read-only, allocation failures). */
#include <stdarg.h>

#include "test.h"
#include "trace/process.h"

#define NOW INT64_C(1700000000000000000)
#define T0 INT64_C(1699999999000000000)
#define Y2K INT64_C(946684800000000000)

/* ---- read-only inputs ending at a guard page: an over-read or a write through them crashes ---- */

static struct { char *p; size_t n; } ro_list[512];
static int ro_count;

static dds__slice ro_n(const char *s, size_t n) {
    char *p = test_guarded_copy(s, n);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (n + page - 1) / page;
    if (pages == 0) pages = 1;
    mprotect(p + n - pages * page, pages * page, PROT_READ);
    if (ro_count < (int)(sizeof(ro_list) / sizeof(ro_list[0]))) ro_list[ro_count++] = (typeof(ro_list[0])){p, n};
    return dds__slice_make(p, n);
}
static dds__slice ro(const char *s) { return ro_n(s, strlen(s)); }
static void ro_free_all(void) {
    while (ro_count > 0) {
        ro_count--;
        test_guarded_free(ro_list[ro_count].p, ro_list[ro_count].n);
    }
}

/* ---- builders (records as a decoder would leave them: arrays in the request arena) ---------- */

static dds__span span3(uint64_t tid, uint64_t sid, uint64_t pid) {
    return (dds__span){.service = DDS__SLICE_LIT("svc"), .name = DDS__SLICE_LIT("op"),
                       .resource = DDS__SLICE_LIT("res"), .type = DDS__SLICE_LIT("custom"),
                       .trace_id = tid, .span_id = sid, .parent_id = pid, .start = T0, .duration = 1000};
}

/* n key/value C strings. */
static void meta(dds__arena *a, dds__span *s, uint32_t n, ...) {
    va_list ap;
    va_start(ap, n);
    s->meta = dds__arena_calloc(a, n ? n : 1, sizeof(dds__kv));
    s->nmeta = n;
    for (uint32_t i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        s->meta[i] = (dds__kv){dds__slice_cstr(k), dds__slice_cstr(v)};
    }
    va_end(ap);
}

static void metric(dds__arena *a, dds__span *s, const char *k, double v) {
    dds__kvd *m = dds__arena_calloc(a, s->nmetrics + 1, sizeof(*m));
    if (s->nmetrics) memcpy(m, s->metrics, s->nmetrics * sizeof(*m));
    m[s->nmetrics] = (dds__kvd){dds__slice_cstr(k), v};
    s->metrics = m;
    s->nmetrics++;
}

/* One tracer payload of nchunks chunks; chunk i holds spans[off[i] .. off[i+1]). */
static dds__tracer_payload payload(dds__arena *a, dds__span *spans, const uint32_t *sizes, uint32_t nchunks) {
    dds__tracer_payload tp = {0};
    tp.chunks = dds__arena_calloc(a, nchunks ? nchunks : 1, sizeof(dds__trace_chunk));
    tp.nchunks = nchunks;
    uint32_t off = 0;
    for (uint32_t i = 0; i < nchunks; i++) {
        tp.chunks[i].spans = dds__arena_calloc(a, sizes[i] ? sizes[i] : 1, sizeof(dds__span));
        if (sizes[i]) memcpy(tp.chunks[i].spans, spans + off, sizes[i] * sizeof(dds__span));
        tp.chunks[i].nspans = sizes[i];
        tp.chunks[i].priority = DDS__PRIORITY_NONE;
        off += sizes[i];
    }
    return tp;
}

static dds__tracer_payload one_chunk(dds__arena *a, dds__span *spans, uint32_t n) {
    return payload(a, spans, &n, 1);
}

static dds__trace_process_config cfg0(void) { return (dds__trace_process_config){.now_ns = NOW}; }

static const dds__slice *get_meta(const dds__span *s, const char *k) {
    for (uint32_t i = s->nmeta; i-- > 0;)
        if (s->meta[i].key.len == strlen(k) && memcmp(s->meta[i].key.ptr, k, s->meta[i].key.len) == 0)
            return &s->meta[i].value;
    return NULL;
}
static uint32_t count_meta(const dds__span *s, const char *k) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->nmeta; i++)
        n += s->meta[i].key.len == strlen(k) && memcmp(s->meta[i].key.ptr, k, s->meta[i].key.len) == 0;
    return n;
}
static const double *get_metric(const dds__span *s, const char *k) {
    for (uint32_t i = s->nmetrics; i-- > 0;)
        if (s->metrics[i].key.len == strlen(k) && memcmp(s->metrics[i].key.ptr, k, s->metrics[i].key.len) == 0)
            return &s->metrics[i].value;
    return NULL;
}
static const dds__slice *get_kv(const dds__kv *kv, uint32_t n, const char *k) {
    for (uint32_t i = n; i-- > 0;)
        if (kv[i].key.len == strlen(k) && memcmp(kv[i].key.ptr, k, kv[i].key.len) == 0) return &kv[i].value;
    return NULL;
}
static bool top_level(const dds__span *s) {
    const double *v = get_metric(s, "_top_level");
    return v && *v == 1;
}

static bool in_arena(const dds__arena *a, const void *p) {
    for (const dds__arena_block *b = a->head; b; b = b->next)
        if ((const unsigned char *)p >= b->data && (const unsigned char *)p < b->data + b->cap) return true;
    return false;
}

static bool utf8_ok(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (need == 0 || i + need > n) return false;
        for (size_t k = 1; k < need; k++)
            if ((p[i + k] & 0xC0) != 0x80) return false;
        i += need;
    }
    return true;
}

static char *repeat(const char *unit, size_t times, const char *tail) {
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

/* ---- the normalization table ---------------------------------------------------------------- */

typedef struct norm_row {
    const char *what;
    const char *lang;
    const char *service, *name, *resource, *type;  /* NULL: a valid default */
    bool timed;                                     /* start/duration given (else valid defaults) */
    int64_t start, duration;
    uint64_t tid, sid, pid;                         /* all 0: 1, 2, 0 */
    const char *mkey, *mval;                        /* one meta entry (NULL: none) */
    /* expected, NULL = unchanged */
    const char *x_service, *x_name, *x_resource, *x_type;
    int64_t x_start, x_duration;                    /* when timed */
    uint64_t x_pid;
    const char *x_mval;                             /* expected value of mkey */
    bool x_meta_removed;
    bool x_normalized;                              /* spans_normalized goes to 1 */
} norm_row;

static const norm_row NORM[] = {
    /* service: Go NormalizeService (empty -> fallback, TruncateUTF8 100, NormalizeTagValue) */
    {.what = "service empty, no lang", .service = "", .x_service = "unnamed-service", .x_normalized = true},
    {.what = "service empty, lang", .lang = "python", .service = "", .x_service = "unnamed-python-service",
     .x_normalized = true},
    {.what = "service ok", .service = "good"},
    {.what = "service ip", .service = "127.0.0.1"},
    {.what = "service dots digits", .service = "127.site.platform-db-replica1"},
    {.what = "service hyphens", .service = "hyphenated-service-name"},
    {.what = "service emoji", .service = "\xF0\x9F\x90\xA8" "animal-db" "\xF0\x9F\x90\xB6", .x_service = "_animal-db",
     .x_normalized = true},
    {.what = "service emoji digit", .service = "\xF0\x9F\x90\xA8" "1animal-db" "\xF0\x9F\x90\xB6",
     .x_service = "_1animal-db", .x_normalized = true},
    {.what = "service digit start kept", .service = "1" "\xF0\x9F\x90\xA8" "1animal-db" "\xF0\x9F\x90\xB6",
     .x_service = "1_1animal-db", .x_normalized = true},
    {.what = "service too long",
     .service = "Too$Long$.Too$Long$.Too$Long$.Too$Long$.Too$Long$.Too$Long$."
                "Too$Long$.Too$Long$.Too$Long$.Too$Long$.Too$Long$.",
     .x_service = "too_long_.too_long_.too_long_.too_long_.too_long_.too_long_."
                  "too_long_.too_long_.too_long_.too_long_.",
     .x_normalized = true},
    {.what = "service dollar", .service = "bad$service", .x_service = "bad_service", .x_normalized = true},
    {.what = "service caps", .service = "TestCAPSandSuch", .x_service = "testcapsandsuch", .x_normalized = true},
    {.what = "service underscores collapse", .service = "contiguous_____underscores",
     .x_service = "contiguous_underscores", .x_normalized = true},
    {.what = "service trailing underscore", .service = "foo_", .x_service = "foo", .x_normalized = true},
    {.what = "service leading underscore kept", .service = "_foo"},
    {.what = "service unicode", .service = "\xC3\xBCnic\xC3\xB6" "de:met\xC3\xA4l"},
    {.what = "service unicode upper", .service = "AlsO:\xC3\x96k", .x_service = "also:\xC3\xB6k", .x_normalized = true},
    {.what = "service greek upper", .service = "\xCE\xA3\xCE\x8A\xCE\xA3\xCE\xA5\xCE\xA6\xCE\x9F\xCE\xA3",
     .x_service = "\xCF\x83\xCE\xAF\xCF\x83\xCF\x85\xCF\x86\xCE\xBF\xCF\x83", .x_normalized = true},
    {.what = "service cyrillic upper", .service = "\xD0\x9C\xD0\x9E\xD0\xA1\xD0\x9A\xD0\x92\xD0\x90",
     .x_service = "\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0", .x_normalized = true},
    {.what = "service cjk and emoji",
     .service = "Data\xF0\x9F\x90\xA8" "dog\xF0\x9F\x90\xB6 "
                "\xE7\xB9\x8B\xE3\x81\x8C\xE3\x81\xA3\xE2\x9B\xB0\xE3\x81\xA6\xE3\x81\xA6",
     .x_service = "data_dog_\xE7\xB9\x8B\xE3\x81\x8C\xE3\x81\xA3_\xE3\x81\xA6\xE3\x81\xA6", .x_normalized = true},
    {.what = "service invalid utf8", .service = "test\x99\x8f" "aaa", .x_service = "test_aaa", .x_normalized = true},
    {.what = "service oe", .service = "AlsO:\xC5\x93#@\xC3\xB6))\xC5\x93k",
     .x_service = "also:\xC5\x93_\xC3\xB6_\xC5\x93k", .x_normalized = true},
    {.what = "service only space -> fallback", .service = " ", .x_service = "unnamed-service", .x_normalized = true},
    {.what = "service symbol -> fallback", .lang = "go", .service = "\xE2\x92\xB6", .x_service = "unnamed-go-service",
     .x_normalized = true},
    /* name: Go NormalizeName (metric-name rules) */
    {.what = "name empty", .name = "", .x_name = "unnamed_operation", .x_normalized = true},
    {.what = "name ok", .name = "web.request"},
    {.what = "name hyphen", .name = "bad-name", .x_name = "bad_name", .x_normalized = true},
    {.what = "name too long",
     .name = "Too-Long-.Too-Long-.Too-Long-.Too-Long-.Too-Long-.Too-Long-."
             "Too-Long-.Too-Long-.Too-Long-.Too-Long-.Too-Long-.",
     .x_name = "Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.Too_Long.",
     .x_normalized = true},
    {.what = "name no letter", .name = "123", .x_name = "unnamed_operation", .x_normalized = true},
    {.what = "name dunder", .name = "__init__", .x_name = "init", .x_normalized = true},
    {.what = "name underscore dot", .name = "a_.b", .x_name = "a.b", .x_normalized = true},
    {.what = "name trailing underscore", .name = "a.b_", .x_name = "a.b", .x_normalized = true},
    {.what = "name non-ascii start skipped", .name = "\xC3\x9Cnicode", .x_name = "nicode", .x_normalized = true},
    /* resource, type */
    {.what = "resource empty -> name", .resource = "", .x_resource = "op", .x_normalized = true},
    {.what = "resource empty, name empty", .name = "", .resource = "", .x_name = "unnamed_operation",
     .x_resource = "unnamed_operation", .x_normalized = true},
    {.what = "resource kept", .resource = "GET /users/?"},
    {.what = "type empty kept", .type = ""},
    /* duration and start: Go FixDuration, FixStartTime (now = receive time) */
    {.what = "duration negative", .timed = true, .start = T0, .duration = -5, .x_start = T0, .x_duration = 0,
     .x_normalized = true},
    {.what = "duration overflows start", .timed = true, .start = INT64_MAX - 5, .duration = 10,
     .x_start = INT64_MAX - 5, .x_duration = 0, .x_normalized = true},
    {.what = "duration fits exactly", .timed = true, .start = INT64_MAX - 10, .duration = 10,
     .x_start = INT64_MAX - 10, .x_duration = 10},
    {.what = "start zero", .timed = true, .start = 0, .duration = 1000, .x_start = NOW - 1000, .x_duration = 1000,
     .x_normalized = true},
    {.what = "start before 2000", .timed = true, .start = Y2K - 1, .duration = 7, .x_start = NOW - 7, .x_duration = 7,
     .x_normalized = true},
    {.what = "start at 2000", .timed = true, .start = Y2K, .duration = 7, .x_start = Y2K, .x_duration = 7},
    {.what = "start negative (Go's wrap resets duration)", .timed = true, .start = -5, .duration = 10, .x_start = NOW,
     .x_duration = 0, .x_normalized = true},
    /* ids */
    {.what = "parent == trace == span", .tid = 7, .sid = 7, .pid = 7, .x_pid = 0, .x_normalized = true},
    {.what = "parent == trace only", .tid = 7, .sid = 8, .pid = 7, .x_pid = 7},
    /* http.status_code: Go ParseUint then 100 <= code < 600, else removed */
    {.what = "status 200", .mkey = "http.status_code", .mval = "200"},
    {.what = "status 100", .mkey = "http.status_code", .mval = "100"},
    {.what = "status 599", .mkey = "http.status_code", .mval = "599"},
    {.what = "status leading zero", .mkey = "http.status_code", .mval = "0200"},
    {.what = "status 99", .mkey = "http.status_code", .mval = "99", .x_meta_removed = true, .x_normalized = true},
    {.what = "status 600", .mkey = "http.status_code", .mval = "600", .x_meta_removed = true, .x_normalized = true},
    {.what = "status text", .mkey = "http.status_code", .mval = "OK", .x_meta_removed = true, .x_normalized = true},
    {.what = "status empty", .mkey = "http.status_code", .mval = "", .x_meta_removed = true, .x_normalized = true},
    {.what = "status plus sign", .mkey = "http.status_code", .mval = "+200", .x_meta_removed = true,
     .x_normalized = true},
    {.what = "status space", .mkey = "http.status_code", .mval = " 200", .x_meta_removed = true, .x_normalized = true},
    {.what = "status huge", .mkey = "http.status_code", .mval = "18446744073709551616200", .x_meta_removed = true,
     .x_normalized = true},
    /* meta values with their own rules */
    {.what = "env normalized", .mkey = "env", .mval = "Prod Env", .x_mval = "prod_env", .x_normalized = true},
    {.what = "env empty kept", .mkey = "env", .mval = ""},
    {.what = "peer.service normalized", .mkey = "peer.service", .mval = "Bad$Peer", .x_mval = "bad_peer",
     .x_normalized = true},
    {.what = "peer.service invalid -> empty", .mkey = "peer.service", .mval = "\xF0\x9F\x90\xA8", .x_mval = "",
     .x_normalized = true},
    {.what = "base service normalized", .mkey = "_dd.base_service", .mval = "My Svc", .x_mval = "my_svc",
     .x_normalized = true},
    {.what = "other meta untouched", .mkey = "Some Key", .mval = "Some $ Value"},
};

TEST(test_normalization_table) {
    for (size_t r = 0; r < sizeof(NORM) / sizeof(NORM[0]); r++) {
        const norm_row *row = &NORM[r];
        dds__arena a;
        dds__arena_init(&a, 0, 0);
        uint64_t tid = 1, sid = 2, pid = 0;
        if (row->tid || row->sid || row->pid) tid = row->tid, sid = row->sid, pid = row->pid;
        dds__span s = span3(tid, sid, pid);
        if (row->service) s.service = ro(row->service);
        if (row->name) s.name = ro(row->name);
        if (row->resource) s.resource = ro(row->resource);
        if (row->type) s.type = ro(row->type);
        if (row->timed) {
            s.start = row->start;
            s.duration = row->duration;
        }
        if (row->mkey) {
            s.meta = dds__arena_calloc(&a, 1, sizeof(dds__kv));
            s.meta[0] = (dds__kv){ro(row->mkey), ro(row->mval)};
            s.nmeta = 1;
        }
        dds__tracer_payload tp = one_chunk(&a, &s, 1);
        dds__trace_process_config cfg = cfg0();
        if (row->lang) cfg.lang = dds__slice_cstr(row->lang);
        dds__trace_process_counters ctr = {0};
        uint32_t kept = dds__trace_process(&tp, &cfg, &a, &ctr);
        CHECK_MSG(kept == 1 && tp.nchunks == 1, "%s: span dropped", row->what);
        if (kept != 1) {
            dds__arena_free(&a);
            continue;
        }
        const dds__span *o = &tp.chunks[0].spans[0];
#define EXPECT_FIELD(field, xfield, dflt)                                                                  \
    do {                                                                                                   \
        const char *want = row->xfield ? row->xfield : row->field ? row->field : dflt;                     \
        CHECK_MSG(o->field.len == strlen(want) && memcmp(o->field.ptr, want, o->field.len) == 0,           \
                  "%s: " #field " = \"%.*s\", want \"%s\"", row->what, (int)o->field.len, o->field.ptr, want); \
    } while (0)
        EXPECT_FIELD(service, x_service, "svc");
        EXPECT_FIELD(name, x_name, "op");
        EXPECT_FIELD(resource, x_resource, "res");
        EXPECT_FIELD(type, x_type, "custom");
#undef EXPECT_FIELD
        if (row->timed) {
            CHECK_MSG(o->start == row->x_start, "%s: start %lld, want %lld", row->what, (long long)o->start,
                      (long long)row->x_start);
            CHECK_MSG(o->duration == row->x_duration, "%s: duration %lld, want %lld", row->what,
                      (long long)o->duration, (long long)row->x_duration);
        }
        if (row->tid || row->sid || row->pid)
            CHECK_MSG(o->parent_id == row->x_pid, "%s: parent %llu", row->what, (unsigned long long)o->parent_id);
        if (row->mkey) {
            const dds__slice *v = get_meta(o, row->mkey);
            if (row->x_meta_removed) {
                CHECK_MSG(!v && o->nmeta == 0, "%s: %s not removed", row->what, row->mkey);
            } else {
                const char *want = row->x_mval ? row->x_mval : row->mval;
                CHECK_MSG(v && v->len == strlen(want) && memcmp(v->ptr, want, v->len) == 0, "%s: %s = \"%.*s\"",
                          row->what, row->mkey, v ? (int)v->len : 0, v ? v->ptr : "");
            }
        }
        CHECK_MSG(dds__counter_get(&ctr.spans_normalized) == (row->x_normalized ? 1u : 0u),
                  "%s: spans_normalized %llu", row->what, (unsigned long long)dds__counter_get(&ctr.spans_normalized));
        CHECK_EQ_INT(dds__counter_get(&ctr.traces_dropped), 0);
        dds__arena_free(&a);
        ro_free_all();
    }
}

/* Go NormalizeTag (the tracer payload's env), with its trimming of non-letter starts. */
TEST(test_normalize_tag_table) {
    char *long_a = repeat("a", 888, ""), *want_a = repeat("a", 200, "");
    char *dogs = repeat("\xF0\x9F\x90\xB6", 799, "b");
    char *dogs_in = malloc(strlen(dogs) + 2);
    dogs_in[0] = 'a';
    strcpy(dogs_in + 1, dogs);
    char *zeros_in = repeat("0", 197, " 000000000000"), *zeros_want = repeat("0", 197, "_0");
    char *z_in = malloc(strlen(zeros_in) + 2), *z_want = malloc(strlen(zeros_want) + 2);
    z_in[0] = 'A';
    strcpy(z_in + 1, zeros_in);
    z_want[0] = 'a';
    strcpy(z_want + 1, zeros_want);
    const struct { const char *in, *out; } rows[] = {
        {"#test_starting_hash", "test_starting_hash"},
        {"TestCAPSandSuch", "testcapsandsuch"},
        {"Test Conversion Of Weird !@#$%^&**() Characters", "test_conversion_of_weird_characters"},
        {"$#weird_starting", "weird_starting"},
        {"allowed:c0l0ns", "allowed:c0l0ns"},
        {"1love", "love"},
        {"\xC3\xBCnic\xC3\xB6" "de", "\xC3\xBCnic\xC3\xB6" "de"},
        {"Data\xF0\x9F\x90\xA8" "dog\xF0\x9F\x90\xB6 "
         "\xE7\xB9\x8B\xE3\x81\x8C\xE3\x81\xA3\xE2\x9B\xB0\xE3\x81\xA6\xE3\x81\xA6",
         "data_dog_\xE7\xB9\x8B\xE3\x81\x8C\xE3\x81\xA3_\xE3\x81\xA6\xE3\x81\xA6"},
        {" spaces   ", "spaces"},
        {" #hashtag!@#spaces #__<>#  ", "hashtag_spaces"},
        {":testing", ":testing"},
        {"_foo", "foo"},
        {":::test", ":::test"},
        {"contiguous_____underscores", "contiguous_underscores"},
        {"foo_", "foo"},
        {"\xC5\xBFodd_\xC5\xBF" "case\xC5\xBF", "\xC5\xBFodd_\xC5\xBF" "case\xC5\xBF"},
        {" ", ""},
        {"ok", "ok"},
        {"\xE2\x84\xA2\xC3\x96\xE2\x84\xA2\xC3\x96\xE2\x84\xA2\xE2\x84\xA2\xC3\x96\xE2\x84\xA2",
         "\xC3\xB6_\xC3\xB6_\xC3\xB6"},
        {"AlsO:\xC3\xB6k", "also:\xC3\xB6k"},
        {":still_ok", ":still_ok"},
        {"___trim", "trim"},
        {"12.:trim@", ":trim"},
        {"12.:trim@@", ":trim"},
        {"fun:ky__tag/1", "fun:ky_tag/1"},
        {"fun:ky@tag/2", "fun:ky_tag/2"},
        {"fun:ky@@@tag/3", "fun:ky_tag/3"},
        {"tag:1/2.3", "tag:1/2.3"},
        {"---fun:k####y_ta@#g/1_@@#", "fun:k_y_ta_g/1"},
        {"AlsO:\xC5\x93#@\xC3\xB6))\xC5\x93k", "also:\xC5\x93_\xC3\xB6_\xC5\x93k"},
        {"test\x99\x8f" "aaa", "test_aaa"},
        {"test\x99\x8f", "test"},
        {long_a, want_a},
        {dogs_in, "a"},
        {"a\xEF\xBF\xBD", "a"},
        {"a\xEF\xBF\xBD\xEF\xBF\xBD", "a"},
        {"a\xEF\xBF\xBD\xEF\xBF\xBD" "b", "a_b"},
        {z_in, z_want},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        dds__arena a;
        dds__arena_init(&a, 0, 0);
        dds__span s = span3(1, 2, 0);
        dds__tracer_payload tp = one_chunk(&a, &s, 1);
        tp.env = ro(rows[r].in);
        dds__trace_process_config cfg = cfg0();
        dds__trace_process_counters ctr = {0};
        dds__trace_process(&tp, &cfg, &a, &ctr);
        CHECK_MSG(tp.env.len == strlen(rows[r].out) && memcmp(tp.env.ptr, rows[r].out, tp.env.len) == 0,
                  "NormalizeTag(\"%.40s\") = \"%.*s\", want \"%.40s\"", rows[r].in, (int)tp.env.len, tp.env.ptr,
                  rows[r].out);
        dds__arena_free(&a);
        ro_free_all();
    }
    free(long_a), free(want_a), free(dogs), free(dogs_in), free(zeros_in), free(zeros_want), free(z_in), free(z_want);
}

TEST(test_link_name_normalized) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s = span3(1, 2, 0);
    dds__span_link *l = dds__arena_calloc(&a, 1, sizeof(*l));
    l->trace_id = 9, l->span_id = 10;
    l->attributes = dds__arena_calloc(&a, 2, sizeof(dds__kv));
    l->attributes[0] = (dds__kv){DDS__SLICE_LIT("link.name"), DDS__SLICE_LIT("Bad-Link")};
    l->attributes[1] = (dds__kv){DDS__SLICE_LIT("other"), DDS__SLICE_LIT("Bad-Link")};
    l->nattributes = 2;
    s.links = l, s.nlinks = 1;
    dds__tracer_payload tp = one_chunk(&a, &s, 1);
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_SLICE(tp.chunks[0].spans[0].links[0].attributes[0].value, "Bad_Link");
    CHECK_EQ_SLICE(tp.chunks[0].spans[0].links[0].attributes[1].value, "Bad-Link");
    dds__arena_free(&a);
}

TEST(test_start_fix_clamps_to_now) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s = span3(1, 2, 0);
    s.start = 5;
    s.duration = 1000;
    dds__tracer_payload tp = one_chunk(&a, &s, 1);
    dds__trace_process_config cfg = cfg0();
    cfg.now_ns = 500;  /* now - duration < 0: Go keeps now */
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_INT(tp.chunks[0].spans[0].start, 500);
    dds__arena_free(&a);
}

/* ---- chunk drops ------------------------------------------------------------------------------ */

TEST(test_chunk_drops) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[12];
    /* chunk 0: ok (2) | 1: empty | 2: trace_id 0 in 2nd span (2) | 3: span_id 0 (1) | 4: foreign span (2)
     * | 5: _dd.p.tid mismatch (2) | 6: _dd.p.tid on one span only: ok (2) | 7: ok (1) */
    s[0] = span3(10, 1, 0), s[1] = span3(10, 2, 1);
    s[2] = span3(20, 1, 0), s[3] = span3(0, 2, 1);
    s[4] = span3(30, 0, 0);
    s[5] = span3(40, 1, 0), s[6] = span3(41, 2, 1);
    s[7] = span3(50, 1, 0), s[8] = span3(50, 2, 1);
    meta(&a, &s[7], 1, "_dd.p.tid", "6500000000000000");
    meta(&a, &s[8], 1, "_dd.p.tid", "6600000000000000");
    s[9] = span3(60, 1, 0), s[10] = span3(60, 2, 1);
    meta(&a, &s[9], 1, "_dd.p.tid", "6500000000000000");
    s[11] = span3(70, 1, 0);
    uint32_t sizes[] = {2, 0, 2, 1, 2, 2, 2, 1};
    dds__tracer_payload tp = payload(&a, s, sizes, 8);
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    uint32_t kept = dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_INT(kept, 5);
    CHECK_EQ_INT(tp.nchunks, 3);
    CHECK_EQ_INT(tp.chunks[0].spans[0].trace_id, 10);
    CHECK_EQ_INT(tp.chunks[1].spans[0].trace_id, 60);
    CHECK_EQ_INT(tp.chunks[2].spans[0].trace_id, 70);
    CHECK_EQ_INT(dds__counter_get(&ctr.traces_dropped), 5);
    CHECK_EQ_INT(dds__counter_get(&ctr.spans_dropped), 7);
    dds__arena_free(&a);
}

TEST(test_no_chunks) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__tracer_payload tp = payload(&a, NULL, NULL, 0);
    dds__trace_process_config cfg = cfg0();
    cfg.default_env = DDS__SLICE_LIT("prod");
    dds__trace_process_counters ctr = {0};
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), 0);
    CHECK_EQ_INT(tp.nchunks, 0);
    CHECK_EQ_SLICE(tp.env, "prod");
    CHECK_EQ_INT(dds__counter_get(&ctr.traces_dropped), 0);
    dds__arena_free(&a);
}

/* ---- priority, origin, decision maker, root ---------------------------------------------------- */

TEST(test_priority_and_origin) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[9];
    /* chunk 0: root (parent 0, listed last) has priority 2 and origin; a child has 1 and another origin */
    s[0] = span3(1, 2, 1), s[1] = span3(1, 1, 0);
    metric(&a, &s[0], "_sampling_priority_v1", 1);
    meta(&a, &s[0], 2, "_dd.origin", "child-origin", "_dd.p.dm", "-3");
    metric(&a, &s[1], "_sampling_priority_v1", 2);
    meta(&a, &s[1], 1, "_dd.origin", "synthetics");
    /* chunk 1: root without priority; the first span that has one gives it */
    s[2] = span3(2, 1, 0), s[3] = span3(2, 2, 1), s[4] = span3(2, 3, 1);
    metric(&a, &s[3], "_sampling_priority_v1", -1);
    metric(&a, &s[4], "_sampling_priority_v1", 2);
    /* chunk 2: priority and origin already set by a v0.7 tracer */
    s[5] = span3(3, 1, 0);
    metric(&a, &s[5], "_sampling_priority_v1", 2);
    meta(&a, &s[5], 1, "_dd.origin", "synthetics");
    /* chunk 3: no priority anywhere; root is the orphan (its parent is elsewhere) */
    s[6] = span3(4, 5, 4), s[7] = span3(4, 4, 99), s[8] = span3(4, 6, 5);
    meta(&a, &s[7], 1, "_dd.origin", "rum");
    uint32_t sizes[] = {2, 3, 1, 3};
    dds__tracer_payload tp = payload(&a, s, sizes, 4);
    tp.chunks[2].priority = 0;
    tp.chunks[2].origin = DDS__SLICE_LIT("lambda");
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), 9);
    CHECK_EQ_INT(tp.chunks[0].priority, 2);
    CHECK_EQ_SLICE(tp.chunks[0].origin, "synthetics");
    const dds__slice *dm = get_kv(tp.chunks[0].tags, tp.chunks[0].ntags, "_dd.p.dm");
    CHECK(dm && dm->len == 2 && memcmp(dm->ptr, "-3", 2) == 0);
    CHECK_EQ_INT(tp.chunks[1].priority, -1);
    CHECK_EQ_INT(tp.chunks[1].origin.len, 0);
    CHECK_EQ_INT(tp.chunks[2].priority, 0);
    CHECK_EQ_SLICE(tp.chunks[2].origin, "lambda");
    CHECK_EQ_INT(tp.chunks[3].priority, DDS__PRIORITY_NONE);
    CHECK_EQ_SLICE(tp.chunks[3].origin, "rum");
    dds__arena_free(&a);
}

TEST(test_priority_go_none_value) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s = span3(1, 1, 0);
    metric(&a, &s, "_sampling_priority_v1", 1);
    dds__tracer_payload tp = one_chunk(&a, &s, 1);
    tp.chunks[0].priority = -128;  /* what a Go-style v0.7 payload sends for "none" */
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_INT(tp.chunks[0].priority, 1);
    dds__arena_free(&a);
}

/* ---- top-level ---------------------------------------------------------------------------------- */

TEST(test_top_level_computed) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[5];
    s[0] = span3(1, 1, 0);                                  /* root */
    s[1] = span3(1, 2, 1);                                  /* same service child */
    s[2] = span3(1, 3, 2), s[2].service = DDS__SLICE_LIT("db");  /* service change */
    s[3] = span3(1, 4, 3), s[3].service = DDS__SLICE_LIT("db");  /* child of the db span, same service */
    s[4] = span3(1, 5, 77);                                 /* orphan */
    metric(&a, &s[1], "_dd.top_level", 1);                  /* ignored without the header */
    dds__tracer_payload tp = one_chunk(&a, s, 5);
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    const dds__span *o = tp.chunks[0].spans;
    CHECK(top_level(&o[0]));
    CHECK(!top_level(&o[1]));
    CHECK(top_level(&o[2]));
    CHECK(!top_level(&o[3]));
    CHECK(top_level(&o[4]));
    CHECK(in_arena(&a, o[0].metrics));
    dds__arena_free(&a);
}

TEST(test_top_level_client_computed) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[3];
    s[0] = span3(1, 1, 0);
    s[1] = span3(1, 2, 1);
    s[2] = span3(1, 3, 1), s[2].service = DDS__SLICE_LIT("db");
    metric(&a, &s[1], "_dd.top_level", 1);
    metric(&a, &s[2], "_dd.top_level", 0);
    dds__tracer_payload tp = one_chunk(&a, s, 3);
    dds__trace_process_config cfg = cfg0();
    cfg.client_computed_top_level = true;
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    const dds__span *o = tp.chunks[0].spans;
    CHECK(!top_level(&o[0]));   /* the tracer decides: no _dd.top_level, no mark */
    CHECK(top_level(&o[1]));    /* Go UpdateTracerTopLevel */
    CHECK(!top_level(&o[2]));
    CHECK(*get_metric(&o[1], "_dd.top_level") == 1);
    dds__arena_free(&a);
}

TEST(test_top_level_many_spans) {
    /* a chain where the service changes every 1000 spans: exercises the id index past its first size */
    enum { N = 5000 };
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span *s = calloc(N, sizeof(*s));
    for (uint32_t i = 0; i < N; i++) {
        s[i] = span3(42, (uint64_t)i + 1 + (UINT64_C(1) << 63), i ? (uint64_t)i + (UINT64_C(1) << 63) : 0);
        s[i].service = (i / 1000) % 2 ? DDS__SLICE_LIT("a") : DDS__SLICE_LIT("b");
    }
    dds__tracer_payload tp = one_chunk(&a, s, N);
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), N);
    uint32_t marked = 0;
    for (uint32_t i = 0; i < N; i++) marked += top_level(&tp.chunks[0].spans[i]);
    CHECK_EQ_INT(marked, 5);  /* root + 4 service changes */
    free(s);
    dds__arena_free(&a);
}

/* ---- enrichment -------------------------------------------------------------------------------- */

TEST(test_enrichment) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[2];
    s[0] = span3(1, 2, 1), s[1] = span3(1, 1, 0);
    meta(&a, &s[0], 1, "version", "1.2.3");
    meta(&a, &s[1], 3, "_dd.origin", "synthetics", "env", "staging", "_dd.hostname", "host-a");
    dds__tracer_payload tp = one_chunk(&a, s, 2);
    dds__trace_process_config cfg = cfg0();
    cfg.cloud_origin = "lambda";
    cfg.function_name = DDS__SLICE_LIT("my-fn");
    cfg.function_tags = DDS__SLICE_LIT("team:a,owner:b");
    cfg.default_env = DDS__SLICE_LIT("prod");
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    const dds__span *child = &tp.chunks[0].spans[0], *root = &tp.chunks[0].spans[1];
    CHECK_EQ_SLICE(*get_meta(root, "_dd.origin"), "lambda");
    CHECK_EQ_INT(count_meta(root, "_dd.origin"), 1);
    CHECK_EQ_SLICE(*get_meta(root, "origin"), "lambda");
    CHECK_EQ_SLICE(*get_meta(root, "functionname"), "my-fn");
    CHECK_EQ_SLICE(*get_meta(root, "env"), "staging");
    CHECK(in_arena(&a, root->meta));
    CHECK(!get_meta(child, "origin") && !get_meta(child, "functionname"));
    CHECK_EQ_SLICE(tp.chunks[0].origin, "synthetics");   /* read from the root before enrichment */
    CHECK_EQ_SLICE(tp.env, "staging");                   /* from the root, before DD_ENV */
    CHECK_EQ_SLICE(tp.hostname, "host-a");
    CHECK_EQ_SLICE(tp.app_version, "1.2.3");
    const dds__slice *ft = get_kv(tp.tags, tp.ntags, "_dd.tags.function");
    CHECK(ft && ft->len == strlen("team:a,owner:b"));
    dds__arena_free(&a);
}

TEST(test_enrichment_defaults) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[2];
    s[0] = span3(1, 1, 0), s[1] = span3(2, 1, 0);
    dds__tracer_payload tp;
    uint32_t sizes[] = {1, 1};
    tp = payload(&a, s, sizes, 2);
    dds__trace_process_config cfg = cfg0();
    cfg.cloud_origin = "azurefunction";
    cfg.default_env = DDS__SLICE_LIT("Prod");
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_SLICE(*get_meta(&tp.chunks[i].spans[0], "origin"), "azurefunction");
        CHECK(!get_meta(&tp.chunks[i].spans[0], "functionname"));
    }
    CHECK_EQ_SLICE(tp.env, "prod");  /* DD_ENV, normalized like a payload env */
    CHECK_EQ_INT(tp.ntags, 0);
    dds__arena_free(&a);

    /* no cloud: nothing added; a payload env wins over DD_ENV */
    dds__arena_init(&a, 0, 0);
    s[0] = span3(1, 1, 0);
    tp = one_chunk(&a, s, 1);
    tp.env = DDS__SLICE_LIT("Dev");
    cfg = cfg0();
    cfg.default_env = DDS__SLICE_LIT("prod");
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_INT(tp.chunks[0].spans[0].nmeta, 0);
    CHECK_EQ_SLICE(tp.env, "dev");
    dds__arena_free(&a);
}

/* Rust enrich_span_with_mini_agent_metadata: on every span of the chunk, not only the root; a
 * tracer's own value is replaced. */
TEST(test_enrichment_every_span) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[3];
    s[0] = span3(1, 2, 1), s[1] = span3(1, 1, 0), s[2] = span3(1, 3, 2);
    meta(&a, &s[2], 1, "_dd.serverless_compat_version", "old");
    dds__tracer_payload tp = one_chunk(&a, s, 3);
    dds__trace_process_config cfg = cfg0();
    cfg.cloud_origin = "azurespringapp";
    cfg.function_name = DDS__SLICE_LIT("spring-app");
    dds__kv tags[3] = {{DDS__SLICE_LIT("_dd.serverless_compat_version"), DDS__SLICE_LIT("1.4.0")},
                       {DDS__SLICE_LIT("asa.hostname"), DDS__SLICE_LIT("pod-7")},
                       {DDS__SLICE_LIT("asa.name"), DDS__SLICE_LIT("spring-app")}};
    cfg.span_tags = tags;
    cfg.nspan_tags = 3;
    dds__trace_process_counters ctr = {0};
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), 3);
    for (int i = 0; i < 3; i++) {
        const dds__span *sp = &tp.chunks[0].spans[i];
        CHECK_EQ_SLICE(*get_meta(sp, "_dd.serverless_compat_version"), "1.4.0");
        CHECK_EQ_INT(count_meta(sp, "_dd.serverless_compat_version"), 1);
        CHECK_EQ_SLICE(*get_meta(sp, "asa.hostname"), "pod-7");
        CHECK_EQ_SLICE(*get_meta(sp, "asa.name"), "spring-app");
    }
    dds__arena_free(&a);

    /* Azure Functions: the aas.* tags on every span but API Management's */
    dds__arena_init(&a, 0, 0);
    s[0] = span3(1, 1, 0), s[1] = span3(1, 2, 1);
    s[1].name = DDS__SLICE_LIT("azure.apim");
    tp = one_chunk(&a, s, 2);
    cfg = cfg0();
    dds__kv aas[2] = {{DDS__SLICE_LIT("aas.site.kind"), DDS__SLICE_LIT("functionapp")},
                      {DDS__SLICE_LIT("aas.site.name"), DDS__SLICE_LIT("my-func")}};
    cfg.aas_tags = aas;
    cfg.naas_tags = 2;
    cfg.span_tags = tags;
    cfg.nspan_tags = 1;
    tags[0].value = DDS__SLICE_LIT("2.0.0");
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), 2);
    CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[0], "aas.site.name"), "my-func");
    CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[0], "aas.site.kind"), "functionapp");
    CHECK(!get_meta(&tp.chunks[0].spans[1], "aas.site.name"));
    CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[1], "_dd.serverless_compat_version"), "2.0.0");
    dds__arena_free(&a);

    /* none set: nothing added */
    dds__arena_init(&a, 0, 0);
    s[0] = span3(1, 1, 0);
    tp = one_chunk(&a, s, 1);
    cfg = cfg0();
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_INT(tp.chunks[0].spans[0].nmeta, 0);
    dds__arena_free(&a);
}

/* ---- credit cards ------------------------------------------------------------------------------ */

TEST(test_credit_cards) {
    const struct { const char *key, *value; bool hidden; } rows[] = {
        {"card", "4111111111111111", true},            /* Visa */
        {"card", "4111 1111 1111 1111", true},         /* spaces */
        {"card", "4111-1111-1111-1111", true},         /* dashes */
        {"card", " 4111111111111111", true},           /* leading separator */
        {"card", "5500000000000004", true},            /* Mastercard */
        {"card", "378282246310005", true},             /* Amex, 15 digits */
        {"card", "6011111111111117", true},            /* Discover */
        {"card", "3530111333300000", true},            /* JCB */
        {"card", "30569309025904", true},              /* Diners, 14 digits */
        {"card", "2221000000000009", true},            /* Mastercard 2-series (6-digit IIN) */
        {"card", "411111111117", true},                /* 12 digits: the minimum */
        {"card", "1234567890128", true},               /* IIN 1 */
        {"card", "4111111111111112", false},           /* Luhn fails */
        {"card", "6363636363636363", false},           /* known IIN, Luhn fails */
        {"card", "41111111117", false},                /* 11 digits */
        {"card", "4111111111111111111", false},        /* 19 digits */
        {"card", "91111111111113", false},             /* Luhn ok, unknown IIN */
        {"card", "222011111111117", false},            /* Luhn ok, 2220 is no IIN */
        {"card", "0000000000000000", false},
        {"card", "4111x111111111111", false},
        {"card", "4111.1111.1111.1111", false},
        {"card", "", false},
        {"_sample_rate", "4111111111111111", false},   /* keep list */
        {"http.method", "4111111111111111", false},
        {"account_id", "4111111111111111", false},
        {"config.spark_app_startTime", "4111111111111111", false},
        {"_anything", "4111111111111111", false},      /* internal tags */
        {"payment.number", "4111111111111111", true},
    };
    for (int pass = 0; pass < 2; pass++) {
        bool enabled = pass == 0;
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            dds__arena a;
            dds__arena_init(&a, 0, 0);
            dds__span s = span3(1, 1, 0);
            s.meta = dds__arena_calloc(&a, 1, sizeof(dds__kv));
            s.meta[0] = (dds__kv){ro(rows[r].key), ro(rows[r].value)};
            s.nmeta = 1;
            metric(&a, &s, "amount", 4111111111111111.0);
            dds__tracer_payload tp = one_chunk(&a, &s, 1);
            dds__trace_process_config cfg = cfg0();
            cfg.obfuscate_credit_cards = enabled;
            dds__trace_process_counters ctr = {0};
            dds__trace_process(&tp, &cfg, &a, &ctr);
            const dds__slice *v = get_meta(&tp.chunks[0].spans[0], rows[r].key);
            const char *want = enabled && rows[r].hidden ? "?" : rows[r].value;
            CHECK_MSG(v && v->len == strlen(want) && memcmp(v->ptr, want, v->len) == 0, "%s=%s (enabled %d): got %.*s",
                      rows[r].key, rows[r].value, enabled, v ? (int)v->len : 0, v ? v->ptr : "");
            CHECK(*get_metric(&tp.chunks[0].spans[0], "amount") == 4111111111111111.0);
            dds__arena_free(&a);
            ro_free_all();
        }
    }
}

/* ---- http.url ---------------------------------------------------------------------------------- */

/* Expected values from Go's net/url (1.26) as ObfuscateURLString uses it, except where Go
 * re-serializes the URL (noted in process.c). */
TEST(test_http_url) {
    const struct { const char *in, *plain, *removed; } rows[] = {
        {"http://foo.com/id/123/page/q?search=bar&page=2", NULL, "http://foo.com/id/123/page/q?"},
        {"http://foo.com/x?a=1#frag", NULL, "http://foo.com/x?#frag"},
        {"http://foo.com/x#frag?notquery", NULL, NULL},
        {"http://foo.com/x?", NULL, NULL},
        {"http://foo.com/x?#f", NULL, NULL},
        {"http://user:pass@foo.com/x?q=1", "http://foo.com/x?q=1", "http://foo.com/x?"},
        {"https://user@foo.com:8080/x", "https://foo.com:8080/x", "https://foo.com:8080/x"},
        {"http://a@b@foo.com/", "http://foo.com/", "http://foo.com/"},
        {"/path/only?x=1", NULL, "/path/only?"},
        {"path?x=1", NULL, "path?"},
        {"mailto:a@b.c?subject=hi", NULL, "mailto:a@b.c?"},
        {"http://foo.com/%zz?x=1", NULL, "?"},
        {"http://foo.com/x?%zz", NULL, "http://foo.com/x?"},
        {"http://foo.com/x#%zz", NULL, "?"},
        {"http://foo.com:80a/x?y=1", NULL, "?"},
        {"http://[::1]:8080/x?y=1", NULL, "http://[::1]:8080/x?"},
        {"http://[::1/x?y=1", NULL, "?"},
        {"http://fo o.com/x?y=1", NULL, "?"},
        {"1http://x?y", NULL, "?"},
        {"a:b/c?d", NULL, "a:b/c?"},
        {":foo?x", NULL, "?"},
        {"//host/x?y", NULL, "//host/x?"},
        {"///x?y", NULL, "///x?"},
        {"http://us{er@host/?q", NULL, "?"},
        {"http://host%41/?q", NULL, "?"},
        {"http://foo.com/x?a=1?b=2", NULL, "http://foo.com/x?"},
        {"http://foo.com/\x01?x", NULL, "?"},
        {"http://foo.com/x?y=1&z=%zz", NULL, "http://foo.com/x?"},
        {"?only", NULL, "?"},
        {"http://a:b:80/x?y", NULL, "?"},                   /* http(s): the port starts at the first ':' */
        {"redis://a:b:80/x?y", NULL, "redis://a:b:80/x?"},   /* other schemes: at the last */
        {"http://ho[st/x?y", NULL, "?"},
        {"http://[1.2.3.4]/x?y", NULL, "?"},                /* brackets hold IPv6 only */
        {"http://[::1%25en0]:80/x?y", NULL, "http://[::1%25en0]:80/x?"},
    };
    const char *types[] = {"http", "web"};
    for (int t = 0; t < 2; t++)
        for (int rm = 0; rm < 2; rm++)
            for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
                dds__arena a;
                dds__arena_init(&a, 0, 0);
                dds__span s = span3(1, 1, 0);
                s.type = dds__slice_cstr(types[t]);
                s.meta = dds__arena_calloc(&a, 1, sizeof(dds__kv));
                s.meta[0] = (dds__kv){DDS__SLICE_LIT("http.url"), ro(rows[r].in)};
                s.nmeta = 1;
                dds__tracer_payload tp = one_chunk(&a, &s, 1);
                dds__trace_process_config cfg = cfg0();
                cfg.remove_query_string = rm;
                dds__trace_process_counters ctr = {0};
                dds__trace_process(&tp, &cfg, &a, &ctr);
                const char *want = rm ? rows[r].removed : rows[r].plain;
                if (!want) want = rows[r].in;
                const dds__slice *v = get_meta(&tp.chunks[0].spans[0], "http.url");
                CHECK_MSG(v && v->len == strlen(want) && memcmp(v->ptr, want, v->len) == 0,
                          "%s remove=%d: got \"%.*s\", want \"%s\"", rows[r].in, rm, v ? (int)v->len : 0,
                           v ? v->ptr : "",
                          want);
                dds__arena_free(&a);
                ro_free_all();
            }
    /* other span types keep http.url as sent */
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s = span3(1, 1, 0);
    meta(&a, &s, 1, "http.url", "http://u:p@foo.com/x?q=1");
    dds__tracer_payload tp = one_chunk(&a, &s, 1);
    dds__trace_process_config cfg = cfg0();
    cfg.remove_query_string = true;
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[0], "http.url"), "http://u:p@foo.com/x?q=1");
    dds__arena_free(&a);
}

/* ---- obfuscation of sql, redis, valkey, memcached spans, paths, stack traces, replace rules --- */

/* One span of type `type` with resource `res` and n meta pairs, processed with cfg. */
static dds__span processed(dds__arena *a, const dds__trace_process_config *cfg, dds__trace_process_counters *ctr,
                           const char *type, const char *res, uint32_t n, ...) {
    dds__span s = span3(1, 1, 0);
    s.type = dds__slice_cstr(type);
    s.resource = ro(res);
    s.meta = dds__arena_calloc(a, n ? n : 1, sizeof(dds__kv));
    s.nmeta = n;
    va_list ap;
    va_start(ap, n);
    for (uint32_t i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
        s.meta[i] = (dds__kv){dds__slice_cstr(k), ro(v)};
    }
    va_end(ap);
    dds__tracer_payload tp = one_chunk(a, &s, 1);
    dds__trace_process(&tp, cfg, a, ctr);
    CHECK_EQ_INT(tp.nchunks, 1);
    return tp.chunks[0].spans[0];
}

static dds__trace_process_config agent_defaults(void) {
    dds__trace_process_config c = cfg0();
    c.obfuscate_credit_cards = true;
    c.redis_obfuscate = c.valkey_obfuscate = c.memcached_obfuscate = true;
    return c;
}

TEST(test_sql_spans) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = agent_defaults();
    dds__trace_process_counters ctr = {0};
    dds__span s = processed(&a, &cfg, &ctr, "sql", "SELECT * FROM users WHERE id = 42 AND name = 'bob' -- x", 1,
                            "sql.query", "SELECT * FROM users WHERE id = 42 AND name = 'bob' -- x");
    CHECK_EQ_SLICE(s.resource, "SELECT * FROM users WHERE id = ? AND name = ?");
    CHECK_EQ_SLICE(*get_meta(&s, "sql.query"), "SELECT * FROM users WHERE id = ? AND name = ?");
    CHECK_EQ_INT(count_meta(&s, "sql.query"), 1);
    /* cassandra too; sql.query is added when the tracer did not set it */
    s = processed(&a, &cfg, &ctr, "cassandra", "SELECT * FROM ks.t WHERE k IN (1, 2, 3)", 0);
    CHECK_EQ_SLICE(s.resource, "SELECT * FROM ks.t WHERE k IN ( ? )");
    CHECK_EQ_SLICE(*get_meta(&s, "sql.query"), "SELECT * FROM ks.t WHERE k IN ( ? )");
    /* the dialect comes from db.type */
    s = processed(&a, &cfg, &ctr, "sql", "SELECT data #> '{a}' FROM t", 1, "db.type", "postgresql");
    CHECK_EQ_SLICE(s.resource, "SELECT data #> ? FROM t");
    s = processed(&a, &cfg, &ctr, "sql", "SELECT data #> '{a}' FROM t", 1, "db.type", "mysql");
    CHECK_EQ_SLICE(s.resource, "SELECT data");
    /* what the tokenizer refuses never reaches the intake */
    s = processed(&a, &cfg, &ctr, "sql", "SELECT 'unterminated secret", 0);
    CHECK_EQ_SLICE(s.resource, "Non-parsable SQL query");
    CHECK_EQ_SLICE(*get_meta(&s, "sql.query"), "Non-parsable SQL query");
    CHECK_EQ_INT(dds__counter_get(&ctr.spans_obfuscated), 5);
    CHECK_EQ_INT(dds__counter_get(&ctr.sql_non_parsable), 1);
    /* other types keep their resource */
    s = processed(&a, &cfg, &ctr, "custom", "SELECT 1", 0);
    CHECK_EQ_SLICE(s.resource, "SELECT 1");
    CHECK(get_meta(&s, "sql.query") == NULL);
    dds__arena_free(&a);
    ro_free_all();
}

TEST(test_redis_valkey_memcached_spans) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = agent_defaults();
    dds__trace_process_counters ctr = {0};
    /* Go Agent defaults: quantized resource, raw command obfuscated, memcached command blanked */
    dds__span s = processed(&a, &cfg, &ctr, "redis", "set k v\nauth hunter2", 1, "redis.raw_command",
                            "SET k v\nAUTH hunter2");
    CHECK_EQ_SLICE(s.resource, "SET AUTH");
    CHECK_EQ_SLICE(*get_meta(&s, "redis.raw_command"), "SET k ?\nAUTH ?");
    s = processed(&a, &cfg, &ctr, "valkey", "HSET h f secret", 1, "valkey.raw_command", "HSET h f secret");
    CHECK_EQ_SLICE(s.resource, "HSET");
    CHECK_EQ_SLICE(*get_meta(&s, "valkey.raw_command"), "HSET h f ?");
    s = processed(&a, &cfg, &ctr, "memcached", "set", 1, "memcached.command", "set k 0 60 5\r\nvalue");
    CHECK_EQ_SLICE(*get_meta(&s, "memcached.command"), "");
    cfg.memcached_keep_command = true;
    s = processed(&a, &cfg, &ctr, "memcached", "set", 1, "memcached.command", "set k 0 60 5\r\nvalue");
    CHECK_EQ_SLICE(*get_meta(&s, "memcached.command"), "set k 0 60 5");
    /* remove_all_args */
    cfg.redis_remove_all_args = cfg.valkey_remove_all_args = true;
    s = processed(&a, &cfg, &ctr, "redis", "GET k", 1, "redis.raw_command", "GET secret-key");
    CHECK_EQ_SLICE(*get_meta(&s, "redis.raw_command"), "GET ?");
    s = processed(&a, &cfg, &ctr, "valkey", "GET k", 1, "valkey.raw_command", "GET secret-key");
    CHECK_EQ_SLICE(*get_meta(&s, "valkey.raw_command"), "GET ?");
    /* the Rust binary's defaults: only the resource changes */
    cfg.redis_obfuscate = cfg.valkey_obfuscate = cfg.memcached_obfuscate = false;
    s = processed(&a, &cfg, &ctr, "redis", "GET k", 1, "redis.raw_command", "SET k v");
    CHECK_EQ_SLICE(s.resource, "GET");
    CHECK_EQ_SLICE(*get_meta(&s, "redis.raw_command"), "SET k v");
    s = processed(&a, &cfg, &ctr, "memcached", "set", 1, "memcached.command", "set k 0 60 5\r\nvalue");
    CHECK_EQ_SLICE(*get_meta(&s, "memcached.command"), "set k 0 60 5\r\nvalue");
    /* the tag of the other store is not touched */
    cfg.redis_obfuscate = true;
    s = processed(&a, &cfg, &ctr, "redis", "GET k", 1, "valkey.raw_command", "SET k v");
    CHECK_EQ_SLICE(*get_meta(&s, "valkey.raw_command"), "SET k v");
    dds__arena_free(&a);
    ro_free_all();
}

TEST(test_paths_with_digits_and_stack_traces) {
    static const struct { const char *in, *want; } rows[] = {
        {"http://foo.com/users/123/orders/abc?x=1", "http://foo.com/users/?/orders/abc?x=1"},
        {"http://foo.com/v2/a1b/c", "http://foo.com/?/?/c"},
        {"/path/to/1234?q", "/path/to/??q"},
        {"http://u:p@foo.com/x/%31/y", "http://foo.com/x/?/y"},
        {"http://foo.com/", "http://foo.com/"},
        {"http://foo.com:8080/a#frag1", "http://foo.com:8080/a#frag1"},
        {"mailto:a1@b.com", "mailto:a1@b.com"},
        {"http://ho[st/1", "?"},
    };
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = agent_defaults();
    cfg.remove_paths_with_digits = true;
    dds__trace_process_counters ctr = {0};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dds__span s = processed(&a, &cfg, &ctr, "http", "GET /", 1, "http.url", rows[i].in);
        const dds__slice *v = get_meta(&s, "http.url");
        CHECK_MSG(v && v->len == strlen(rows[i].want) && memcmp(v->ptr, rows[i].want, v->len) == 0,
                  "%s: got %.*s", rows[i].in, v ? (int)v->len : 0, v ? v->ptr : "");
    }
    cfg.remove_query_string = true;
    dds__span s = processed(&a, &cfg, &ctr, "web", "GET /", 1, "http.url", "http://foo.com/u/42?token=secret#f");
    CHECK_EQ_SLICE(*get_meta(&s, "http.url"), "http://foo.com/u/??#f");
    cfg.remove_stack_traces = true;
    s = processed(&a, &cfg, &ctr, "custom", "r", 2, "error.stack", "at secret.fn (x.js:1)", "error.msg", "boom");
    CHECK_EQ_SLICE(*get_meta(&s, "error.stack"), "?");
    CHECK_EQ_SLICE(*get_meta(&s, "error.msg"), "boom");
    dds__arena_free(&a);
    ro_free_all();
}

TEST(test_replace_tags) {
    dds__replace_rules *rules = NULL;
    char why[200];
    CHECK_EQ_INT(dds__replace_rules_parse("[{\"name\":\"*\",\"pattern\":\"(token=)[^&]*\",\"repl\":\"${1}?\"},"
                                          " {\"name\":\"resource.name\",\"pattern\":\"prod\",\"repl\":\"stage\"},"
                                          " {\"name\":\"user.email\",\"pattern\":\".+\",\"repl\":\"<redacted>\"}]",
                                          &rules, why, sizeof(why)),
                 0);
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = agent_defaults();
    cfg.replace_rules = rules;
    dds__trace_process_counters ctr = {0};
    dds__span s = processed(&a, &cfg, &ctr, "custom", "prod?token=abc", 4, "http.url", "/x?token=abc&y=1",
                            "_dd.internal", "token=abc", "user.email", "bob@example.com", "other", "plain");
    CHECK_EQ_SLICE(s.resource, "stage?token=?");
    CHECK_EQ_SLICE(*get_meta(&s, "http.url"), "/x?token=?&y=1");
    CHECK_EQ_SLICE(*get_meta(&s, "_dd.internal"), "token=abc");  /* "*" skips internal tags */
    CHECK_EQ_SLICE(*get_meta(&s, "user.email"), "<redacted>");
    CHECK_EQ_SLICE(*get_meta(&s, "other"), "plain");
    /* rules run after the obfuscators (on the obfuscated SQL) */
    s = processed(&a, &cfg, &ctr, "sql", "SELECT * FROM prod_users WHERE id = 1", 0);
    CHECK_EQ_SLICE(s.resource, "SELECT * FROM stage_users WHERE id = ?");
    CHECK_EQ_SLICE(*get_meta(&s, "sql.query"), "SELECT * FROM prod_users WHERE id = ?");
    dds__arena_free(&a);
    ro_free_all();
    dds__replace_rules_free(rules);
}

/* libdd-trace-obfuscation tests/data/obfuscation_test_spans.jsonl, the rows that apply here
 * (span events, and the JSON obfuscators, are not built; an empty resource is first normalized
 * to the span name by the processor, so that row is left out). Config letters: C credit cards,
 * H http query and path digits, R redis, A redis remove-all, V valkey, W valkey remove-all,
 * M memcached, K memcached keep-command; T the custom.tag replace rule. */
TEST(test_rust_obfuscation_span_vectors) {
    static const struct {
        const char *name, *type, *res, *key, *val, *cfg, *want_res, *want_key, *want_val;
    } rows[] = {
        {"cassandra_select", "cassandra", "SELECT * FROM table1 WHERE id = 42", NULL, NULL, "",
         "SELECT * FROM table1 WHERE id = ?", "sql.query", "SELECT * FROM table1 WHERE id = ?"},
        {"credit_card_disabled", "generic", "r", "card.number", "5105-1051-0510-5100", "", "r", "card.number",
         "5105-1051-0510-5100"},
        {"credit_card_match", "generic", "r", "card.number", "5105-1051-0510-5100", "C", "r", "card.number", "?"},
        {"credit_card_no_match", "generic", "r", "card.number", "not-a-cc", "C", "r", "card.number", "not-a-cc"},
        {"credit_card_skipped_key", "generic", "r", "_dd.test", "5105-1051-0510-5100", "C", "r", "_dd.test",
         "5105-1051-0510-5100"},
        {"http_empty", "http", "r", NULL, NULL, "H", "r", NULL, NULL},
        {"http_no_url_tag", "http", "r", "other.tag", "value", "H", "r", "other.tag", "value"},
        {"http_url_obfuscate", "http", "r", "http.url", "http://mysite.mydomain/1/2?q=asd", "H", "r", "http.url",
         "http://mysite.mydomain/?/??"},
        {"memcached_disabled", "memcached", "r", "memcached.command", "set key 0 0 0\r\nvalue", "", "r",
         "memcached.command", "set key 0 0 0\r\nvalue"},
        {"memcached_enabled_empty_command", "memcached", "r", NULL, NULL, "M", "r", NULL, NULL},
        {"memcached_enabled", "memcached", "r", "memcached.command", "set key 0 0 0\r\nvalue", "M", "r",
         "memcached.command", ""},
        {"memcached_keep_command", "memcached", "r", "memcached.command", "set key 0 0 0\r\nvalue", "MK", "r",
         "memcached.command", "set key 0 0 0"},
        {"redis_disabled_with_tag_replace", "redis", "SET k v", "custom.tag", "/foo/bar/foo", "T", "SET",
         "custom.tag", "/foo/bar/extra"},
        {"redis_enabled_no_raw_command", "redis", "SET k v", "other.tag", "value", "R", "SET", "other.tag", "value"},
        {"redis_obfuscate_enabled", "redis", "SET k v", "redis.raw_command", "SET key val", "R", "SET",
         "redis.raw_command", "SET key ?"},
        {"redis_obfuscate_no_command", "redis", "SET k v", NULL, NULL, "R", "SET", NULL, NULL},
        {"redis_quantize", "redis", "SET k v\nGET k", NULL, NULL, "", "SET GET", NULL, NULL},
        {"redis_remove_all_args", "redis", "SET k v", "redis.raw_command", "SET key val", "RA", "SET",
         "redis.raw_command", "SET ?"},
        {"sql_select", "sql", "SELECT * FROM users WHERE id = 42", NULL, NULL, "", "SELECT * FROM users WHERE id = ?",
         "sql.query", "SELECT * FROM users WHERE id = ?"},
        {"valkey_disabled_with_tag_replace", "valkey", "SET k v", "custom.tag", "/foo/bar/foo", "T", "SET",
         "custom.tag", "/foo/bar/extra"},
        {"valkey_enabled_no_raw_command", "valkey", "SET k v", "other.tag", "value", "V", "SET", "other.tag", "value"},
        {"valkey_obfuscate_enabled", "valkey", "SET k v", "valkey.raw_command", "SET key val", "V", "SET",
         "valkey.raw_command", "SET key ?"},
        {"valkey_obfuscate_no_command", "valkey", "SET k v", NULL, NULL, "V", "SET", NULL, NULL},
        {"valkey_quantize", "valkey", "SET k v\nGET k", NULL, NULL, "", "SET GET", NULL, NULL},
        {"valkey_remove_all_args", "valkey", "SET k v", "valkey.raw_command", "SET key val", "VW", "SET",
         "valkey.raw_command", "SET ?"},
        {"web_url_obfuscate", "web", "r", "http.url", "http://mysite.mydomain/1/2?q=asd", "H", "r", "http.url",
         "http://mysite.mydomain/?/??"},
    };
    dds__replace_rules *rules = NULL;
    char why[200];
    CHECK_EQ_INT(dds__replace_rules_parse("[{\"name\":\"custom.tag\",\"pattern\":\"(/foo/bar/).*\",\"repl\":\"${1}extra\"}]",
                                          &rules, why, sizeof(why)),
                 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dds__arena a;
        dds__arena_init(&a, 0, 0);
        const char *c = rows[i].cfg;
        dds__trace_process_config cfg = cfg0();
        cfg.obfuscate_credit_cards = strchr(c, 'C') != NULL;
        cfg.remove_query_string = cfg.remove_paths_with_digits = strchr(c, 'H') != NULL;
        cfg.redis_obfuscate = strchr(c, 'R') != NULL;
        cfg.redis_remove_all_args = strchr(c, 'A') != NULL;
        cfg.valkey_obfuscate = strchr(c, 'V') != NULL;
        cfg.valkey_remove_all_args = strchr(c, 'W') != NULL;
        cfg.memcached_obfuscate = strchr(c, 'M') != NULL;
        cfg.memcached_keep_command = strchr(c, 'K') != NULL;
        cfg.replace_rules = strchr(c, 'T') ? rules : NULL;
        dds__trace_process_counters ctr = {0};
        dds__span s = rows[i].key ? processed(&a, &cfg, &ctr, rows[i].type, rows[i].res, 1, rows[i].key, rows[i].val)
                                  : processed(&a, &cfg, &ctr, rows[i].type, rows[i].res, 0);
        CHECK_MSG(s.resource.len == strlen(rows[i].want_res) && !memcmp(s.resource.ptr, rows[i].want_res, s.resource.len),
                  "%s: resource %.*s", rows[i].name, (int)s.resource.len, s.resource.ptr);
        if (rows[i].want_key) {
            const dds__slice *v = get_meta(&s, rows[i].want_key);
            CHECK_MSG(v && v->len == strlen(rows[i].want_val) && !memcmp(v->ptr, rows[i].want_val, v->len),
                      "%s: %s = %.*s", rows[i].name, rows[i].want_key, v ? (int)v->len : 0, v ? v->ptr : "(none)");
        } else {
            CHECK_MSG(s.nmeta == 0 || get_meta(&s, "sql.query") == NULL, "%s: unexpected tags", rows[i].name);
        }
        dds__arena_free(&a);
        ro_free_all();
    }
    dds__replace_rules_free(rules);
}

/* Out of arena memory in the middle of obfuscating: the chunk is dropped whole and counted. */
TEST(test_obfuscation_allocation_failures) {
    dds__replace_rules *rules = NULL;
    char why[200];
    CHECK_EQ_INT(dds__replace_rules_parse("[{\"name\":\"*\",\"pattern\":\"a\",\"repl\":\"b\"}]", &rules, why, sizeof(why)), 0);
    bool saw_kept = false, saw_dropped = false;
    for (size_t limit = 1024; limit < 64 * 1024; limit += 512) {
        dds__arena a;
        dds__arena_init(&a, 256, limit);
        dds__span sp[3] = {span3(1, 1, 0), span3(1, 2, 1), span3(1, 3, 1)};
        sp[0].type = DDS__SLICE_LIT("sql");
        sp[0].resource = DDS__SLICE_LIT("SELECT a FROM t WHERE x = 'aaaaaaaaaaaaaaaa' AND y IN (1, 2, 3, 4, 5, 6)");
        sp[1].type = DDS__SLICE_LIT("redis");
        sp[1].resource = DDS__SLICE_LIT("SET aaaaaaaa bbbbbbbb");
        sp[2].type = DDS__SLICE_LIT("redis");
        meta(&a, &sp[1], 1, "redis.raw_command", "SET aaaaaaaa bbbbbbbb\nGET aaaa");
        dds__tracer_payload tp = one_chunk(&a, sp, 3);
        dds__trace_process_config cfg = agent_defaults();
        cfg.replace_rules = rules;
        dds__trace_process_counters ctr = {0};
        uint32_t kept = dds__trace_process(&tp, &cfg, &a, &ctr);
        saw_kept |= kept != 0;
        saw_dropped |= kept == 0;
        if (kept) {
            CHECK_EQ_INT(kept, 3);
            CHECK_EQ_SLICE(tp.chunks[0].spans[0].resource, "SELECT b FROM t WHERE x = ? AND y IN ( ? )");
            CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[1], "redis.raw_command"), "SET bbbbbbbb ?\nGET bbbb");
        } else {
            CHECK_EQ_INT(tp.nchunks, 0);
            CHECK_EQ_INT(dds__counter_get(&ctr.spans_dropped), 3);
        }
        dds__arena_free(&a);
    }
    CHECK(saw_kept && saw_dropped);  /* the limits span both outcomes */
    dds__replace_rules_free(rules);
}

/* ---- truncation (Go truncator + TruncateUTF8) ---------------------------------------------------- */

TEST(test_truncation_limits) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    char *res = repeat("a", 4999, "\xC3\xA9");                 /* 5001 bytes, é across the limit */
    char *val = repeat("v", 24999, "\xE2\x82\xAC");            /* 25002 bytes, € across the limit */
    char *key = repeat("k", 199, "\xF0\x9F\x98\x80");           /* 203 bytes, 😀 across the limit */
    char *mkey = repeat("m", 250, "");
    char *typ = repeat("t", 99, "\xC3\xA9");                    /* 101 bytes */
    char *svc = repeat("s", 99, "\xC3\xA9");
    char *big = repeat("x", 30000, "");
    char *exact = repeat("e", 25000, "");
    dds__span s = span3(1, 1, 0);
    s.resource = ro(res);
    s.type = ro(typ);
    s.service = ro(svc);
    s.meta = dds__arena_calloc(&a, 4, sizeof(dds__kv));
    s.meta[0] = (dds__kv){DDS__SLICE_LIT("v"), ro(val)};
    s.meta[1] = (dds__kv){ro(key), DDS__SLICE_LIT("x")};
    s.meta[2] = (dds__kv){DDS__SLICE_LIT("_dd.appsec.json"), ro(big)};
    s.meta[3] = (dds__kv){DDS__SLICE_LIT("exact"), ro(exact)};
    s.nmeta = 4;
    s.metrics = dds__arena_calloc(&a, 1, sizeof(dds__kvd));
    s.metrics[0] = (dds__kvd){ro(mkey), 3.5};
    s.nmetrics = 1;
    dds__tracer_payload tp = one_chunk(&a, &s, 1);
    dds__trace_process_config cfg = cfg0();
    dds__trace_process_counters ctr = {0};
    dds__trace_process(&tp, &cfg, &a, &ctr);
    const dds__span *o = &tp.chunks[0].spans[0];
    CHECK_EQ_INT(o->resource.len, 4999);        /* no "..." on the resource */
    CHECK_EQ_INT(o->type.len, 99);
    CHECK_EQ_INT(o->service.len, 99);
    CHECK_EQ_INT(o->meta[0].value.len, 24999 + 3);
    CHECK(memcmp(o->meta[0].value.ptr + 24999, "...", 3) == 0);
    CHECK(in_arena(&a, o->meta[0].value.ptr));
    CHECK_EQ_INT(o->meta[1].key.len, 199 + 3);
    CHECK(memcmp(o->meta[1].key.ptr + 199, "...", 3) == 0);
    CHECK_EQ_INT(o->meta[2].value.len, 30000);  /* structured meta is never cut */
    CHECK_EQ_INT(o->meta[3].value.len, 25000);  /* at the limit: untouched */
    CHECK_EQ_INT(o->metrics[0].key.len, 203);
    CHECK(memcmp(o->metrics[0].key.ptr, mkey, 200) == 0 && memcmp(o->metrics[0].key.ptr + 200, "...", 3) == 0);
    CHECK(o->metrics[0].value == 3.5);
    CHECK_EQ_INT(dds__counter_get(&ctr.spans_normalized), 1);
    free(res), free(val), free(key), free(mkey), free(typ), free(svc), free(big), free(exact);
    dds__arena_free(&a);
    ro_free_all();
}

/* Every cut point through 1- to 4-byte characters: never a split sequence. */
TEST(test_truncation_never_splits_utf8) {
    const char *chars[] = {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
    for (size_t c = 0; c < 4; c++) {
        for (size_t pad = 0; pad < 4; pad++) {
            /* value: (25000 - 4 + pad) 'x', then the character twice: the limit falls everywhere in it */
            char *v = repeat("x", 25000 - 4 + pad, "");
            size_t base = strlen(v), cl = strlen(chars[c]);
            v = realloc(v, base + 2 * cl + 1);
            memcpy(v + base, chars[c], cl);
            memcpy(v + base + cl, chars[c], cl);
            v[base + 2 * cl] = '\0';
            dds__arena a;
            dds__arena_init(&a, 0, 0);
            dds__span s = span3(1, 1, 0);
            s.meta = dds__arena_calloc(&a, 1, sizeof(dds__kv));
            s.meta[0] = (dds__kv){DDS__SLICE_LIT("k"), ro(v)};
            s.nmeta = 1;
            s.resource = ro_n(v + base - 4996, 4996 + 2 * cl);  /* same shape around 5000 */
            dds__tracer_payload tp = one_chunk(&a, &s, 1);
            dds__trace_process_config cfg = cfg0();
            dds__trace_process_counters ctr = {0};
            dds__trace_process(&tp, &cfg, &a, &ctr);
            const dds__span *o = &tp.chunks[0].spans[0];
            dds__slice mv = o->meta[0].value;
            size_t total = base + 2 * cl;
            if (total <= 25000) {
                CHECK_EQ_INT(mv.len, total);
            } else {
                CHECK(mv.len >= 3 && mv.len - 3 <= 25000 && mv.len - 3 > 25000 - 4);
                CHECK(memcmp(mv.ptr + mv.len - 3, "...", 3) == 0);
                CHECK(memcmp(mv.ptr, v, mv.len - 3) == 0);
            }
            CHECK(utf8_ok(mv.ptr, mv.len));
            CHECK(o->resource.len <= 5000 && utf8_ok(o->resource.ptr, o->resource.len));
            free(v);
            dds__arena_free(&a);
            ro_free_all();
        }
    }
}

/* ---- arena: inputs untouched, allocation failures drop and count ---------------------------------- */

static dds__tracer_payload messy_payload(dds__arena *in, dds__span *s) {
    /* chunk 0 needs allocations (normalization, truncation, top-level, enrichment); chunk 1 too */
    s[0] = span3(1, 1, 0), s[1] = span3(1, 2, 1), s[2] = span3(2, 1, 0);
    s[0].service = DDS__SLICE_LIT("Bad Service");
    s[1].name = DDS__SLICE_LIT("Bad Name");
    meta(in, &s[0], 2, "env", "Prod", "http.url", "http://u@x/?q");
    s[0].type = DDS__SLICE_LIT("web");
    s[2].service = DDS__SLICE_LIT("");
    uint32_t sizes[] = {2, 1};
    return payload(in, s, sizes, 2);
}

TEST(test_allocation_failures) {
    /* the work arena grows 16 bytes at a time: every allocation of the run fails at some limit */
    bool succeeded = false, saw_drop = false;
    for (size_t limit = 16; limit < 64 * 1024 && !succeeded; limit += 16) {
        dds__arena in, work;
        dds__arena_init(&in, 0, 0);
        dds__arena_init(&work, 64, limit);
        dds__span s[3];
        dds__tracer_payload tp = messy_payload(&in, s);
        dds__trace_process_config cfg = cfg0();
        cfg.lang = DDS__SLICE_LIT("python");
        cfg.cloud_origin = "lambda";
        cfg.function_name = DDS__SLICE_LIT("fn");
        cfg.function_tags = DDS__SLICE_LIT("a:b");
        cfg.remove_query_string = true;
        dds__trace_process_counters ctr = {0};
        uint32_t kept = dds__trace_process(&tp, &cfg, &work, &ctr);
        uint64_t dropped = dds__counter_get(&ctr.spans_dropped);
        CHECK_EQ_INT(kept + dropped, 3);
        CHECK_EQ_INT(tp.nchunks + dds__counter_get(&ctr.traces_dropped), 2);
        saw_drop |= dropped > 0;
        /* what is kept is complete: the last steps (top-level, enrichment) happened */
        for (uint32_t c = 0; c < tp.nchunks; c++) {
            const dds__span *root = &tp.chunks[c].spans[0];
            CHECK(top_level(root));
            CHECK(get_meta(root, "functionname") != NULL);
        }
        if (kept == 3) {
            succeeded = true;
            CHECK_EQ_SLICE(tp.chunks[0].spans[0].service, "bad_service");
            CHECK_EQ_SLICE(tp.chunks[0].spans[1].name, "Bad_Name");
            CHECK_EQ_SLICE(tp.chunks[1].spans[0].service, "unnamed-python-service");
            CHECK_EQ_SLICE(*get_meta(&tp.chunks[0].spans[0], "http.url"), "http://x/?");
            CHECK_EQ_SLICE(tp.env, "prod");
            CHECK(get_kv(tp.tags, tp.ntags, "_dd.tags.function") != NULL);
            CHECK(in_arena(&work, tp.chunks[0].spans[0].service.ptr));
            CHECK(in_arena(&work, tp.chunks[1].spans[0].service.ptr));
        }
        dds__arena_free(&in);
        dds__arena_free(&work);
    }
    CHECK(succeeded && saw_drop);
}

TEST(test_inputs_never_written) {
    /* every string of the request is read-only: a write through any slice would crash */
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__span s[2];
    s[0] = span3(1, 1, 0), s[1] = span3(1, 2, 1);
    s[0].service = ro("UPPER Case$svc");
    s[0].name = ro("Some-Name");
    s[0].type = ro("http");
    s[1].service = ro("\xC3\x96ther");
    s[0].meta = dds__arena_calloc(&a, 3, sizeof(dds__kv));
    s[0].meta[0] = (dds__kv){ro("http.url"), ro("http://user:pw@h/p?q=1#f")};
    s[0].meta[1] = (dds__kv){ro("card"), ro("4111 1111 1111 1111")};
    s[0].meta[2] = (dds__kv){ro("env"), ro("PROD")};
    s[0].nmeta = 3;
    dds__tracer_payload tp = one_chunk(&a, s, 2);
    tp.env = ro("My Env");
    dds__trace_process_config cfg = cfg0();
    cfg.remove_query_string = true;
    cfg.obfuscate_credit_cards = true;
    cfg.cloud_origin = "cloudfunction";
    dds__trace_process_counters ctr = {0};
    CHECK_EQ_INT(dds__trace_process(&tp, &cfg, &a, &ctr), 2);
    const dds__span *o = tp.chunks[0].spans;
    CHECK_EQ_SLICE(o[0].service, "upper_case_svc");
    CHECK_EQ_SLICE(o[0].name, "Some_Name");
    CHECK_EQ_SLICE(o[1].service, "\xC3\xB6ther");
    CHECK_EQ_SLICE(*get_meta(&o[0], "http.url"), "http://h/p?#f");
    CHECK_EQ_SLICE(*get_meta(&o[0], "card"), "?");
    CHECK_EQ_SLICE(*get_meta(&o[0], "env"), "prod");
    CHECK_EQ_SLICE(tp.env, "my_env");
    CHECK(in_arena(&a, o[0].service.ptr) && in_arena(&a, o[0].name.ptr) && in_arena(&a, o[1].service.ptr));
    CHECK(top_level(&o[1]));  /* service changed under its parent */
    dds__arena_free(&a);
    ro_free_all();
}

int main(void) {
    RUN(test_normalization_table);
    RUN(test_normalize_tag_table);
    RUN(test_link_name_normalized);
    RUN(test_start_fix_clamps_to_now);
    RUN(test_chunk_drops);
    RUN(test_no_chunks);
    RUN(test_priority_and_origin);
    RUN(test_priority_go_none_value);
    RUN(test_top_level_computed);
    RUN(test_top_level_client_computed);
    RUN(test_top_level_many_spans);
    RUN(test_enrichment);
    RUN(test_enrichment_defaults);
    RUN(test_credit_cards);
    RUN(test_enrichment_every_span);
    RUN(test_http_url);
    RUN(test_sql_spans);
    RUN(test_redis_valkey_memcached_spans);
    RUN(test_paths_with_digits_and_stack_traces);
    RUN(test_replace_tags);
    RUN(test_rust_obfuscation_span_vectors);
    RUN(test_obfuscation_allocation_failures);
    RUN(test_truncation_limits);
    RUN(test_truncation_never_splits_utf8);
    RUN(test_allocation_failures);
    RUN(test_inputs_never_written);
    return TEST_REPORT();
}
