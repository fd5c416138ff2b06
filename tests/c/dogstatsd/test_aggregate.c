/* test_aggregate.c - DogStatsD aggregation (PROTOCOL.md section 2): buckets, contexts, types,
 * tags, sample rates, zero-fill, timestamped samples, limits. Metrics are built by hand. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "dogstatsd/aggregate.h"
#include "dogstatsd/sketch.h"
#include "test.h"

/* ---- capturing sink: deep copies, so the test can check after the sink call returns ---- */

typedef struct cseries {
    char *name, *host;
    char **tags;
    size_t ntags;
    char **res; /* "type=name" */
    size_t nres;
    int type;
    int64_t interval;
    dds__point *pts;
    size_t npts;
} cseries;

typedef struct cpoint {
    dds__sketch_point p;
    int16_t *keys;
    uint16_t *counts;
} cpoint;

typedef struct csketch {
    char *name, *host;
    char **tags;
    size_t ntags;
    cpoint *pts;
    size_t npts;
} csketch;

typedef struct capture {
    cseries s[4096];
    size_t ns;
    csketch k[256];
    size_t nk;
} capture;

static char *dup_slice(dds__slice s) {
    char *p = malloc(s.len + 1);
    memcpy(p, s.ptr ? s.ptr : "", s.len);
    p[s.len] = 0;
    return p;
}

static char **dup_tags(const dds__slice *t, size_t n) {
    char **out = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) out[i] = dup_slice(t[i]);
    return out;
}

static void on_series(void *user, const dds__series *s) {
    capture *c = user;
    if (c->ns == sizeof(c->s) / sizeof(c->s[0])) abort();
    cseries *o = &c->s[c->ns++];
    o->name = dup_slice(s->name);
    o->host = dup_slice(s->host);
    o->tags = dup_tags(s->tags, s->ntags);
    o->ntags = s->ntags;
    o->res = calloc(s->nresources + 1, sizeof(char *));
    for (size_t i = 0; i < s->nresources; i++) {
        size_t n = s->resources[i].type.len + s->resources[i].name.len + 2;
        o->res[i] = malloc(n);
        snprintf(o->res[i], n, "%.*s=%.*s", (int)s->resources[i].type.len, s->resources[i].type.ptr,
                 (int)s->resources[i].name.len, s->resources[i].name.ptr);
    }
    o->nres = s->nresources;
    o->type = s->type;
    o->interval = s->interval;
    o->pts = malloc((s->npoints + 1) * sizeof(dds__point));
    memcpy(o->pts, s->points, s->npoints * sizeof(dds__point));
    o->npts = s->npoints;
}

static void on_sketch(void *user, const dds__sketch_series *s) {
    capture *c = user;
    if (c->nk == sizeof(c->k) / sizeof(c->k[0])) abort();
    csketch *o = &c->k[c->nk++];
    o->name = dup_slice(s->name);
    o->host = dup_slice(s->host);
    o->tags = dup_tags(s->tags, s->ntags);
    o->ntags = s->ntags;
    o->pts = calloc(s->npoints + 1, sizeof(cpoint));
    for (size_t i = 0; i < s->npoints; i++) {
        o->pts[i].p = s->points[i];
        o->pts[i].keys = malloc((s->points[i].nbins + 1) * sizeof(int16_t));
        o->pts[i].counts = malloc((s->points[i].nbins + 1) * sizeof(uint16_t));
        memcpy(o->pts[i].keys, s->points[i].keys, s->points[i].nbins * sizeof(int16_t));
        memcpy(o->pts[i].counts, s->points[i].counts, s->points[i].nbins * sizeof(uint16_t));
    }
    o->npts = s->npoints;
}

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void cap_reset(capture *c) {
    for (size_t i = 0; i < c->ns; i++) {
        free(c->s[i].name);
        free(c->s[i].host);
        free_strv(c->s[i].tags, c->s[i].ntags);
        free_strv(c->s[i].res, c->s[i].nres);
        free(c->s[i].pts);
    }
    for (size_t i = 0; i < c->nk; i++) {
        free(c->k[i].name);
        free(c->k[i].host);
        free_strv(c->k[i].tags, c->k[i].ntags);
        for (size_t j = 0; j < c->k[i].npts; j++) {
            free(c->k[i].pts[j].keys);
            free(c->k[i].pts[j].counts);
        }
        free(c->k[i].pts);
    }
    c->ns = c->nk = 0;
}

static capture *cap_new(void) { return calloc(1, sizeof(capture)); }
static void cap_free(capture *c) {
    cap_reset(c);
    free(c);
}

static const cseries *find(const capture *c, const char *name) {
    for (size_t i = 0; i < c->ns; i++)
        if (!strcmp(c->s[i].name, name)) return &c->s[i];
    return NULL;
}
static size_t count_named(const capture *c, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < c->ns; i++) n += !strcmp(c->s[i].name, name);
    return n;
}
static bool has(char **v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return true;
    return false;
}

/* ---- helpers to build input ------------------------------------------------------------- */

typedef struct env {
    dds__agg *a;
    dds__agg_counters ctr;
    capture *cap;
    dds__agg_sink sink;
} env;

static dds__agg_config base_config(void) {
    dds__agg_config c;
    memset(&c, 0, sizeof(c));
    c.histogram_aggregates = DDS__HAGG_DEFAULT;
    c.percentiles[0] = 0.95;
    c.n_percentiles = 1;
    c.counter_expiry_s = 0;
    c.client_telemetry = true;
    return c;
}

static void env_open(env *e, const dds__agg_config *cfg) {
    memset(&e->ctr, 0, sizeof(e->ctr));
    e->a = dds__agg_new(cfg, &e->ctr);
    if (!e->a) abort();
    e->cap = cap_new();
    e->sink = (dds__agg_sink){.user = e->cap, .series = on_series, .sketch = on_sketch};
}

static void env_close(env *e) {
    dds__agg_free(e->a);
    cap_free(e->cap);
}

static void flush(env *e, int64_t now, bool force) {
    cap_reset(e->cap);
    dds__agg_flush(e->a, now, force, &e->sink);
}

/* Name and tags live in a scratch buffer that is scribbled over after the call: anything the
 * aggregator kept without copying would show up as garbage. */
static void addv(env *e, const char *name, dds__mtype t, const double *vals, size_t n, const char *tags, double rate,
                 int64_t ts, int64_t now) {
    char buf[8192];
    size_t nl = strlen(name), tl = tags ? strlen(tags) : 0;
    memcpy(buf, name, nl);
    memcpy(buf + nl, tags ? tags : "", tl);
    dds__metric m;
    memset(&m, 0, sizeof(m));
    m.name = dds__slice_make(buf, nl);
    m.type = t;
    m.sample_rate = rate;
    m.tags = dds__slice_make(buf + nl, tl);
    m.timestamp = ts;
    m.raw_value = dds__slice_make("", 0);
    dds__agg_add(e->a, &m, vals, n, now);
    memset(buf, 'X', nl + tl);
}

static void add(env *e, const char *name, dds__mtype t, double v, const char *tags, int64_t now) {
    addv(e, name, t, &v, 1, tags, 1.0, 0, now);
}

static void add_rate(env *e, const char *name, dds__mtype t, double v, const char *tags, double rate, int64_t now) {
    addv(e, name, t, &v, 1, tags, rate, 0, now);
}

static void add_set(env *e, const char *name, const char *member, const char *tags, int64_t now) {
    char buf[512], mem[512];
    size_t nl = strlen(name), tl = tags ? strlen(tags) : 0, ml = strlen(member);
    memcpy(buf, name, nl);
    memcpy(buf + nl, tags ? tags : "", tl);
    memcpy(mem, member, ml);
    dds__metric m;
    memset(&m, 0, sizeof(m));
    m.name = dds__slice_make(buf, nl);
    m.type = DDS__MT_SET;
    m.sample_rate = 1;
    m.tags = dds__slice_make(buf + nl, tl);
    m.raw_value = dds__slice_make(mem, ml);
    dds__agg_add(e->a, &m, NULL, 0, now);
    memset(buf, 'X', nl + tl);
    memset(mem, 'Y', ml);
}

#define SAMPLES(e) dds__counter_get(&(e)->ctr.samples)
#define DROPPED(e) dds__counter_get(&(e)->ctr.samples_dropped)
#define CTX_DROPPED(e) dds__counter_get(&(e)->ctr.contexts_dropped)
#define CONTEXTS(e) dds__counter_get(&(e)->ctr.contexts)

/* ---- per type ---------------------------------------------------------------------------- */

TEST(count_is_a_rate_over_the_bucket) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "req", DDS__MT_COUNT, 3, "a:1", 100);
    add(&e, "req", DDS__MT_COUNT, 2, "a:1", 105);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 1);
    const cseries *s = find(e.cap, "req");
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(s->type, DDS__API_RATE);
        CHECK_EQ_INT(s->interval, 10);
        CHECK_EQ_INT(s->npts, 1);
        CHECK_EQ_DBL(s->pts[0].value, 0.5, 1e-12);
        CHECK_EQ_INT(s->pts[0].ts, 100);
        CHECK_EQ_STR(s->host, "");
        CHECK_EQ_INT(s->ntags, 1);
        CHECK_EQ_STR(s->tags[0], "a:1");
        CHECK_EQ_INT(s->nres, 0);
    }
    CHECK_EQ_INT(SAMPLES(&e), 2);
    CHECK_EQ_INT(DROPPED(&e), 0);
    env_close(&e);
}

TEST(gauge_keeps_the_last_value) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "temp", DDS__MT_GAUGE, 1, NULL, 100);
    add(&e, "temp", DDS__MT_GAUGE, 5, NULL, 101);
    double packed[] = {7, 3};
    addv(&e, "temp", DDS__MT_GAUGE, packed, 2, NULL, 1, 0, 102);
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "temp");
    CHECK(s && s->type == DDS__API_GAUGE && s->npts == 1);
    if (s) {
        CHECK_EQ_DBL(s->pts[0].value, 3, 0);
        CHECK_EQ_INT(s->pts[0].ts, 100);
        CHECK_EQ_INT(s->interval, 10);
        CHECK_EQ_INT(s->ntags, 0);
    }
    CHECK_EQ_INT(SAMPLES(&e), 4);
    env_close(&e);
}

TEST(set_counts_distinct_members) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add_set(&e, "users", "alice", NULL, 100);
    add_set(&e, "users", "bob", NULL, 101);
    add_set(&e, "users", "alice", NULL, 102);
    add_set(&e, "users", "a:b", NULL, 103);
    add_set(&e, "users", "alice", NULL, 111); /* next bucket: counted again */
    flush(&e, 120, false);
    const cseries *s = find(e.cap, "users");
    CHECK(s && s->type == DDS__API_GAUGE && s->npts == 2);
    if (s && s->npts == 2) {
        CHECK_EQ_DBL(s->pts[0].value, 3, 0);
        CHECK_EQ_INT(s->pts[0].ts, 100);
        CHECK_EQ_DBL(s->pts[1].value, 1, 0);
        CHECK_EQ_INT(s->pts[1].ts, 110);
    }
    CHECK_EQ_INT(SAMPLES(&e), 5);
    /* Reused bucket slot starts empty. */
    add_set(&e, "users", "carol", NULL, 125);
    flush(&e, 130, false);
    s = find(e.cap, "users");
    CHECK(s && s->npts == 1 && s->pts[0].value == 1);
    env_close(&e);
}

TEST(set_members_are_bounded) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    char m[32];
    for (int i = 0; i < 70000; i++) {
        snprintf(m, sizeof(m), "member-%d", i);
        add_set(&e, "big", m, NULL, 100);
    }
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "big");
    CHECK(s && s->npts == 1);
    if (s) CHECK_EQ_DBL(s->pts[0].value, 65536, 0);
    CHECK_EQ_INT(DROPPED(&e), 70000 - 65536);
    env_close(&e);
}

TEST(histogram_aggregates_and_percentiles) {
    dds__agg_config cfg = base_config();
    cfg.histogram_aggregates = DDS__HAGG_DEFAULT | DDS__HAGG_MIN | DDS__HAGG_SUM;
    cfg.percentiles[0] = 0.95;
    cfg.percentiles[1] = 0.5;
    cfg.percentiles[2] = 0.999;
    cfg.n_percentiles = 3;
    env e;
    env_open(&e, &cfg);
    /* 1..100 in a scrambled order */
    for (int i = 0; i < 100; i++) add(&e, "lat", DDS__MT_HISTOGRAM, (double)((i * 37) % 100 + 1), "x", 100);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 9);
    const cseries *s;
    CHECK((s = find(e.cap, "lat.max")) && s->type == DDS__API_GAUGE && s->pts[0].value == 100 && s->pts[0].ts == 100);
    CHECK((s = find(e.cap, "lat.min")) && s->type == DDS__API_GAUGE && s->pts[0].value == 1);
    /* Go: median = first sample whose cumulative weight passes (100-1)/2 = 49 -> the 50th. */
    CHECK((s = find(e.cap, "lat.median")) && s->pts[0].value == 50);
    CHECK((s = find(e.cap, "lat.avg")) && s->pts[0].value == 50.5);
    CHECK((s = find(e.cap, "lat.sum")) && s->pts[0].value == 5050);
    CHECK((s = find(e.cap, "lat.count")) && s->type == DDS__API_RATE && s->pts[0].value == 10);
    /* (95*100-1)/100 = 94 -> the 95th sample. */
    CHECK((s = find(e.cap, "lat.95percentile")) && s->type == DDS__API_GAUGE && s->pts[0].value == 95);
    CHECK((s = find(e.cap, "lat.50percentile")) && s->pts[0].value == 50);
    CHECK((s = find(e.cap, "lat.100percentile")) && s->pts[0].value == 100);
    CHECK(find(e.cap, "lat") == NULL);
    CHECK((s = find(e.cap, "lat.max")) && s->ntags == 1 && !strcmp(s->tags[0], "x"));
    env_close(&e);
}

TEST(histogram_default_series_and_small_counts) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "h", DDS__MT_HISTOGRAM, 4, NULL, 100);
    add(&e, "h", DDS__MT_HISTOGRAM, 2, NULL, 100);
    flush(&e, 110, false);
    /* default: max median avg count + .95percentile */
    CHECK_EQ_INT(e.cap->ns, 5);
    const cseries *s;
    CHECK((s = find(e.cap, "h.median")) && s->pts[0].value == 2); /* target (2-1)/2 = 0 */
    CHECK((s = find(e.cap, "h.95percentile")) && s->pts[0].value == 4); /* (190-1)/100 = 1 */
    CHECK((s = find(e.cap, "h.avg")) && s->pts[0].value == 3);
    CHECK((s = find(e.cap, "h.count")) && s->pts[0].value == 0.2);
    CHECK(find(e.cap, "h.min") == NULL && find(e.cap, "h.sum") == NULL);
    env_close(&e);
}

TEST(timing_is_its_own_context_but_a_histogram) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "t", DDS__MT_HISTOGRAM, 1, NULL, 100);
    add(&e, "t", DDS__MT_TIMING, 9, NULL, 100);
    CHECK_EQ_INT(CONTEXTS(&e), 2);
    flush(&e, 110, false);
    CHECK_EQ_INT(count_named(e.cap, "t.max"), 2);
    CHECK_EQ_INT(count_named(e.cap, "t.count"), 2);
    env_close(&e);
}

TEST(distribution_one_sketch_per_bucket) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    double v[] = {1, 2, 3};
    addv(&e, "d", DDS__MT_DISTRIBUTION, v, 3, "k:v", 0.5, 0, 100);
    add(&e, "d", DDS__MT_DISTRIBUTION, 10, "k:v", 115);
    flush(&e, 120, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    CHECK_EQ_INT(e.cap->nk, 1);
    if (e.cap->nk == 1) {
        const csketch *k = &e.cap->k[0];
        CHECK_EQ_STR(k->name, "d");
        CHECK_EQ_INT(k->ntags, 1);
        CHECK_EQ_STR(k->tags[0], "k:v");
        CHECK_EQ_INT(k->npts, 2);
        const dds__sketch_point *p = &k->pts[0].p;
        CHECK_EQ_INT(p->ts, 100);
        CHECK_EQ_INT(p->cnt, 6); /* weight trunc(1/0.5) = 2 each */
        CHECK_EQ_DBL(p->sum, 12, 0);
        CHECK_EQ_DBL(p->min, 1, 0);
        CHECK_EQ_DBL(p->max, 3, 0);
        CHECK_EQ_DBL(p->avg, 2, 1e-12);
        CHECK_EQ_INT(p->nbins, 3);
        if (p->nbins == 3) {
            CHECK_EQ_INT(k->pts[0].keys[0], 1338);
            CHECK_EQ_INT(k->pts[0].keys[1], 1383);
            CHECK_EQ_INT(k->pts[0].keys[2], dds__sketch_key(3));
            CHECK_EQ_INT(k->pts[0].counts[0], 2);
            CHECK_EQ_INT(k->pts[0].counts[2], 2);
        }
        CHECK_EQ_INT(k->pts[1].p.ts, 110);
        CHECK_EQ_INT(k->pts[1].p.cnt, 1);
        CHECK_EQ_INT(k->pts[1].p.nbins, 1);
        CHECK_EQ_INT(k->pts[1].keys[0], 1487);
    }
    CHECK_EQ_INT(SAMPLES(&e), 4);
    env_close(&e);
}

/* ---- contexts and tags ---------------------------------------------------------------------- */

TEST(tag_order_and_duplicates_do_not_split_contexts) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 1, "a,b", 100);
    add(&e, "c", DDS__MT_COUNT, 1, "b,a,a", 101);
    add(&e, "c", DDS__MT_COUNT, 1, "a,,b,a,", 102);
    add(&e, "c", DDS__MT_COUNT, 1, "b,a", 103);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    add(&e, "c", DDS__MT_COUNT, 1, "a", 104);
    add(&e, "c", DDS__MT_COUNT, 1, "a,b,c", 104);
    CHECK_EQ_INT(CONTEXTS(&e), 3);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 3);
    bool found = false;
    for (size_t i = 0; i < e.cap->ns; i++) {
        const cseries *s = &e.cap->s[i];
        if (s->ntags == 2 && has(s->tags, 2, "a") && has(s->tags, 2, "b")) {
            found = true;
            CHECK_EQ_DBL(s->pts[0].value, 0.4, 1e-12);
        }
    }
    CHECK(found);
    env_close(&e);
}

TEST(type_is_part_of_the_context) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "m", DDS__MT_COUNT, 10, "t", 100);
    add(&e, "m", DDS__MT_GAUGE, 42, "t", 100);
    CHECK_EQ_INT(CONTEXTS(&e), 2);
    flush(&e, 110, false);
    CHECK_EQ_INT(count_named(e.cap, "m"), 2);
    int rate = 0, gauge = 0;
    for (size_t i = 0; i < e.cap->ns; i++) {
        if (e.cap->s[i].type == DDS__API_RATE && e.cap->s[i].pts[0].value == 1) rate++;
        if (e.cap->s[i].type == DDS__API_GAUGE && e.cap->s[i].pts[0].value == 42) gauge++;
    }
    CHECK(rate == 1 && gauge == 1);
    env_close(&e);
}

TEST(host_tag_sets_the_host) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "h", DDS__MT_GAUGE, 1, "host:web1,x", 100);
    add(&e, "h", DDS__MT_GAUGE, 2, "x,host:web2", 100);
    add(&e, "h", DDS__MT_GAUGE, 3, "host:a,host:web3,x", 100); /* the last host: wins */
    add(&e, "h", DDS__MT_GAUGE, 4, "x", 100);
    CHECK_EQ_INT(CONTEXTS(&e), 4);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 4);
    for (size_t i = 0; i < e.cap->ns; i++) {
        const cseries *s = &e.cap->s[i];
        CHECK(s->ntags == 1 && !strcmp(s->tags[0], "x"));
        double v = s->pts[0].value;
        const char *want = v == 1 ? "web1" : v == 2 ? "web2" : v == 3 ? "web3" : "";
        CHECK_EQ_STR(s->host, want);
    }
    env_close(&e);
}

TEST(device_and_resource_tags) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "io", DDS__MT_GAUGE, 1, "device:sda,dd.internal.resource:database_instance:db1,x", 100);
    add(&e, "io2", DDS__MT_GAUGE, 1, "dd.internal.resource:foo,dd.internal.resource::x,dd.internal.resource:y:,z", 100);
    add(&e, "dist", DDS__MT_DISTRIBUTION, 1, "device:sda,x", 100);
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "io");
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(s->ntags, 1);
        CHECK_EQ_STR(s->tags[0], "x");
        CHECK_EQ_INT(s->nres, 2);
        if (s->nres == 2) {
            CHECK_EQ_STR(s->res[0], "device=sda");
            CHECK_EQ_STR(s->res[1], "database_instance=db1");
        }
    }
    /* Malformed resource tags are dropped (Go PopulateResources). */
    s = find(e.cap, "io2");
    CHECK(s && s->ntags == 1 && !strcmp(s->tags[0], "z") && s->nres == 0);
    /* Sketches have no resources: the Go agent keeps device: as a tag there. */
    CHECK_EQ_INT(e.cap->nk, 1);
    if (e.cap->nk == 1) {
        CHECK_EQ_INT(e.cap->k[0].ntags, 2);
        CHECK(has(e.cap->k[0].tags, e.cap->k[0].ntags, "device:sda"));
    }
    env_close(&e);
}

TEST(empty_tags_are_dropped) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "e", DDS__MT_GAUGE, 1, ",x,,y,", 100);
    add(&e, "e", DDS__MT_GAUGE, 2, "x,y", 101);
    add(&e, "none", DDS__MT_GAUGE, 1, "", 100);
    add(&e, "none", DDS__MT_GAUGE, 2, ",,", 101);
    CHECK_EQ_INT(CONTEXTS(&e), 2);
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "e");
    CHECK(s && s->ntags == 2 && has(s->tags, 2, "x") && has(s->tags, 2, "y") && s->pts[0].value == 2);
    s = find(e.cap, "none");
    CHECK(s && s->ntags == 0 && s->pts[0].value == 2);
    env_close(&e);
}

TEST(base_tags_are_added_once) {
    dds__agg_config cfg = base_config();
    dds__slice base[] = {DDS__SLICE_LIT("env:prod"), DDS__SLICE_LIT("origin:lambda"), DDS__SLICE_LIT("env:prod"),
                         DDS__SLICE_LIT("")};
    cfg.base_tags = base;
    cfg.n_base_tags = 4;
    env e;
    env_open(&e, &cfg);
    base[0] = DDS__SLICE_LIT("changed:after-new"); /* the aggregator copied them */
    add(&e, "b", DDS__MT_COUNT, 1, "env:prod,x", 100);
    add(&e, "b2", DDS__MT_GAUGE, 1, NULL, 100);
    add(&e, "b3", DDS__MT_DISTRIBUTION, 1, "env:prod", 100);
    add(&e, "b4", DDS__MT_HISTOGRAM, 1, NULL, 100);
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "b");
    CHECK(s && s->ntags == 3 && has(s->tags, 3, "env:prod") && has(s->tags, 3, "x") && has(s->tags, 3, "origin:lambda"));
    s = find(e.cap, "b2");
    CHECK(s && s->ntags == 2 && has(s->tags, 2, "env:prod") && has(s->tags, 2, "origin:lambda"));
    s = find(e.cap, "b4.max");
    CHECK(s && s->ntags == 2);
    CHECK(e.cap->nk == 1 && e.cap->k[0].ntags == 2 && has(e.cap->k[0].tags, 2, "origin:lambda"));
    env_close(&e);
}

TEST(namespace_is_prefixed) {
    dds__agg_config cfg = base_config();
    cfg.metric_namespace = DDS__SLICE_LIT("app");
    env e;
    env_open(&e, &cfg);
    add(&e, "a", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "h", DDS__MT_HISTOGRAM, 1, NULL, 100);
    add(&e, "d", DDS__MT_DISTRIBUTION, 1, NULL, 100);
    double v = 1;
    addv(&e, "t", DDS__MT_GAUGE, &v, 1, NULL, 1, 50, 100);
    flush(&e, 110, false);
    CHECK(find(e.cap, "app.a") != NULL);
    CHECK(find(e.cap, "app.h.max") != NULL);
    CHECK(find(e.cap, "app.t") != NULL);
    CHECK(e.cap->nk == 1 && !strcmp(e.cap->k[0].name, "app.d"));
    env_close(&e);

    cfg.metric_namespace = DDS__SLICE_LIT("svc.");
    env_open(&e, &cfg);
    add(&e, "a", DDS__MT_COUNT, 1, NULL, 100);
    flush(&e, 110, false);
    CHECK(find(e.cap, "svc.a") != NULL);
    env_close(&e);
}

/* A context keeps only its first line's bytes: its key is rebuilt at every flush, by a plain
 * split when that line holds the key's tags as they are, by canonicalizing it otherwise. Both
 * must give the first-seen order, the namespace and the base tags, flush after flush. */
static bool tags_are(const cseries *s, const char *const *want, size_t n) {
    if (!s || s->ntags != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->tags[i], want[i])) return false;
    return true;
}

TEST(keys_rebuilt_at_flush) {
    dds__agg_config cfg = base_config();
    dds__slice base[] = {DDS__SLICE_LIT("env:prod"), DDS__SLICE_LIT("origin:x")};
    cfg.base_tags = base;
    cfg.n_base_tags = 2;
    cfg.metric_namespace = DDS__SLICE_LIT("ns");
    env e;
    env_open(&e, &cfg);
    for (int round = 0; round < 2; round++) {
        int64_t t = 100 + round * 10;
        add(&e, "plain", DDS__MT_COUNT, 1, "z:1,y:2", t);
        add(&e, "plain", DDS__MT_COUNT, 1, "y:2,z:1", t); /* another spelling: same context */
        add(&e, "dups", DDS__MT_COUNT, 1, "z:1,,y:2,z:1", t);
        add(&e, "hasbase", DDS__MT_GAUGE, 1, "origin:x,k:v", t);
        add(&e, "host", DDS__MT_GAUGE, 1, "k:v,host:h1", t);
        add(&e, "dev", DDS__MT_GAUGE, 1, "device:sda,k:v", t);
        add(&e, "notags", DDS__MT_COUNT, 1, NULL, t);
        add(&e, "dist", DDS__MT_DISTRIBUTION, 1, "q:1,r:2", t);
        CHECK_EQ_INT(CONTEXTS(&e), 7);
        flush(&e, t + 10, false);
        static const char *const plain[] = {"z:1", "y:2", "env:prod", "origin:x"};
        CHECK(tags_are(find(e.cap, "ns.plain"), plain, 4));
        if (find(e.cap, "ns.plain")) CHECK_EQ_DBL(find(e.cap, "ns.plain")->pts[0].value, 0.2, 1e-12);
        CHECK(tags_are(find(e.cap, "ns.dups"), plain, 4));
        static const char *const hasbase[] = {"origin:x", "k:v", "env:prod"};
        CHECK(tags_are(find(e.cap, "ns.hasbase"), hasbase, 3));
        static const char *const kv[] = {"k:v", "env:prod", "origin:x"};
        const cseries *h = find(e.cap, "ns.host");
        CHECK(tags_are(h, kv, 3) && h && !strcmp(h->host, "h1"));
        const cseries *d = find(e.cap, "ns.dev");
        CHECK(tags_are(d, kv, 3) && d && d->nres == 1 && !strcmp(d->res[0], "device=sda"));
        static const char *const bare[] = {"env:prod", "origin:x"};
        const cseries *n = find(e.cap, "ns.notags");
        CHECK(tags_are(n, bare, 2) && !strcmp(n->host, ""));
        CHECK(e.cap->nk == 1 && !strcmp(e.cap->k[0].name, "ns.dist") && e.cap->k[0].ntags == 4 &&
              !strcmp(e.cap->k[0].tags[0], "q:1") && !strcmp(e.cap->k[0].tags[3], "origin:x"));
    }
    env_close(&e);
}

/* Base tags past the 32 a context can mark as present in its line: no duplicate either way. */
TEST(many_base_tags_in_the_line) {
    dds__agg_config cfg = base_config();
    static char names[40][16];
    dds__slice base[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "b%d:x", i);
        base[i] = dds__slice_make(names[i], strlen(names[i]));
    }
    cfg.base_tags = base;
    cfg.n_base_tags = 40;
    env e;
    env_open(&e, &cfg);
    add(&e, "low", DDS__MT_COUNT, 1, "k:v,b3:x", 100);
    add(&e, "high", DDS__MT_COUNT, 1, "b35:x,k:v", 100);
    flush(&e, 110, false);
    const cseries *lo = find(e.cap, "low"), *hi = find(e.cap, "high");
    CHECK(lo && lo->ntags == 41 && !strcmp(lo->tags[0], "k:v") && !strcmp(lo->tags[1], "b3:x") &&
          !strcmp(lo->tags[2], "b0:x") && !strcmp(lo->tags[40], "b39:x"));
    CHECK(hi && hi->ntags == 41 && !strcmp(hi->tags[0], "b35:x") && !strcmp(hi->tags[1], "k:v") &&
          !strcmp(hi->tags[2], "b0:x") && !strcmp(hi->tags[40], "b39:x"));
    size_t n3 = 0, n35 = 0;
    for (size_t i = 0; lo && hi && i < 41; i++) {
        n3 += !strcmp(lo->tags[i], "b3:x");
        n35 += !strcmp(hi->tags[i], "b35:x");
    }
    CHECK_EQ_INT(n3, 1);
    CHECK_EQ_INT(n35, 1);
    env_close(&e);
}

/* ---- sample rates and bad values ------------------------------------------------------------ */

TEST(sample_rates) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add_rate(&e, "c", DDS__MT_COUNT, 1, NULL, 0.5, 100);       /* counts 2 */
    add_rate(&e, "c0", DDS__MT_COUNT, 1, NULL, 0, 100);        /* rate 0 -> 1 */
    add_rate(&e, "c2", DDS__MT_COUNT, 1, NULL, 2, 100);        /* rate 2 -> 1 */
    add_rate(&e, "cn", DDS__MT_COUNT, 1, NULL, -0.5, 100);     /* negative -> 1 */
    add_rate(&e, "h", DDS__MT_HISTOGRAM, 6, NULL, 0.3, 100);   /* weight trunc(1/0.3) = 3 */
    add_rate(&e, "h", DDS__MT_HISTOGRAM, 1, NULL, 1, 100);
    add_rate(&e, "h2", DDS__MT_HISTOGRAM, 5, NULL, 2, 100);    /* rate 2 -> weight 1 */
    add_rate(&e, "g", DDS__MT_GAUGE, 7, NULL, 0.1, 100);       /* gauges ignore the rate */
    flush(&e, 110, false);
    const cseries *s;
    CHECK((s = find(e.cap, "c")) && s->pts[0].value == 0.2);
    CHECK((s = find(e.cap, "c0")) && s->pts[0].value == 0.1);
    CHECK((s = find(e.cap, "c2")) && s->pts[0].value == 0.1);
    CHECK((s = find(e.cap, "cn")) && s->pts[0].value == 0.1);
    CHECK((s = find(e.cap, "h.count")) && s->pts[0].value == 0.4);
    /* Go: sum adds v * (1/rate) untruncated, count adds trunc(1/rate). */
    CHECK((s = find(e.cap, "h.avg")) && fabs(s->pts[0].value - (6 * (1 / 0.3) + 1) / 4) < 1e-12);
    CHECK((s = find(e.cap, "h.median")) && s->pts[0].value == 6); /* weights 1:1, 6:3, target 1 */
    CHECK((s = find(e.cap, "h2.count")) && s->pts[0].value == 0.1);
    CHECK((s = find(e.cap, "g")) && s->pts[0].value == 7);
    env_close(&e);
}

TEST(nan_and_inf_are_dropped_and_counted) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    double v[] = {1, NAN, INFINITY, -INFINITY, 2};
    addv(&e, "c", DDS__MT_COUNT, v, 5, NULL, 1, 0, 100);
    addv(&e, "h", DDS__MT_HISTOGRAM, v, 5, NULL, 1, 0, 100);
    addv(&e, "d", DDS__MT_DISTRIBUTION, v, 5, NULL, 1, 0, 100);
    double bad[] = {NAN, INFINITY};
    addv(&e, "only_bad", DDS__MT_GAUGE, bad, 2, NULL, 1, 0, 100);
    CHECK_EQ_INT(DROPPED(&e), 3 * 3 + 2);
    CHECK_EQ_INT(SAMPLES(&e), 6);
    CHECK_EQ_INT(CONTEXTS(&e), 3); /* no context for a line with nothing to aggregate */
    flush(&e, 110, false);
    const cseries *s;
    CHECK((s = find(e.cap, "c")) && s->pts[0].value == 0.3);
    CHECK((s = find(e.cap, "h.count")) && s->pts[0].value == 0.2);
    CHECK(e.cap->nk == 1 && e.cap->k[0].pts[0].p.cnt == 2);
    CHECK(find(e.cap, "only_bad") == NULL);
    env_close(&e);
}

/* ---- buckets --------------------------------------------------------------------------------- */

TEST(closed_and_open_buckets) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 105);
    flush(&e, 109, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 1);
    CHECK(e.cap->ns == 1 && e.cap->s[0].pts[0].ts == 100 && e.cap->s[0].pts[0].value == 0.2);
    flush(&e, 115, false);
    CHECK_EQ_INT(e.cap->ns, 0); /* forgotten once emitted */

    /* force emits the open bucket */
    add(&e, "g", DDS__MT_GAUGE, 4, NULL, 115);
    add(&e, "d", DDS__MT_DISTRIBUTION, 4, NULL, 116);
    flush(&e, 116, false);
    CHECK_EQ_INT(e.cap->ns + e.cap->nk, 0);
    flush(&e, 116, true);
    const cseries *s = find(e.cap, "g");
    CHECK(s && s->pts[0].ts == 110 && s->pts[0].value == 4);
    CHECK(e.cap->nk == 1 && e.cap->k[0].pts[0].p.ts == 110);
    flush(&e, 117, true);
    CHECK_EQ_INT(e.cap->ns + e.cap->nk, 0);
    env_close(&e);
}

/* Flush before a freeze, twice in one 10 s bucket: the second send of a bucket must carry
 * everything the bucket holds, since Datadog keeps one point per series and timestamp. */
TEST(forced_flush_twice_in_one_bucket_resends_whole_buckets) {
    dds__agg_config cfg = base_config();
    cfg.counter_expiry_s = 300;
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 112);
    add_set(&e, "s", "alice", NULL, 112);
    add(&e, "d", DDS__MT_DISTRIBUTION, 5, NULL, 112);
    flush(&e, 113, true);
    const cseries *c = find(e.cap, "c");
    CHECK(c && c->npts == 1 && c->pts[0].ts == 110 && c->pts[0].value == 0.1);
    CHECK(e.cap->nk == 1 && e.cap->k[0].pts[0].p.cnt == 1);

    add(&e, "c", DDS__MT_COUNT, 2, NULL, 115);
    add_set(&e, "s", "bob", NULL, 115);
    add(&e, "d", DDS__MT_DISTRIBUTION, 7, NULL, 115);
    add(&e, "other", DDS__MT_GAUGE, 1, NULL, 115);
    flush(&e, 116, true);
    c = find(e.cap, "c");
    CHECK(c && c->npts == 1 && c->pts[0].ts == 110 && c->pts[0].value == 0.3); /* 1 + 2, not 2 */
    const cseries *st = find(e.cap, "s");
    CHECK(st && st->npts == 1 && st->pts[0].value == 2);                        /* alice + bob */
    CHECK(e.cap->nk == 1 && e.cap->k[0].pts[0].p.cnt == 1);                     /* sketches: the delta */

    /* Nothing new: a third forced flush in the same bucket re-sends nothing for them, and the
     * counter is not zero-filled at 110 although another context put data in that bucket. */
    add(&e, "other", DDS__MT_GAUGE, 2, NULL, 117);
    flush(&e, 118, true);
    CHECK(find(e.cap, "c") == NULL);
    CHECK(find(e.cap, "s") == NULL);
    CHECK_EQ_INT(e.cap->nk, 0);

    /* The bucket closes: still nothing more for it; the next bucket gets the counter's zero. */
    flush(&e, 121, false);
    c = find(e.cap, "c");
    CHECK(c == NULL || (c->npts == 1 && c->pts[0].ts != 110));
    flush(&e, 131, false);
    c = find(e.cap, "c");
    CHECK(c && c->npts == 1 && c->pts[0].ts == 120 && c->pts[0].value == 0);
    env_close(&e);
}

TEST(several_buckets_make_one_series) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "g", DDS__MT_GAUGE, 1, "k", 100);
    add(&e, "g", DDS__MT_GAUGE, 2, "k", 112);
    add(&e, "g", DDS__MT_GAUGE, 3, "k", 125);
    add(&e, "g", DDS__MT_GAUGE, 9, "k", 105); /* the clock went back: older bucket, kept in order */
    add(&e, "h", DDS__MT_HISTOGRAM, 1, NULL, 100);
    add(&e, "h", DDS__MT_HISTOGRAM, 3, NULL, 121);
    flush(&e, 140, false);
    const cseries *s = find(e.cap, "g");
    CHECK(s && s->npts == 3);
    if (s && s->npts == 3) {
        CHECK(s->pts[0].ts == 100 && s->pts[0].value == 9);
        CHECK(s->pts[1].ts == 110 && s->pts[1].value == 2);
        CHECK(s->pts[2].ts == 120 && s->pts[2].value == 3);
    }
    CHECK_EQ_INT(count_named(e.cap, "g"), 1);
    s = find(e.cap, "h.max");
    CHECK(s && s->npts == 2 && s->pts[0].ts == 100 && s->pts[1].ts == 120 && s->pts[1].value == 3);
    env_close(&e);
}

/* ---- counter zero-fill ------------------------------------------------------------------- */

TEST(counter_zero_fill_and_expiry) {
    dds__agg_config cfg = base_config();
    cfg.counter_expiry_s = 30;
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 5, NULL, 100);
    flush(&e, 110, false);
    const cseries *s = find(e.cap, "c");
    CHECK(s && s->npts == 1 && s->pts[0].value == 0.5 && s->pts[0].ts == 100);
    CHECK_EQ_INT(CONTEXTS(&e), 1); /* kept: it will be zero-filled */
    /* Nothing received: one zero per interval, at the last closed bucket. */
    flush(&e, 120, false);
    s = find(e.cap, "c");
    CHECK(s && s->npts == 1 && s->pts[0].value == 0 && s->pts[0].ts == 110);
    flush(&e, 125, false); /* less than an interval since the last flush: nothing */
    CHECK_EQ_INT(e.cap->ns, 0);
    /* Other traffic: zeros go into the buckets that hold data. */
    add(&e, "g", DDS__MT_GAUGE, 1, NULL, 121);
    flush(&e, 130, false);
    s = find(e.cap, "c");
    CHECK(s && s->npts == 1 && s->pts[0].value == 0 && s->pts[0].ts == 120);
    /* Last seen 100 + 30 > 120 gave that zero; no later bucket (start >= 130) can get one, so
     * the counter is released along with the gauge. */
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    flush(&e, 140, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    flush(&e, 150, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    /* A bucket with real data is not changed by the zero. */
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 151);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 165);
    flush(&e, 170, false);
    s = find(e.cap, "c");
    CHECK(s && s->npts == 2 && s->pts[0].value == 0.1 && s->pts[1].value == 0.1);
    env_close(&e);
}

TEST(counter_zero_fill_between_buckets_and_with_force) {
    dds__agg_config cfg = base_config();
    cfg.counter_expiry_s = 300;
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "g", DDS__MT_GAUGE, 1, NULL, 112);
    add(&e, "g", DDS__MT_GAUGE, 1, NULL, 125);
    flush(&e, 126, true);
    const cseries *s = find(e.cap, "c");
    /* Buckets 100 (data), 110 and 120 (zeros): force includes the open bucket. */
    CHECK(s && s->npts == 3);
    if (s && s->npts == 3) {
        CHECK(s->pts[0].ts == 100 && s->pts[0].value == 0.1);
        CHECK(s->pts[1].ts == 110 && s->pts[1].value == 0);
        CHECK(s->pts[2].ts == 120 && s->pts[2].value == 0);
    }
    /* Forced flush with nothing received: a zero for the current bucket. */
    flush(&e, 145, true);
    s = find(e.cap, "c");
    CHECK(s && s->npts == 1 && s->pts[0].ts == 140 && s->pts[0].value == 0);
    env_close(&e);
}

TEST(counter_zero_fill_off) {
    dds__agg_config cfg = base_config();
    cfg.counter_expiry_s = 0;
    env e;
    env_open(&e, &cfg);
    add(&e, "c", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "g", DDS__MT_GAUGE, 1, NULL, 112);
    flush(&e, 120, false);
    const cseries *s = find(e.cap, "c");
    CHECK(s && s->npts == 1 && s->pts[0].ts == 100);
    flush(&e, 130, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    env_close(&e);
}

/* ---- timestamped samples --------------------------------------------------------------------- */

TEST(timestamped_samples_skip_aggregation) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    double g = 5, c = 20, h = 1;
    addv(&e, "tg", DDS__MT_GAUGE, &g, 1, "host:h1,device:sda,x", 1, 1000, 2000);
    addv(&e, "tc", DDS__MT_COUNT, &c, 1, "x", 0.5, 1003, 2000);
    double two[] = {1, 2};
    addv(&e, "tc2", DDS__MT_COUNT, two, 2, NULL, 1, 1007, 2000);
    addv(&e, "th", DDS__MT_HISTOGRAM, &h, 1, NULL, 1, 1000, 2000);
    addv(&e, "td", DDS__MT_DISTRIBUTION, &h, 1, NULL, 1, 1000, 2000);
    CHECK_EQ_INT(DROPPED(&e), 2);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    flush(&e, 2001, false); /* emitted at the next flush, even a normal one */
    CHECK_EQ_INT(e.cap->ns, 4);
    CHECK_EQ_INT(e.cap->nk, 0);
    const cseries *s = find(e.cap, "tg");
    CHECK(s && s->type == DDS__API_GAUGE && s->npts == 1 && s->pts[0].ts == 1000 && s->pts[0].value == 5);
    if (s) {
        CHECK_EQ_STR(s->host, "h1");
        CHECK(s->ntags == 1 && !strcmp(s->tags[0], "x"));
        CHECK(s->nres == 1 && !strcmp(s->res[0], "device=sda"));
        CHECK_EQ_INT(s->interval, 10);
    }
    s = find(e.cap, "tc");
    /* v/10 at its own timestamp, no sample-rate scaling. */
    CHECK(s && s->type == DDS__API_RATE && s->pts[0].ts == 1003 && s->pts[0].value == 2);
    CHECK_EQ_INT(count_named(e.cap, "tc2"), 2);
    flush(&e, 2002, false);
    CHECK_EQ_INT(e.cap->ns, 0);
    env_close(&e);
}

/* ---- limits and telemetry -------------------------------------------------------------------- */

TEST(context_limit_drops_new_contexts_and_recovers) {
    dds__agg_config cfg = base_config();
    cfg.context_limit = 2;
    env e;
    env_open(&e, &cfg);
    add(&e, "a", DDS__MT_GAUGE, 1, NULL, 100);
    add(&e, "b", DDS__MT_GAUGE, 1, NULL, 100);
    double v[] = {1, 2, 3};
    addv(&e, "c", DDS__MT_GAUGE, v, 3, NULL, 1, 0, 100);
    CHECK_EQ_INT(CTX_DROPPED(&e), 3);
    add(&e, "a", DDS__MT_GAUGE, 2, NULL, 101); /* existing contexts keep working */
    CHECK_EQ_INT(CONTEXTS(&e), 2);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 2);
    CHECK(find(e.cap, "a") && find(e.cap, "a")->pts[0].value == 2);
    CHECK(find(e.cap, "c") == NULL);
    CHECK_EQ_INT(CONTEXTS(&e), 0); /* released: nothing left to emit */
    add(&e, "c", DDS__MT_GAUGE, 3, NULL, 111);
    CHECK_EQ_INT(CTX_DROPPED(&e), 3);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    flush(&e, 120, false);
    CHECK(find(e.cap, "c") && find(e.cap, "c")->pts[0].value == 3);
    env_close(&e);
}

TEST(released_slot_reuse_does_not_confuse_lines) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    add(&e, "first", DDS__MT_GAUGE, 1, "t:1", 100);
    flush(&e, 110, false);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    add(&e, "second", DDS__MT_GAUGE, 2, "t:2", 111); /* reuses the slab slot */
    add(&e, "first", DDS__MT_GAUGE, 3, "t:1", 112); /* same bytes as an old alias */
    CHECK_EQ_INT(CONTEXTS(&e), 2);
    flush(&e, 120, false);
    const cseries *s = find(e.cap, "first");
    CHECK(s && s->pts[0].value == 3 && !strcmp(s->tags[0], "t:1"));
    s = find(e.cap, "second");
    CHECK(s && s->pts[0].value == 2 && !strcmp(s->tags[0], "t:2"));
    env_close(&e);
}

TEST(context_expiry_keeps_idle_contexts) {
    dds__agg_config cfg = base_config();
    cfg.context_expiry_s = 20;
    env e;
    env_open(&e, &cfg);
    add(&e, "g", DDS__MT_GAUGE, 1, NULL, 100);
    flush(&e, 110, false);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    flush(&e, 119, false);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    flush(&e, 120, false);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    env_close(&e);
}

/* Releasing contexts moves the last live ones into the freed positions: the context table must
 * follow, so a new spelling of a moved context still finds it (by its canonical identity), and
 * a moved context can be released in turn. */
TEST(moved_contexts_are_still_found) {
    dds__agg_config cfg = base_config();
    cfg.context_expiry_s = 20;
    env e;
    env_open(&e, &cfg);
    for (int i = 0; i < 40; i++) {
        char tags[64];
        snprintf(tags, sizeof(tags), "k:%d,z:1", i);
        add(&e, "m", DDS__MT_GAUGE, i, tags, 100);
    }
    add(&e, "keep", DDS__MT_GAUGE, 1, "a:1,b:2", 100);
    CHECK_EQ_INT(CONTEXTS(&e), 41);
    add(&e, "keep", DDS__MT_GAUGE, 2, "a:1,b:2", 115);
    flush(&e, 125, false); /* the 40 "m" contexts expire; "keep" (the last created) moves */
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    add(&e, "keep", DDS__MT_GAUGE, 3, "b:2,a:1,a:1", 125); /* a new spelling: the slow path */
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    for (int i = 0; i < 40; i += 2) { /* "m" contexts again, then a new spelling of each */
        char tags[64];
        snprintf(tags, sizeof(tags), "k:%d,z:1", i);
        add(&e, "m", DDS__MT_GAUGE, i, tags, 126);
        snprintf(tags, sizeof(tags), "z:1,k:%d", i);
        add(&e, "m", DDS__MT_GAUGE, i + 1000, tags, 127);
    }
    CHECK_EQ_INT(CONTEXTS(&e), 21);
    flush(&e, 140, false);
    const cseries *k = find(e.cap, "keep");
    CHECK(k && k->npts == 1 && k->pts[0].value == 3);
    size_t nm = 0;
    for (size_t i = 0; i < e.cap->ns; i++)
        if (!strcmp(e.cap->s[i].name, "m")) {
            nm++;
            CHECK(e.cap->s[i].pts[0].value >= 1000);
        }
    CHECK_EQ_INT(nm, 20);
    add(&e, "keep", DDS__MT_GAUGE, 4, "a:1,b:2", 150); /* only "keep" stays live */
    flush(&e, 160, false);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    add(&e, "keep", DDS__MT_GAUGE, 5, "b:2,a:1", 160);
    CHECK_EQ_INT(CONTEXTS(&e), 1);
    flush(&e, 200, false);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    env_close(&e);
}

TEST(client_telemetry_can_be_dropped) {
    dds__agg_config cfg = base_config();
    cfg.client_telemetry = false;
    env e;
    env_open(&e, &cfg);
    add(&e, "datadog.dogstatsd.client.packets_sent", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "datadog.dogstatsd.clientele", DDS__MT_COUNT, 1, NULL, 100);
    add(&e, "app.requests", DDS__MT_COUNT, 1, NULL, 100);
    CHECK_EQ_INT(DROPPED(&e), 1);
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 2);
    CHECK(find(e.cap, "datadog.dogstatsd.client.packets_sent") == NULL);
    env_close(&e);

    cfg.client_telemetry = true;
    env_open(&e, &cfg);
    add(&e, "datadog.dogstatsd.client.packets_sent", DDS__MT_COUNT, 1, NULL, 100);
    flush(&e, 110, false);
    CHECK(find(e.cap, "datadog.dogstatsd.client.packets_sent") != NULL);
    CHECK_EQ_INT(DROPPED(&e), 0);
    env_close(&e);
}

/* ---- many contexts: table growth, permutations, release -------------------------------------- */

TEST(many_contexts_and_permutations) {
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    enum { N = 3000 };
    char tags[256];
    uint64_t seed = 12345;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            /* Same tag set for context i, in a different order every time. */
            const char *t[4] = {"env:prod", "service:web", "zone:a", NULL};
            char id[32];
            snprintf(id, sizeof(id), "id:%d", i);
            t[3] = id;
            for (int j = 3; j > 0; j--) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                int k = (int)((seed >> 33) % (uint64_t)(j + 1));
                const char *x = t[j];
                t[j] = t[k];
                t[k] = x;
            }
            snprintf(tags, sizeof(tags), "%s,%s,%s,%s", t[0], t[1], t[2], t[3]);
            add(&e, i % 2 ? "m.count" : "m.gauge", i % 2 ? DDS__MT_COUNT : DDS__MT_GAUGE, 1, tags, 100 + round);
        }
        CHECK_EQ_INT(CONTEXTS(&e), N);
    }
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, N);
    int bad = 0;
    for (size_t i = 0; i < e.cap->ns; i++) {
        const cseries *s = &e.cap->s[i];
        double want = !strcmp(s->name, "m.count") ? 0.3 : 1;
        if (s->ntags != 4 || fabs(s->pts[0].value - want) > 1e-12) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(CONTEXTS(&e), 0);
    /* Everything again after the release: aliases and slots are reused correctly. */
    for (int i = 0; i < N; i++) {
        snprintf(tags, sizeof(tags), "id:%d,zone:a", i);
        add(&e, "again", DDS__MT_GAUGE, i, tags, 111);
    }
    CHECK_EQ_INT(CONTEXTS(&e), N);
    flush(&e, 120, false);
    CHECK_EQ_INT(e.cap->ns, N);
    env_close(&e);
}

TEST(lines_differing_outside_the_sampled_windows) {
    /* The alias locator samples windows of the name and tag list; lines that differ only
     * elsewhere must still be told apart (and verified byte for byte). */
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    enum { N = 200 };
    char tags[256], name[128];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            /* same length; the id sits between the first and the middle window */
            snprintf(tags, sizeof(tags), "aaaaaaaaaaaaaaaaaaaa,id:%04d,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,cccccccccccccccccccc", i);
            add(&e, "same.name", DDS__MT_COUNT, 1, tags, 100);
            snprintf(name, sizeof(name), "a.long.metric.name.prefix.%04d.that.goes.on.and.on.and.on.x", i);
            add(&e, name, DDS__MT_COUNT, 1, "t", 100);
        }
        CHECK_EQ_INT(CONTEXTS(&e), 2 * N);
    }
    flush(&e, 110, false);
    CHECK_EQ_INT(e.cap->ns, 2 * N);
    int bad = 0;
    for (size_t i = 0; i < e.cap->ns; i++)
        if (fabs(e.cap->s[i].pts[0].value - 0.3) > 1e-12) bad++;
    CHECK_EQ_INT(bad, 0);
    env_close(&e);
}

/* Canonical form for the reference model: sorted, de-duplicated, non-empty tags. */
static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }
static void canonical(const char *name, const char *tags, char *out, size_t cap) {
    char buf[512], *v[64];
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", tags);
    for (char *p = buf, *q; p; p = q) {
        q = strchr(p, ',');
        if (q) *q++ = 0;
        if (*p) v[n++] = p;
    }
    qsort(v, n, sizeof(char *), cmp_str);
    size_t o = (size_t)snprintf(out, cap, "%s|", name);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(v[i], v[i - 1])) o += (size_t)snprintf(out + o, cap - o, "%s,", v[i]);
}
static void canonical_series(const cseries *s, char *out, size_t cap) {
    char tags[512];
    size_t o = 0;
    tags[0] = 0;
    for (size_t i = 0; i < s->ntags; i++) o += (size_t)snprintf(tags + o, sizeof(tags) - o, "%s%s", i ? "," : "", s->tags[i]);
    canonical(s->name, tags, out, cap);
}

/* dds__agg_add_line takes a seen line's tag list to the end of the line unscanned and lets the
 * alias compare prove it: every line must come out exactly as dds__parse_metric + dds__agg_add,
 * fields after the tags, duplicates and errors after the tags included, hit or not. */
static bool same_capture(const capture *x, const capture *y) {
    if (x->ns != y->ns || x->nk != y->nk) return false;
    for (size_t i = 0; i < x->ns; i++) {
        const cseries *a = &x->s[i], *b = &y->s[i];
        if (strcmp(a->name, b->name) || strcmp(a->host, b->host) || a->ntags != b->ntags || a->type != b->type ||
            a->npts != b->npts || a->nres != b->nres)
            return false;
        for (size_t j = 0; j < a->ntags; j++)
            if (strcmp(a->tags[j], b->tags[j])) return false;
        for (size_t j = 0; j < a->npts; j++)
            if (a->pts[j].ts != b->pts[j].ts || a->pts[j].value != b->pts[j].value) return false;
    }
    for (size_t i = 0; i < x->nk; i++) {
        const csketch *a = &x->k[i], *b = &y->k[i];
        if (strcmp(a->name, b->name) || a->ntags != b->ntags || a->npts != b->npts) return false;
        for (size_t j = 0; j < a->ntags; j++)
            if (strcmp(a->tags[j], b->tags[j])) return false;
        for (size_t j = 0; j < a->npts; j++)
            if (a->pts[j].p.cnt != b->pts[j].p.cnt || a->pts[j].p.sum != b->pts[j].p.sum ||
                a->pts[j].p.nbins != b->pts[j].p.nbins)
                return false;
    }
    return true;
}

TEST(add_line_is_parse_then_add) {
    static const char *L[] = {
        "a.b:1|c|#x:1,y:2",
        "a.b:1|c|#x:1,y:2|@0.5",
        "a.b:2|c|#x:1,y:2|T1700000000",
        "a.b:1|c|#x:1,y:2|@bad",
        "a.b:1|c|#x:1,y:2|T-5",
        "a.b:1|c|#x:1,y:2|#z:3",
        "a.b:1|c|#",
        "a.b:1|c|#|",
        "a.b:1|c|#x:1,y:2|",
        "a.b:1|c|#x:1,y:2|c:abcdef",
        "a.b:1|c|#x:1,y:2|e:it-123|card:low",
        "a.b:nan|c|#x:1|@bad",
        "a.b:nan|c|#x:1,y:2",
        "a.b:3|g|@0.5|#x:1,y:2",
        "a.b:3|g|#x:1,y:2|@0.25|@0.5",
        "a.b:1:2:3|d|#x:1,y:2",
        "a.b:1:2:3|d|#x:1,y:2|@0.5",
        "a.b:u1|s|#x:1,y:2",
        "a.b:u2|s|#x:1,y:2|T1700000000",
        "a.b:1|h|#y:2,x:1",
        "a.b:1|ms|#x:1|y:2",
        "a.b:1|c|#y:2,x:1,x:1,",
        "a.b:1|c|x|#x:1,y:2",
        "a.b:1|c|#host:h1,device:d0,x:1",
        "datadog.dogstatsd.client.sent:1|c|#x:1",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows:5|c|"
        "#tag_key_0:value_1_0,tag_key_1:value_1_1,tag_key_2:value_1_2,tag_key_3:value_1_3",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows:5|c|"
        "#tag_key_0:value_1_0,tag_key_1:value_1_1,tag_key_2:value_1_2,tag_key_3:value_1_3|@0.5",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows:5|c|"
        "#tag_key_0:value_1_0,tag_key_1:value_1_1,tag_key_2:value_1_2,tag_key_3:value_1_3|#tag_key_3:value_1_3",
        "x",
        "a.b|c",
        ":1|c|#x",
    };
    dds__agg_config cfg = base_config();
    cfg.client_telemetry = false;
    env ref, got;
    env_open(&ref, &cfg);
    env_open(&got, &cfg);
    double vals[64];
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(L) / sizeof(L[0]); i++) {
            size_t n = strlen(L[i]);
            char *buf = malloc(n); /* exact size: ASan sees any read past the line */
            memcpy(buf, L[i], n);
            dds__metric m;
            size_t nv = 0;
            int st_ref = dds__parse_metric(buf, n, &m, vals, 64, &nv);
            if (st_ref == DDS__PARSE_OK) dds__agg_add(ref.a, &m, vals, nv, 100 + round);
            int st_got = dds__agg_add_line(got.a, buf, n, vals, 64, 100 + round);
            if (st_got != st_ref) TEST_FAIL_AT("line %zu (%s), round %d: status %d, want %d", i, L[i], round, st_got, st_ref);
            memset(buf, 'X', n);
            free(buf);
        }
    }
    CHECK_EQ_INT(got.ctr.samples, ref.ctr.samples);
    CHECK_EQ_INT(got.ctr.samples_dropped, ref.ctr.samples_dropped);
    CHECK_EQ_INT(got.ctr.contexts, ref.ctr.contexts);
    CHECK(ref.ctr.samples > 0 && ref.ctr.samples_dropped > 0);
    flush(&ref, 200, true);
    flush(&got, 200, true);
    CHECK(ref.cap->ns > 0 && ref.cap->nk > 0);
    CHECK(same_capture(ref.cap, got.cap));
    env_close(&ref);
    env_close(&got);
}

/* dds__agg_add_packet finds a long line's end by the bytes of a context seen under its name,
 * not by scanning for the '\n': the lines it hands back, their statuses and everything it
 * aggregates must be exactly those of the plain split (dds__packet_next_line), the parser and
 * dds__agg_add. Random packets of lines sharing names and tag prefixes, of several tag lengths
 * per name (more than a bucket holds), other spellings, fields before and after the tags, bad
 * lines, events, service checks, '\r' and empty lines, and contexts released between packets
 * (a released context's alias must leave the index by name: ASan sees a stale one). */
typedef struct other_rec {
    size_t off[256], len[256];
    int st[256];
    size_t n;
    const char *base;
} other_rec;

static void record_other(void *user, dds__slice line, int st) {
    other_rec *r = user;
    if (r->n == 256) abort();
    r->off[r->n] = (size_t)(line.ptr - r->base);
    r->len[r->n] = line.len;
    r->st[r->n++] = st;
}

TEST(add_packet_is_split_then_parse_then_add) {
    static char pool[96][1200];
    size_t npool = 0;
    const char *names[] = {"svc.requests", "a.long.name.of.more.than.forty.eight.bytes.for.the.windows.x", "q"};
    const char *tagsets[] = {
        "env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "env:prod,service:checkout,version:1.2.3,route:/b,status:200,region:eu-west-1",
        "env:prod,service:checkout,version:1.2.3,route:/ab,status:200,region:eu-west-1",
        "env:prod,service:checkout,version:1.2.3,route:/abc,status:500,region:eu-west-1",
        "env:prod,service:checkout,version:1.2.3,route:/abcd,status:500,region:eu-west-1",
        "env:prod,service:checkout,version:1.2.3,route:/abcde,status:500,region:eu-west-1",
        "region:eu-west-1,status:200,route:/a,version:1.2.3,service:checkout,env:prod", /* another spelling */
        "env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1,,route:/a",
        "", /* "#" alone */
    };
    const char *types[] = {"c", "g", "d", "s", "h", "ms"};
    /* Each name and tag list under two types: contexts apart that share a name and a length. */
    for (size_t n = 0; n < 3; n++)
        for (size_t t = 0; t < sizeof(tagsets) / sizeof(*tagsets); t++)
            for (size_t k = 0; k < 2; k++) {
                const char *ty = types[(n * 7 + t + k) % 6];
                snprintf(pool[npool++], sizeof(pool[0]), "%s:%s|%s|#%s", names[n], ty[0] == 's' ? "u1" : "2.5", ty,
                         tagsets[t]);
            }
    const char *extra[] = {
        "svc.requests:1|c|@0.5|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|@0.5",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|c:abc",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|T1700000000",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|#x:1",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|@bad",
        "svc.requests:1|g|T1700000000|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:1:2:3|d|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:bad|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:1|x|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:nan|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1\r",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-\r1",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1,",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows.x.without.any.tags.at.all:1|c",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows.x.without.any.tags.at.all:1|c|@0.5",
        "a.long.name.of.more.than.forty.eight.bytes.for.the.windows.x.no.colon.nor.bar.in.the.head.at.all",
        "svc.requests:1|c",
        "q:1|c|#a",
        "_e{5,4}:title|text|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "_sc|svc.check|0|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "_sc|bad",
        "_weird.metric:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1",
        "svc.requests:1|c|#env:prod,service:checkout,version:1.2.3,route:/a,status:200,region:eu-west-1|",
    };
    for (size_t i = 0; i < sizeof(extra) / sizeof(*extra); i++) snprintf(pool[npool++], sizeof(pool[0]), "%s", extra[i]);
    /* A name longer than the head that is parsed before the end is known. */
    memset(pool[npool], 'n', 1100);
    snprintf(pool[npool] + 1100, sizeof(pool[0]) - 1100, ":1|c|#env:prod");
    npool++;
    const char *seps[] = {"\n", "\n", "\n", "\r\n", "\r\r\n", "\n\n", "\n\r\n"};

    dds__agg_config cfg = base_config();
    cfg.context_expiry_s = 0; /* contexts go at the flush that leaves them empty */
    env ref, got;
    env_open(&ref, &cfg);
    env_open(&got, &cfg);
    static double vals[8192];
    static char text[65536];
    uint64_t r = 7;
#define PNEXT() (r = r * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(r >> 33))
    size_t total_ok = 0, total_other = 0;
    for (int packet = 0; packet < 6000; packet++) {
        int64_t now = 1000 + packet / 50 * 10;
        size_t len = 0, k = 1 + PNEXT() % 30;
        for (size_t i = 0; i < k; i++) {
            const char *l = pool[PNEXT() % npool];
            size_t n = strlen(l);
            memcpy(text + len, l, n);
            len += n;
            if (i + 1 < k || PNEXT() % 2) {
                const char *sep = seps[PNEXT() % (sizeof(seps) / sizeof(*seps))];
                memcpy(text + len, sep, strlen(sep));
                len += strlen(sep);
            }
        }
        char *buf = malloc(len); /* exact size: ASan sees any read past the packet */
        memcpy(buf, text, len);
        other_rec want = {.base = buf}, have = {.base = buf};
        const char *cur = buf;
        dds__slice line;
        size_t want_ok = 0;
        while (dds__packet_next_line(&cur, buf + len, &line)) {
            if (dds__line_kind_of(line) != DDS__LINE_METRIC) {
                record_other(&want, line, DDS__AGG_NOT_METRIC);
                continue;
            }
            dds__metric m;
            size_t nv = 0;
            int st = dds__parse_metric(line.ptr, line.len, &m, vals, 8192, &nv);
            if (st != DDS__PARSE_OK) {
                record_other(&want, line, st);
                continue;
            }
            dds__agg_add(ref.a, &m, vals, nv, now);
            want_ok++;
        }
        size_t ok = dds__agg_add_packet(got.a, buf, len, vals, 8192, now, record_other, &have);
        if (ok != want_ok) TEST_FAIL_AT("packet %d: %zu lines aggregated, want %zu", packet, ok, want_ok);
        if (have.n != want.n) TEST_FAIL_AT("packet %d: %zu other lines, want %zu", packet, have.n, want.n);
        for (size_t i = 0; i < want.n; i++)
            if (have.off[i] != want.off[i] || have.len[i] != want.len[i] || have.st[i] != want.st[i])
                TEST_FAIL_AT("packet %d, other line %zu: at %zu (%zu bytes, status %d), want at %zu (%zu bytes, status %d)",
                             packet, i, have.off[i], have.len[i], have.st[i], want.off[i], want.len[i], want.st[i]);
        total_ok += ok;
        total_other += want.n;
        memset(buf, 'X', len);
        free(buf);
        if (packet % 50 == 49) {
            flush(&ref, now + 20, false);
            flush(&got, now + 20, false);
            if (!same_capture(ref.cap, got.cap)) TEST_FAIL_AT("packet %d: the flushes differ", packet);
        }
    }
#undef PNEXT
    CHECK(total_ok > 10000 && total_other > 1000);
    CHECK_EQ_INT(got.ctr.samples, ref.ctr.samples);
    CHECK_EQ_INT(got.ctr.samples_dropped, ref.ctr.samples_dropped);
    CHECK_EQ_INT(got.ctr.contexts, ref.ctr.contexts);
    flush(&ref, 1e9, true);
    flush(&got, 1e9, true);
    CHECK(same_capture(ref.cap, got.cap));
    env_close(&ref);
    env_close(&got);
}

TEST(random_lines_match_a_reference_model) {
    enum { POOL = 240, ROUNDS = 25, PER_ROUND = 3000, KEYS = 400 };
    static char names[POOL][64], tags[POOL][256], keys[POOL][600];
    static char seen[KEYS][600];
    static double want[KEYS];
    uint64_t r = 99;
#define NEXT() (r = r * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(r >> 33))
    for (int i = 0; i < POOL; i++) {
        int base = i / 3; /* three spellings per context: as is, permuted, with duplicates */
        snprintf(names[i], sizeof(names[i]), "%s", base % 5 == 0 ? "shared.name" : "m");
        if (base % 5 != 0) snprintf(names[i], sizeof(names[i]), "metric.%d", base % 7);
        char a[40], b[40];
        snprintf(a, sizeof(a), "id:%04d", base);
        snprintf(b, sizeof(b), "grp:%d", base % 3);
        const char *pad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        if (i % 3 == 0) snprintf(tags[i], sizeof(tags[i]), "%s,%s,%s,zzzzzzzzzzzzzzzzzzzzzz", pad, a, b);
        else if (i % 3 == 1) snprintf(tags[i], sizeof(tags[i]), "%s,%s,%s,zzzzzzzzzzzzzzzzzzzzzz", pad, b, a);
        else snprintf(tags[i], sizeof(tags[i]), "%s,,%s,%s,%s,zzzzzzzzzzzzzzzzzzzzzz", pad, a, a, b);
        canonical(names[i], tags[i], keys[i], sizeof(keys[i]));
    }
    dds__agg_config cfg = base_config();
    env e;
    env_open(&e, &cfg);
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        size_t nkeys = 0;
        for (int j = 0; j < PER_ROUND; j++) {
            int i = (int)(NEXT() % POOL);
            if (round % 2 && i % 2) continue; /* odd rounds: only half of the lines */
            add(&e, names[i], DDS__MT_COUNT, 1, tags[i], 100 + round * 10);
            size_t k = 0;
            while (k < nkeys && strcmp(seen[k], keys[i])) k++;
            if (k == nkeys) {
                snprintf(seen[nkeys], sizeof(seen[0]), "%s", keys[i]);
                want[nkeys++] = 0;
            }
            want[k] += 0.1;
        }
        flush(&e, 110 + round * 10, false);
        if (e.cap->ns != nkeys) bad++;
        for (size_t x = 0; x < e.cap->ns; x++) {
            char key[600];
            canonical_series(&e.cap->s[x], key, sizeof(key));
            size_t k = 0;
            while (k < nkeys && strcmp(seen[k], key)) k++;
            if (k == nkeys || fabs(e.cap->s[x].pts[0].value - want[k]) > 1e-9) bad++;
        }
        if (CONTEXTS(&e) != 0) bad++;
    }
#undef NEXT
    CHECK_EQ_INT(bad, 0);
    env_close(&e);
}

/* ---- allocation failures ------------------------------------------------------------------------- */

#include "alloc_hook.h"
#ifdef ALLOC_HOOK
/* What one flush emitted, without allocating: a failed allocation may drop samples, never merge
 * or split a context, so no two series of one flush may share name, tags and timestamp. */
static struct {
    char key[64][160];
    int n, dup;
} oom_seen;

static void oom_series(void *user, const dds__series *s) {
    (void)user;
    char k[160];
    int len = snprintf(k, sizeof(k), "%.*s|%.*s", (int)s->name.len, s->name.ptr, (int)s->host.len, s->host.ptr);
    char sorted[16][40];
    size_t nt = s->ntags < 16 ? s->ntags : 16;
    for (size_t i = 0; i < nt; i++) snprintf(sorted[i], sizeof(sorted[i]), "%.*s", (int)s->tags[i].len, s->tags[i].ptr);
    for (size_t i = 1; i < nt; i++) /* insertion sort: order is not identity */
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
            char t[40];
            memcpy(t, sorted[j], sizeof(t));
            memcpy(sorted[j], sorted[j - 1], sizeof(t));
            memcpy(sorted[j - 1], t, sizeof(t));
        }
    for (size_t i = 0; i < nt && len < (int)sizeof(k); i++) len += snprintf(k + len, sizeof(k) - (size_t)len, ",%s", sorted[i]);
    for (size_t p = 0; p < s->npoints && len < (int)sizeof(k); p++)
        len += snprintf(k + len, sizeof(k) - (size_t)len, "@%lld", (long long)s->points[p].ts);
    for (int i = 0; i < oom_seen.n; i++)
        if (!strcmp(oom_seen.key[i], k)) oom_seen.dup++;
    if (oom_seen.n < 64) snprintf(oom_seen.key[oom_seen.n++], sizeof(oom_seen.key[0]), "%s", k);
}

static void oom_sketch(void *user, const dds__sketch_series *s) { (void)user, (void)s; }

static int oom_dups;

static void oom_step(void *unused) {
    (void)unused;
    dds__slice base[] = {DDS__SLICE_LIT("env:prod"), DDS__SLICE_LIT("origin:x")};
    dds__agg_config cfg = base_config();
    cfg.base_tags = base;
    cfg.n_base_tags = 2;
    cfg.metric_namespace = DDS__SLICE_LIT("ns");
    cfg.counter_expiry_s = 20;
    cfg.context_expiry_s = 20;
    dds__agg_counters ctr;
    memset(&ctr, 0, sizeof(ctr));
    dds__agg *a = dds__agg_new(&cfg, &ctr);
    if (!a) return;
    static const struct { const char *name; dds__mtype t; const char *tags; } L[] = {
        {"c", DDS__MT_COUNT, "a:1,b:2"},           {"c", DDS__MT_COUNT, "b:2,a:1"},
        {"c", DDS__MT_COUNT, "a:1,,b:2,a:1"},      {"c", DDS__MT_COUNT, "env:prod,a:1"},
        {"g", DDS__MT_GAUGE, "host:h,device:d,k"}, {"g", DDS__MT_GAUGE, "k,device:d,host:h"},
        {"h", DDS__MT_HISTOGRAM, "x:1"},           {"d", DDS__MT_DISTRIBUTION, "y:1,origin:x"},
        {"s", DDS__MT_SET, "z:1"},                 {"c", DDS__MT_COUNT, "a:1,b:2"},
    };
    dds__agg_sink sink = {.series = oom_series, .sketch = oom_sketch};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(L) / sizeof(L[0]); i++) {
            dds__metric m;
            memset(&m, 0, sizeof(m));
            m.name = dds__slice_make(L[i].name, strlen(L[i].name));
            m.type = L[i].t;
            m.sample_rate = 1;
            m.tags = dds__slice_make(L[i].tags, strlen(L[i].tags));
            m.raw_value = DDS__SLICE_LIT("member");
            double v = (double)i;
            dds__agg_add(a, &m, &v, 1, 100 + round * 10);
        }
        oom_seen.n = 0;
        oom_seen.dup = 0;
        dds__agg_flush(a, 110 + round * 10, round == 2, &sink);
        oom_dups += oom_seen.dup;
    }
    dds__agg_flush(a, 200, true, &sink);
    dds__agg_free(a);
}

TEST(allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    oom_dups = 0;
    long total = alloc_fail_each(oom_step, NULL, 100000, "aggregator");
    if (total == 0) return; /* malloc is not ours: nothing to inject */
    CHECK(total >= 10);
    CHECK_EQ_INT(oom_dups, 0);
}
#else
TEST(allocation_failures) {}
#endif

int main(void) {
    RUN(allocation_failures);
    RUN(count_is_a_rate_over_the_bucket);
    RUN(gauge_keeps_the_last_value);
    RUN(set_counts_distinct_members);
    RUN(set_members_are_bounded);
    RUN(histogram_aggregates_and_percentiles);
    RUN(histogram_default_series_and_small_counts);
    RUN(timing_is_its_own_context_but_a_histogram);
    RUN(distribution_one_sketch_per_bucket);
    RUN(tag_order_and_duplicates_do_not_split_contexts);
    RUN(type_is_part_of_the_context);
    RUN(host_tag_sets_the_host);
    RUN(device_and_resource_tags);
    RUN(empty_tags_are_dropped);
    RUN(base_tags_are_added_once);
    RUN(keys_rebuilt_at_flush);
    RUN(many_base_tags_in_the_line);
    RUN(namespace_is_prefixed);
    RUN(sample_rates);
    RUN(nan_and_inf_are_dropped_and_counted);
    RUN(closed_and_open_buckets);
    RUN(forced_flush_twice_in_one_bucket_resends_whole_buckets);
    RUN(several_buckets_make_one_series);
    RUN(counter_zero_fill_and_expiry);
    RUN(counter_zero_fill_between_buckets_and_with_force);
    RUN(counter_zero_fill_off);
    RUN(timestamped_samples_skip_aggregation);
    RUN(context_limit_drops_new_contexts_and_recovers);
    RUN(released_slot_reuse_does_not_confuse_lines);
    RUN(context_expiry_keeps_idle_contexts);
    RUN(moved_contexts_are_still_found);
    RUN(client_telemetry_can_be_dropped);
    RUN(many_contexts_and_permutations);
    RUN(lines_differing_outside_the_sampled_windows);
    RUN(random_lines_match_a_reference_model);
    RUN(add_line_is_parse_then_add);
    RUN(add_packet_is_split_then_parse_then_add);
    return TEST_REPORT();
}
