/* aggregate.c - DogStatsD aggregation in 10 s buckets (PROTOCOL.md section 2, Go agent rules).
 * In: parsed metric lines whose slices point into the packet; what outlives the call is copied here.
 * Out: series and sketches handed to a sink at flush. Never blocks or does I/O, and never allocates
 * per sample once the context and its bucket exist (the steady state). */
#include "dogstatsd/aggregate.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytescan.h"
#include "common/hash.h"
#include "dogstatsd/sketch.h"

#define BUCKET DDS__BUCKET_SECONDS
/* Memory bounds per bucket and for the timestamped queue. Past them samples are dropped and
 * counted: a hostile or runaway client must not grow the process without limit. */
#define SET_MAX_MEMBERS (1u << 16)
#define SET_MAX_BYTES (8u << 20)
#define HIST_MAX_SAMPLES (1u << 20)
#define TIMED_MAX 65536u
/* Buffers above these sizes are freed when their bucket is flushed, instead of kept for reuse. */
#define HIST_KEEP_CAP 4096u
#define SET_KEEP_SLOTS 4096u

#define SEED_ALIAS 0x6a09e667f3bcc908ull
#define SEED_TAG 0xbb67ae8584caa73bull
#define SEED_CTX 0x3c6ef372fe94f82bull
#define SEED_SET 0xa54ff53a5f1d36f1ull

static const char CLIENT_TELEMETRY_PREFIX[] = "datadog.dogstatsd.client.";
static const char HOST_PREFIX[] = "host:";
static const char DEVICE_PREFIX[] = "device:";
static const char RESOURCE_PREFIX[] = "dd.internal.resource:";
#define PFX_LEN(p) (sizeof(p) - 1)
/* For the few helpers of the per-line path that gcc would otherwise keep out of line once they
 * have several callers (a call and its spills cost more than their bodies). */
#define HOT_INLINE inline __attribute__((always_inline))

/* ---- stored context keys ---------------------------------------------------------------- */

/* What the serializers need of a context or a timestamped line: one block, this header, its
 * arrays, then the bytes. A timestamped line owns its block (malloc); a context's is rebuilt
 * from the context's stored line into the aggregator's scratch at each flush (contexts keep
 * only their line's bytes: that is their memory). Base tags are not copied: they point into
 * the aggregator's own copy, which outlives keys. */
typedef struct keyblob {
    dds__slice name; /* namespace applied */
    dds__slice host;
    uint32_t nstags, nres, nktags;
    const dds__slice *stags;     /* series: first-seen order, no device:/resource tags, + base */
    const dds__resource *res;    /* device first, then dd.internal.resource entries */
    const dds__slice *ktags;     /* sketches: every tag (the Go agent keeps device: there) + base */
} keyblob;

typedef struct tagref {
    uint64_t h;
    const char *p;
    uint32_t len;
    uint32_t order; /* position in the line */
    uint16_t sidx;  /* position in the canonical order (tags past 65535 cannot fit a line) */
    uint8_t kind;   /* TAG_* */
} tagref;

typedef struct canon {
    dds__slice host;
    size_t n;       /* tb->v[0..n): sorted by (hash, bytes), de-duplicated */
    size_t n_raw;   /* tags before de-duplication (their line positions are 0..n_raw) */
    size_t n_items; /* comma-separated items of the list, empty and host: ones included */
    bool plain;     /* every tag is TAG_PLAIN */
    uint64_t hash;  /* (type, name, host, tag set) */
} canon;

/* Scratch for canonicalizing one tag list: v the tags, tmp the merge sort's buffer. */
typedef struct tagbuf {
    tagref *v, *tmp;
    size_t cap;
} tagbuf;

/* ---- bucket state ----------------------------------------------------------------------- */

typedef struct hsample {
    double v;
    int64_t w;
} hsample;

typedef struct smember {
    uint64_t h;
    uint32_t off;
    uint32_t len1; /* length + 1; 0 marks an empty slot */
} smember;

typedef struct setb {
    smember *tab;
    uint32_t mask, n;
    char *bytes;
    uint32_t blen, bcap;
} setb;

typedef struct histb {
    hsample *s;
    uint32_t n, cap;
    int64_t count; /* sum of trunc(1/rate) */
    double sum;    /* sum of v * (1/rate), untruncated, as the Go agent does */
} histb;

/* A bucket slot keeps its buffers when its bucket is flushed: the next bucket of the same
 * context reuses them (a context never changes type). */
/* The state of sets, histograms and distributions is allocated at the bucket's first sample
 * (NULL: empty), so a counter's or gauge's bucket is 16 bytes. */
typedef struct bucket {
    int64_t ts;
    union {
        double sum;  /* c: sum of v * (1/rate) */
        double last; /* g */
        histb *h;    /* h, ms */
        setb *set;   /* s */
        dds__sketch *sk; /* d */
    } u;
} bucket;

#define NO_BUCKET INT64_MIN

struct ctx;

/* Alias: the exact bytes of (type, raw name, raw tag list) seen on the wire, mapped to their
 * context. Steady-state lines hit here instead of splitting, hashing and sorting every tag.
 * An alias is found by its locator (type, lengths, and three 16-byte windows of the name and of
 * the tag list) and verified by one memcmp: a unique line is never hashed in full. When several
 * lines share a locator (same lengths, differences outside the windows), the main table holds a
 * group marker for it and the lines go to a second table keyed by their full hash: lookups stay
 * O(1) and only those lines pay for the full hash. */
enum { ALIAS_UNINDEXED, ALIAS_BY_LOC, ALIAS_BY_FULL };
typedef struct alias {
    uint64_t loc;
    struct alias *next; /* the context's other aliases (tag permutations) */
    uint32_t name_len, tags_len;
    uint8_t type;
    uint8_t where;      /* ALIAS_* */
    uint8_t extra;      /* 0: the context's primary alias, at the start of its block (its bytes are
                         * the context's data); 1: the head of an xalias. The full hash of the bytes
                         * is not kept: the rare alias of a locator group recomputes it. */
} alias;

/* Another spelling of a context: its own allocation, with its bytes (name then tags) at the same
 * offset as a context's (ALIAS_DATA_OFFSET; see alias_data). */
typedef struct xalias {
    alias al;
    struct ctx *c;
} xalias;

typedef struct agroup {
    uint64_t loc;
    uint32_t members;
    /* Every group is also on the aggregator's plain list: the table holds only tagged pointers
     * (hash bits on top), which leak checkers cannot follow, so ownership stays visible here. */
    struct agroup *prev, *next;
} agroup;

/* One allocation per context: the primary alias header, last_seen and the newest bucket
 * (inline) first, then the cold fields, then the primary alias bytes, which are also the
 * context's identity (canonicalized again when needed) and the source of its key at flush. A
 * steady-state hit reads this block once, header then bytes (the compare). No software prefetch
 * of its lines: measured neutral to slightly slower (bench/HISTORY.md, issue 12). */
typedef struct ctx {
    alias primary;
    int64_t last_seen;
    bucket cur;       /* newest bucket; cur.ts == NO_BUCKET when there is none (buffers kept) */
    bucket *old;      /* older unflushed buckets, old[0..nold) ascending; old[nold..capold) are
                       * spare slots with their buffers */
    uint32_t nold, capold;
    uint64_t hash;
    uint32_t index;   /* in dds__agg.all */
    uint32_t naliases;
    uint8_t type;
    uint8_t cur_sent; /* cur was sent by a forced flush while open and has had no sample since */
    uint8_t simple;   /* the stored tag list is its key's tags as they are: no empty, duplicate,
                       * host:, device: or resource tag (see key_simple) */
    uint32_t base_in; /* simple: bit i set when base tag i is in the line (then not added again) */
    char data[];      /* primary alias bytes */
} ctx;

_Static_assert(offsetof(ctx, primary) == 0, "a primary alias is at the start of its context");

static inline ctx *alias_ctx(const alias *al) {
    return al->extra ? ((const xalias *)al)->c : (ctx *)(uintptr_t)al;
}
/* Every alias's bytes are at the same offset from its header, whichever kind it is: the compare
 * of a hit can start loading them as soon as the table slot is read, without waiting for the
 * header's cache line to tell the kind (a cmov on it put two misses in a row on every hit). */
#define ALIAS_DATA_OFFSET offsetof(ctx, data)
_Static_assert(ALIAS_DATA_OFFSET >= sizeof(xalias), "an xalias's bytes follow its header");
static inline const char *alias_data(const alias *al) { return (const char *)al + ALIAS_DATA_OFFSET; }
static inline char *xalias_data(xalias *x) { return (char *)x + ALIAS_DATA_OFFSET; }

/* Alias slots are 8 bytes, (key bits 48..63) | pointer, so the table of a few thousand
 * contexts stays in cache: a mismatched slot is rejected without touching the alias. Bit 0 of
 * the pointer marks a group (aliases and groups are at least 8-byte aligned). User-space
 * pointers fit in 48 bits on x86-64 and arm64 Linux; one that does not is simply never indexed
 * (its lines take the slow path). */
#define APTR_BITS 48
#define APTR_MASK ((UINT64_C(1) << APTR_BITS) - 1)
#define AGROUP_BIT UINT64_C(1)

typedef struct htab {
    uint64_t *s;
    uint32_t mask, count;
} htab;

/* A context table slot: the low 32 bits of the context's canonical hash (its home, and a filter
 * before the full hash and the bytes are compared) and its position in dds__agg.all plus one
 * (0: empty). 8 bytes, not 16: at a load of at most 1/2 that is 16-32 bytes per context. */
typedef struct cslot {
    uint32_t h;
    uint32_t pos1;
} cslot;

/* Aliases by name and tag-list length, most recent first, seven per bucket of one cache line:
 * each (length << 48) | pointer | LH_CROWDED, 0 when empty, and 8 bits of its name's hash (never
 * 0) in chk; miss counts the lines that found nothing here since one found something. See
 * lh_resize and add_next. */
enum { LH_WAYS = 7 };
typedef struct lhint {
    uint64_t e[LH_WAYS];
    uint8_t chk[LH_WAYS];
    uint8_t miss;
} lhint;
_Static_assert(sizeof(lhint) == 64, "a bucket is one cache line");

typedef struct timed {
    keyblob *key;
    uint8_t type;
    int64_t ts;
    uint32_t nvals;
    double vals[];
} timed;

struct dds__agg {
    dds__agg_counters *ctr;
    agroup *groups;          /* every live agroup (see agroup) */
    uint32_t hagg;
    uint32_t counter_expiry_s, context_expiry_s, context_limit;
    bool client_telemetry;
    int npct;
    int pct[DDS__MAX_PERCENTILES];
    char pct_suffix[DDS__MAX_PERCENTILES][24];

    char *ns; /* "<ns>." or NULL */
    size_t ns_len;
    dds__slice *base;
    uint64_t *base_h;
    size_t nbase;
    char *base_mem;

    ctx **all; /* live contexts, for flush */
    uint32_t live, capall;

    cslot *ctab;
    uint32_t cmask, ccount;
    htab aloc;  /* aliases by locator, and group markers */
    htab afull; /* aliases of locator groups, by full hash */
    lhint *lh;  /* aliases by name (see add_next), a bucket per eight of aloc's slots */
    void *lh_mem; /* lh's allocation (lh is aligned to a cache line in it) */
    int64_t now_s, now_bucket; /* the last line's time and its bucket's start (a packet's lines share it) */
    uint32_t lhmask;

    /* Bucket starts that hold a non-distribution sample, the Go agent's metricsByTimestamp keys:
     * counter zero-fill happens in these buckets. Sorted. */
    int64_t *reg;
    uint32_t nreg, capreg;
    int64_t last_cutoff;

    timed **timed;
    uint32_t ntimed, captimed;

    /* Scratch, reused across calls. */
    bucket **bp;
    size_t bpcap;
    tagbuf tb;  /* the line being looked up; a context's line at flush */
    tagbuf tc;  /* a candidate context's stored line (ctx_matches) */
    char *keybuf;
    size_t keycap;
    dds__point *pts;
    size_t ptscap;
    dds__sketch_point *spts;
    size_t sptscap;
    char *namebuf;
    size_t namecap;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static inline bool has_prefix(const char *p, size_t len, const char *pfx, size_t n) {
    return len >= n && memcmp(p, pfx, n) == 0;
}

static inline int64_t bucket_start(int64_t t) {
    int64_t r = t % BUCKET;
    if (r < 0) r += BUCKET;
    return t - r;
}

static inline double sane_rate(double rate) { return (rate > 0 && rate <= 1) ? rate : 1; }

static bool is_aggregated_type(uint8_t t) { return t <= DDS__MT_SET; }

static void drop(dds__agg *a, size_t n) { dds__counter_add(&a->ctr->samples_dropped, n); }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}


/* ---- tag canonicalization (the slow path: a line whose bytes were not seen before) -------- */

/* dd.internal.resource:<type>:<name> with both parts non-empty (Go: PopulateResources); other
 * values of that tag are dropped. */
static bool resource_of(const char *p, size_t len, dds__resource *out) {
    const char *v = p + PFX_LEN(RESOURCE_PREFIX);
    size_t vl = len - PFX_LEN(RESOURCE_PREFIX);
    const char *colon = memchr(v, ':', vl);
    if (!colon || colon == v || (size_t)(colon - v) >= vl - 1) return false;
    out->type = dds__slice_make(v, (size_t)(colon - v));
    out->name = dds__slice_make(colon + 1, vl - (size_t)(colon - v) - 1);
    return true;
}

enum { TAG_PLAIN, TAG_DEVICE, TAG_RESOURCE, TAG_BAD_RESOURCE };

static int tag_kind(const char *p, size_t len) {
    if (len < PFX_LEN(DEVICE_PREFIX) || p[0] != 'd') return TAG_PLAIN; /* most tags */
    if (has_prefix(p, len, DEVICE_PREFIX, PFX_LEN(DEVICE_PREFIX))) return TAG_DEVICE;
    if (has_prefix(p, len, RESOURCE_PREFIX, PFX_LEN(RESOURCE_PREFIX))) {
        dds__resource r;
        return resource_of(p, len, &r) ? TAG_RESOURCE : TAG_BAD_RESOURCE;
    }
    return TAG_PLAIN;
}

static inline bool tag_less(const tagref *x, const tagref *y) {
    if (x->h != y->h) return x->h < y->h;
    if (x->len != y->len) return x->len < y->len;
    return memcmp(x->p, y->p, x->len) < 0;
}

static bool same_tag(const tagref *a, const tagref *b) {
    return a->h == b->h && a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* Stable bottom-up merge sort by (hash, bytes), tmp as large as v: equal tags keep their line
 * order, so de-duplication keeps the first one. (qsort's comparator calls and temporary buffer
 * made context creation noticeably slower.) */
static void sort_tags(tagref *v, tagref *tmp, size_t n) {
    enum { RUN = 8 };
    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = lo + RUN < n ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            tagref x = v[i];
            size_t j = i;
            for (; j > lo && tag_less(&x, &v[j - 1]); j--) v[j] = v[j - 1];
            v[j] = x;
        }
    }
    tagref *src = v, *dst = tmp;
    for (size_t w = RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) dst[o++] = tag_less(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
        }
        tagref *t = src;
        src = dst;
        dst = t;
    }
    if (src != v) memcpy(v, src, n * sizeof(tagref));
}

static int reserve_tags(tagbuf *tb, size_t need) {
    size_t cap = tb->cap ? tb->cap * 2 : 32;
    while (cap < need) cap *= 2;
    tagref *t1 = realloc(tb->v, cap * sizeof(tagref));
    if (!t1) return -1;
    tb->v = t1;
    tagref *t2 = realloc(tb->tmp, cap * sizeof(tagref));
    if (!t2) return -1; /* v is merely larger than cap says */
    tb->tmp = t2;
    tb->cap = cap;
    return 0;
}

/* host: is taken out (the last one wins, as in the Go agent's extractTagsMetadata); empty tags
 * are dropped; duplicates collapse; the hash does not depend on the order of the tags. */
static int canon_tags(tagbuf *tb, uint8_t type, dds__slice name, dds__slice tags, canon *cn) {
    cn->host = dds__slice_make("", 0);
    cn->n_items = 0;
    cn->plain = true;
    size_t n = 0;
    if (tags.len) {
        const char *p = tags.ptr, *end = tags.ptr + tags.len;
        for (;;) {
            const char *q = memchr(p, ',', (size_t)(end - p));
            if (!q) q = end;
            size_t len = (size_t)(q - p);
            cn->n_items++;
            if (len && has_prefix(p, len, HOST_PREFIX, PFX_LEN(HOST_PREFIX))) {
                cn->host = dds__slice_make(p + PFX_LEN(HOST_PREFIX), len - PFX_LEN(HOST_PREFIX));
            } else if (len) {
                /* A datagram holds at most 32768 tags; this bound only guards sidx. */
                if (n == UINT16_MAX) return -1;
                if (n == tb->cap && reserve_tags(tb, n + 1) < 0) return -1;
                tb->v[n] = (tagref){dds__hash64(p, len, SEED_TAG), p, (uint32_t)len, (uint32_t)n, 0,
                                    (uint8_t)tag_kind(p, len)};
                cn->plain &= tb->v[n].kind == TAG_PLAIN;
                n++;
            }
            if (q == end) break;
            p = q + 1;
        }
    }
    cn->n_raw = n;
    if (n > 1) {
        sort_tags(tb->v, tb->tmp, n);
        size_t w = 1;
        for (size_t i = 1; i < n; i++)
            if (!same_tag(&tb->v[i], &tb->v[w - 1])) tb->v[w++] = tb->v[i];
        n = w;
    }
    uint64_t h = dds__hash64(name.ptr, name.len, SEED_CTX ^ type);
    h = dds__hash64(cn->host.ptr, cn->host.len, h);
    for (size_t i = 0; i < n; i++) h = dds__hash_fold(h ^ tb->v[i].h, DDS__HASH_K1 ^ (uint64_t)i);
    cn->hash = dds__hash_finish(h, n);
    cn->n = n;
    return 0;
}

static bool in_tagset(const tagref *tr, size_t n, uint64_t h, dds__slice t) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tr[mid].h < h) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < n && tr[lo].h == h; lo++)
        if (tr[lo].len == t.len && memcmp(tr[lo].p, t.ptr, t.len) == 0) return true;
    return false;
}

/* The key of a timestamped line (perm NULL: a malloc'd block holding copies of the packet's
 * bytes, freed by the caller) or of a context at flush (perm: the context's stored line, name
 * then tag list, into which the key's name, host and tags point; the block is the aggregator's
 * scratch, valid until the next call). tb holds the tags as canon_tags left them. */
static keyblob *key_build(dds__agg *a, tagbuf *tb, const canon *cn, dds__slice raw_name, dds__slice raw_tags,
                          const char *perm) {
    size_t n = cn->n;
    tagref *tr = tb->v, *tr2 = tb->tmp;
    /* First-seen order: place each tag at its line position, then close the gaps. */
    for (size_t i = 0; i < cn->n_raw; i++) tr2[i].p = NULL;
    for (size_t i = 0; i < n; i++) tr2[tr[i].order] = tr[i];
    for (size_t i = 0, w = 0; i < cn->n_raw; i++)
        if (tr2[i].p) tr2[w++] = tr2[i];

    size_t nbase = 0;
    for (size_t i = 0; i < a->nbase; i++)
        if (!in_tagset(tr, n, a->base_h[i], a->base[i])) nbase++;
    /* Where a slice of the packet's tag list lives in perm. */
    const char *perm_tags = perm ? perm + raw_name.len : NULL;
    const bool name_in_perm = perm && !a->ns_len;
    size_t nplain = 0, nres = 0, bytes = (name_in_perm ? 0 : a->ns_len + raw_name.len) + (perm ? 0 : cn->host.len);
    bool device = false;
    for (size_t i = 0; i < n; i++) {
        int k = tr2[i].kind;
        if (k == TAG_PLAIN) nplain++;
        else if (k == TAG_RESOURCE) nres++;
        else if (k == TAG_DEVICE) device = true;
        if (!perm) bytes += tr2[i].len;
    }
    nres += device;
    /* When every tag is plain (no device:, no dd.internal.resource:, valid or not) the series
     * tags are the sketch tags, in the same order: one array serves both. */
    const bool share = nplain == n;

    size_t size = sizeof(keyblob) + (share ? 0 : (nplain + nbase) * sizeof(dds__slice)) +
                  nres * sizeof(dds__resource) + (n + nbase) * sizeof(dds__slice) + bytes;
    char *mem;
    if (perm) {
        size_t cap = a->keycap;
        void *kb = a->keybuf;
        if (grow(&kb, &cap, size, 1) < 0) return NULL;
        a->keybuf = kb;
        a->keycap = cap;
        mem = a->keybuf;
    } else if (!(mem = malloc(size))) {
        return NULL;
    }
    keyblob *k = (keyblob *)mem;
    char *p = mem + sizeof(keyblob);
    dds__slice *stags = (dds__slice *)p;
    if (!share) p += (nplain + nbase) * sizeof(dds__slice);
    dds__resource *res = (dds__resource *)p;
    p += nres * sizeof(dds__resource);
    dds__slice *ktags = (dds__slice *)p;
    p += (n + nbase) * sizeof(dds__slice);
    if (share) stags = ktags;
    char *text = p;

    if (name_in_perm) {
        k->name = dds__slice_make(perm, raw_name.len);
    } else {
        if (a->ns_len) memcpy(text, a->ns, a->ns_len);
        memcpy(text + a->ns_len, raw_name.ptr, raw_name.len);
        k->name = dds__slice_make(text, a->ns_len + raw_name.len);
        text += k->name.len;
    }
    if (perm) {
        k->host = cn->host.len ? dds__slice_make(perm_tags + (cn->host.ptr - raw_tags.ptr), cn->host.len)
                               : dds__slice_make("", 0);
    } else {
        if (cn->host.len) memcpy(text, cn->host.ptr, cn->host.len);
        k->host = dds__slice_make(text, cn->host.len);
        text += cn->host.len;
    }

    size_t ns = 0, nr = device ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const tagref *t = &tr2[i];
        dds__slice s;
        if (perm) {
            s = dds__slice_make(perm_tags + (t->p - raw_tags.ptr), t->len);
        } else {
            memcpy(text, t->p, t->len);
            s = dds__slice_make(text, t->len);
            text += t->len;
        }
        ktags[i] = s;
        switch (t->kind) {
        case TAG_PLAIN:
            if (!share) stags[ns] = s;
            ns++;
            break;
        case TAG_DEVICE:
            /* Go agent (PopulateDeviceField): every device: tag leaves the tags, the last one
             * becomes the series' device resource. */
            res[0] = (dds__resource){DDS__SLICE_LIT("device"),
                                     dds__slice_make(s.ptr + PFX_LEN(DEVICE_PREFIX), s.len - PFX_LEN(DEVICE_PREFIX))};
            break;
        case TAG_RESOURCE:
            resource_of(s.ptr, s.len, &res[nr++]);
            break;
        default:
            break;
        }
    }
    size_t nk = n;
    for (size_t i = 0; i < a->nbase; i++) {
        if (in_tagset(tr, n, a->base_h[i], a->base[i])) continue;
        if (!share) stags[ns] = a->base[i];
        ns++;
        ktags[nk++] = a->base[i];
    }
    assert(ns == nplain + nbase && nr == nres && nk == n + nbase);
    k->stags = stags;
    k->nstags = (uint32_t)ns;
    k->res = res;
    k->nres = (uint32_t)nres;
    k->ktags = ktags;
    k->nktags = (uint32_t)nk;
    return k;
}

static inline dds__slice ctx_name(const ctx *c) { return dds__slice_make(c->data, c->primary.name_len); }
static inline dds__slice ctx_tags(const ctx *c) {
    return dds__slice_make(c->data + c->primary.name_len, c->primary.tags_len);
}

/* The key of a simple context: its tags are the comma-separated items of its stored list, in
 * their order, then the base tags that are not among them. No hashing or sorting: a split. */
static keyblob *key_simple(dds__agg *a, const ctx *c) {
    const dds__slice tags = ctx_tags(c);
    const char *end = tags.ptr + tags.len;
    size_t n = 0;
    if (tags.len) {
        n = 1;
        for (const char *p = tags.ptr; p < end && (p = memchr(p, ',', (size_t)(end - p))); p++) n++;
    }
    size_t size = sizeof(keyblob) + (n + a->nbase) * sizeof(dds__slice) + (a->ns_len ? a->ns_len + c->primary.name_len : 0);
    size_t cap = a->keycap;
    void *kb = a->keybuf;
    if (grow(&kb, &cap, size, 1) < 0) return NULL;
    a->keybuf = kb;
    a->keycap = cap;
    keyblob *k = (keyblob *)a->keybuf;
    dds__slice *ktags = (dds__slice *)(k + 1);
    if (a->ns_len) {
        char *text = (char *)(ktags + n + a->nbase);
        memcpy(text, a->ns, a->ns_len);
        memcpy(text + a->ns_len, c->data, c->primary.name_len);
        k->name = dds__slice_make(text, a->ns_len + c->primary.name_len);
    } else {
        k->name = ctx_name(c);
    }
    k->host = dds__slice_make("", 0);
    const char *p = tags.ptr;
    for (size_t i = 0; i < n; i++) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (!q) q = end;
        ktags[i] = dds__slice_make(p, (size_t)(q - p));
        p = q + 1;
    }
    size_t nk = n;
    for (size_t i = 0; i < a->nbase; i++)
        if (i >= 32 || !(c->base_in & (UINT32_C(1) << i))) ktags[nk++] = a->base[i];
    k->stags = k->ktags = ktags;
    k->nstags = k->nktags = (uint32_t)nk;
    k->res = NULL;
    k->nres = 0;
    return k;
}

/* A context's key, rebuilt from its stored line (flush only). NULL when out of memory. */
static keyblob *ctx_key(dds__agg *a, const ctx *c) {
    if (c->simple) return key_simple(a, c);
    canon cn;
    if (canon_tags(&a->tb, c->type, ctx_name(c), ctx_tags(c), &cn) < 0) return NULL;
    return key_build(a, &a->tb, &cn, ctx_name(c), ctx_tags(c), c->data);
}

/* ---- context table (canonical identity) -------------------------------------------------- */

/* Whether context c is (type, name, the line's canonical tags in a->tb): c's stored line is
 * canonicalized again into a->tc and compared tag by tag, bytes included. Only lines whose bytes
 * were never seen before get here (a new context, or another spelling of one). */
static int ctx_matches(dds__agg *a, const ctx *c, uint8_t type, dds__slice name, const canon *cn) {
    if (c->type != type || c->primary.name_len != name.len || memcmp(c->data, name.ptr, name.len) != 0) return 0;
    canon cc;
    if (canon_tags(&a->tc, c->type, ctx_name(c), ctx_tags(c), &cc) < 0) return -1; /* out of memory */
    if (cc.n != cn->n || !dds__slice_eq(cc.host, cn->host)) return 0;
    for (size_t i = 0; i < cn->n; i++) {
        const tagref *t = &a->tb.v[i], *u = &a->tc.v[i];
        if (u->h != t->h || u->len != t->len || memcmp(u->p, t->p, t->len) != 0) return 0;
    }
    return 1;
}

/* NULL with *failed set when a candidate could not be compared (out of memory): the caller must
 * not create a second context with the same identity. */
static ctx *ctab_find(dds__agg *a, uint8_t type, dds__slice name, const canon *cn, bool *failed) {
    *failed = false;
    if (!a->ctab) return NULL;
    const uint32_t h = (uint32_t)cn->hash;
    for (uint32_t i = h & a->cmask; a->ctab[i].pos1; i = (i + 1) & a->cmask) {
        if (a->ctab[i].h != h) continue;
        ctx *c = a->all[a->ctab[i].pos1 - 1];
        if (c->hash != cn->hash) continue;
        int r = ctx_matches(a, c, type, name, cn);
        if (r > 0) return c;
        if (r < 0) *failed = true;
    }
    return NULL;
}

static void ctab_put(cslot *tab, uint32_t mask, uint32_t h, uint32_t pos1) {
    uint32_t i = h & mask;
    while (tab[i].pos1) i = (i + 1) & mask;
    tab[i] = (cslot){h, pos1};
}

static int ctab_reserve(dds__agg *a) {
    uint32_t size = a->ctab ? a->cmask + 1 : 0;
    if (a->ctab && (a->ccount + 1) * 2 <= size) return 0;
    uint32_t nsize = size ? size * 2 : 256;
    cslot *nt = calloc(nsize, sizeof(cslot));
    if (!nt) return -1;
    for (uint32_t i = 0; i < size; i++)
        if (a->ctab[i].pos1) ctab_put(nt, nsize - 1, a->ctab[i].h, a->ctab[i].pos1);
    free(a->ctab);
    a->ctab = nt;
    a->cmask = nsize - 1;
    return 0;
}

/* The slot of the context at position pos of dds__agg.all, whose hash is h. */
static uint32_t ctab_slot(const dds__agg *a, uint64_t h, uint32_t pos) {
    uint32_t i = (uint32_t)h & a->cmask;
    while (a->ctab[i].pos1 != pos + 1) i = (i + 1) & a->cmask;
    return i;
}

/* Linear probing with backward-shift deletion: no tombstones to slow lookups down later. */
static void ctab_remove(dds__agg *a, const ctx *c) {
    uint32_t mask = a->cmask, i = ctab_slot(a, c->hash, c->index);
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!a->ctab[j].pos1) break;
        uint32_t home = a->ctab[j].h & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            a->ctab[i] = a->ctab[j];
            i = j;
        }
    }
    a->ctab[i].pos1 = 0;
    a->ccount--;
}

/* ---- alias table ------------------------------------------------------------------------ */

#define SEED_FULL 0x510e527fade682d1ull

/* Three 16-byte windows (start, middle, end) of a byte range. Up to 48 bytes they overlap and
 * cover every byte, so the same three reads hash a short name whole: no length-dependent branch
 * to mispredict (names are 10-100 bytes at random). Under 16 bytes there is nothing to window. */
static HOT_INLINE uint64_t windows(const char *s, size_t n, uint64_t seed) {
    const uint8_t *t = (const uint8_t *)s;
    if (n < 16) return dds__hash64(t, n, seed);
    size_t mid = n / 2 - 8;
    uint64_t x = dds__hash_fold(dds__hash_rd64(t) ^ DDS__HASH_K1, dds__hash_rd64(t + 8) ^ seed);
    uint64_t y = dds__hash_fold(dds__hash_rd64(t + mid) ^ DDS__HASH_K2, dds__hash_rd64(t + mid + 8) ^ n);
    uint64_t z = dds__hash_fold(dds__hash_rd64(t + n - 16) ^ DDS__HASH_K3, dds__hash_rd64(t + n - 8) ^ DDS__HASH_K0);
    return dds__hash_finish(x ^ dds__hash_fold(y ^ DDS__HASH_K0, z ^ DDS__HASH_K1), n);
}

/* The locator's first half, of the name and type alone: also the key of the line-end hints. */
/* The locator's first half, of the name alone: also the key of the index by name (see lh_resize).
 * The type comes in with the tags. */
static HOT_INLINE uint64_t name_hash(const char *name, size_t n) { return windows(name, n, SEED_ALIAS); }

static HOT_INLINE uint64_t locator(const char *tags, size_t n, uint64_t nh, uint8_t type) {
    return windows(tags, n, nh ^ ((uint64_t)(type + 1) * DDS__HASH_K2));
}

static HOT_INLINE uint64_t alias_locator(const dds__metric *m) {
    return locator(m->tags.ptr, m->tags.len, name_hash(m->name.ptr, m->name.len), (uint8_t)m->type);
}

static inline uint64_t alias_full(const dds__metric *m) {
    return dds__hash64(m->tags.ptr, m->tags.len, dds__hash64(m->name.ptr, m->name.len, SEED_FULL ^ m->type));
}

static uint64_t alias_full_of(const alias *al) {
    const char *d = alias_data(al);
    return dds__hash64(d + al->name_len, al->tags_len, dds__hash64(d, al->name_len, SEED_FULL ^ al->type));
}

static inline bool alias_matches(const alias *al, const dds__metric *m) {
    if (al->type != m->type || al->name_len != m->name.len || al->tags_len != m->tags.len) return false;
    const char *d = alias_data(al);
    return memcmp(d, m->name.ptr, m->name.len) == 0 &&
           (m->tags.len == 0 || memcmp(d + m->name.len, m->tags.ptr, m->tags.len) == 0);
}

static inline alias *aptr(uint64_t e) { return (alias *)(uintptr_t)(e & APTR_MASK); }
static inline agroup *gptr(uint64_t e) { return (agroup *)(uintptr_t)(e & APTR_MASK & ~AGROUP_BIT); }
static inline uint64_t slot_of(uint64_t key, const void *p) { return (key & ~APTR_MASK) | (uint64_t)(uintptr_t)p; }

/* The key an entry was stored under: needed to move entries on growth and deletion. */
static uint64_t entry_key(uint64_t e, bool by_full) {
    if (e & AGROUP_BIT) return gptr(e)->loc;
    return by_full ? alias_full_of(aptr(e)) : aptr(e)->loc;
}

static void ht_put(htab *t, uint64_t key, uint64_t e) {
    uint32_t i = (uint32_t)key & t->mask;
    while (t->s[i]) i = (i + 1) & t->mask;
    t->s[i] = e;
    t->count++;
}

/* Room for `extra` more entries at a load factor of at most 1/2. */
static int ht_reserve(htab *t, bool by_full, uint32_t extra) {
    uint32_t size = t->s ? t->mask + 1 : 0;
    if ((t->count + extra) * 2 <= size) return 0;
    uint32_t nsize = size ? size * 2 : 1024;
    while ((t->count + extra) * 2 > nsize) nsize *= 2;
    htab n = {calloc(nsize, sizeof(uint64_t)), nsize - 1, 0};
    if (!n.s) return -1;
    for (uint32_t i = 0; i < size; i++)
        if (t->s[i]) ht_put(&n, entry_key(t->s[i], by_full), t->s[i]);
    free(t->s);
    *t = n;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to slow lookups down later. */
static void ht_del(htab *t, uint64_t key, uint64_t e, bool by_full) {
    uint32_t mask = t->mask, i = (uint32_t)key & mask;
    while (t->s[i] != e) i = (i + 1) & mask;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->s[j]) break;
        uint32_t home = (uint32_t)entry_key(t->s[j], by_full) & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->s[i] = t->s[j];
            i = j;
        }
    }
    t->s[i] = 0;
    t->count--;
}

/* The main-table entry (alias or group) of a locator, 0 if none. */
static uint64_t *loc_entry(const dds__agg *a, uint64_t loc) {
    if (!a->aloc.s) return NULL;
    for (uint32_t i = (uint32_t)loc & a->aloc.mask; a->aloc.s[i]; i = (i + 1) & a->aloc.mask) {
        uint64_t e = a->aloc.s[i];
        if ((e ^ loc) & ~APTR_MASK) continue;
        if (entry_key(e, false) == loc) return &a->aloc.s[i];
    }
    return NULL;
}

/* ---- aliases by name ------------------------------------------------------------------------ */

/* A second, small index of the indexed aliases, by name (name_hash) and type and by the length
 * of their tag list: what a line needs to find its context before its end is known (add_next).
 * A bucket (one cache line, a bucket per eight alias-table slots) keeps the seven (name, type,
 * length) entries last seen in it, each with the alias last seen under it; LH_CROWDED marks an
 * entry under which another alias was seen too (several contexts of one name whose tag lists have
 * the same length: their locator tells them apart). Every entry is an indexed alias:
 * alias_unindex takes it out, and a table made anew (when the alias table grows) starts empty. A
 * line that finds nothing takes the locator path, then goes in. The table is made by the first
 * long line that goes in (short lines never use it); without one (allocation failure) every line
 * takes the locator path. */
#define LH_CROWDED UINT64_C(1)
#define LH_LEN_SHIFT APTR_BITS
#define LH_LEN_MAX 0xFFFFu

static void lh_resize(dds__agg *a) {
    uint32_t want = (a->aloc.mask + 1) / 8;
    if (!a->aloc.s || (a->lh && a->lhmask + 1 == want)) return;
    free(a->lh_mem);
    a->lh = NULL;
    a->lh_mem = calloc((size_t)want + 1, sizeof(lhint));
    if (a->lh_mem) a->lh = (lhint *)(((uintptr_t)a->lh_mem + sizeof(lhint) - 1) & ~(uintptr_t)(sizeof(lhint) - 1));
    a->lhmask = a->lh ? want - 1 : 0;
}

/* A bucket whose lines mostly find nothing (a name with more tag-list lengths than a bucket holds,
 * seen in turn) is neither searched nor taught for a while: its miss count goes up by one a miss
 * and down by LH_HIT_CREDIT a hit (so it stays low above one hit in five lines); past LH_TRIES
 * only LH_TRIES lines in every 256 try it, so that it recovers when the traffic changes. */
enum { LH_TRIES = 16, LH_HIT_CREDIT = 4 };

static inline lhint *lh_bucket(const dds__agg *a, uint64_t nh) { return &a->lh[(uint32_t)nh & a->lhmask]; }
static inline uint8_t lh_check(uint64_t nh) { return (uint8_t)(nh >> 56) | 1; }
static inline const alias *lh_alias(uint64_t e) { return (const alias *)(uintptr_t)(e & APTR_MASK & ~LH_CROWDED); }
static inline size_t lh_len(uint64_t e) { return (size_t)(e >> LH_LEN_SHIFT); }
static inline uint64_t lh_entry(const alias *al, bool crowded) {
    return ((uint64_t)al->tags_len << LH_LEN_SHIFT) | (uint64_t)(uintptr_t)al | (crowded ? LH_CROWDED : 0);
}

static bool lh_holds(const lhint *b, const alias *al) {
    for (int i = 0; i < LH_WAYS; i++)
        if (b->e[i] && lh_alias(b->e[i]) == al) return true;
    return false;
}

/* Entry i leaves bucket b; the ones after it move up. */
static void lh_remove(lhint *b, int i) {
    for (; i < LH_WAYS - 1; i++) {
        b->e[i] = b->e[i + 1];
        b->chk[i] = b->chk[i + 1];
    }
    b->e[LH_WAYS - 1] = 0;
    b->chk[LH_WAYS - 1] = 0;
}

/* Whether al's name and type are these. */
static inline bool named(const alias *al, uint8_t type, const char *name, size_t len) {
    return al->type == type && al->name_len == len && memcmp(alias_data(al), name, len) == 0;
}
static inline bool same_name(const alias *al, const dds__metric *m) {
    return named(al, (uint8_t)m->type, m->name.ptr, m->name.len);
}
static bool same_name_aliases(const alias *x, const alias *y) { return named(x, y->type, alias_data(y), y->name_len); }

/* al (indexed) has just matched a line of name hash nh that found no entry: it goes first in its
 * bucket, in place of the entry of the same name and length if there is one (then crowded). */
static void lh_learn(dds__agg *a, uint64_t nh, const alias *al) {
    if (al->tags_len > LH_LEN_MAX) return;
    if (!a->lh) lh_resize(a);
    if (!a->lh) return;
    lhint *b = lh_bucket(a, nh);
    const uint8_t chk = lh_check(nh);
    bool crowded = false;
    int i = 0;
    for (; i < LH_WAYS; i++) {
        const uint64_t e = b->e[i];
        if (e && b->chk[i] == chk && lh_len(e) == al->tags_len && same_name_aliases(lh_alias(e), al)) {
            crowded = (e & LH_CROWDED) || lh_alias(e) != al;
            break;
        }
    }
    if (i == LH_WAYS) i = LH_WAYS - 1; /* the least recent goes */
    for (; i > 0; i--) {
        b->e[i] = b->e[i - 1];
        b->chk[i] = b->chk[i - 1];
    }
    b->e[0] = lh_entry(al, crowded);
    b->chk[0] = chk;
}

static uint64_t alias_name_hash(const alias *al) { return name_hash(alias_data(al), al->name_len); }

/* al is leaving the alias table: out of its bucket too, from every entry that holds it (learning
 * and the crowded path keep an alias in one entry as a rule, but a stale one would be read after
 * its free). */
static void lh_forget(dds__agg *a, const alias *al) {
    if (!a->lh) return;
    lhint *b = lh_bucket(a, alias_name_hash(al));
    for (int i = 0; i < LH_WAYS;)
        if (b->e[i] && lh_alias(b->e[i]) == al) lh_remove(b, i);
        else i++;
}

/* Index al (already filled in). False when it cannot be: the line then keeps taking the
 * slow path, which is correct, only slower. */
static bool alias_index(dds__agg *a, alias *al, uint64_t full) {
    if ((uint64_t)(uintptr_t)al & ~APTR_MASK) return false;
    /* A parsed tag list never holds a '|', nor a line a '\n'; dds__agg_add_line's hits rely on no
     * alias holding a '|' in its tags, dds__agg_add_next's on none holding a '\n' (a metric made
     * by hand might hold either). */
    const char *d = alias_data(al);
    if (al->tags_len && memchr(d + al->name_len, '|', al->tags_len)) return false;
    if (memchr(d, '\n', (size_t)al->name_len + al->tags_len)) return false;
    if (ht_reserve(&a->aloc, false, 1) < 0 || ht_reserve(&a->afull, true, 2) < 0) return false;
    if (a->lh) lh_resize(a); /* made by the first long line (lh_learn), then sized with aloc */
    uint64_t *e = loc_entry(a, al->loc);
    if (!e) {
        ht_put(&a->aloc, al->loc, slot_of(al->loc, al));
        al->where = ALIAS_BY_LOC;
        return true;
    }
    if (!(*e & AGROUP_BIT)) {
        /* Second line with this locator: the first one moves to the full-hash table. */
        agroup *g = malloc(sizeof(*g));
        if (!g) return false;
        alias *first = aptr(*e);
        g->loc = al->loc;
        g->members = 1;
        g->prev = NULL;
        g->next = a->groups;
        if (a->groups) a->groups->prev = g;
        a->groups = g;
        *e = slot_of(al->loc, g) | AGROUP_BIT;
        uint64_t first_full = alias_full_of(first);
        ht_put(&a->afull, first_full, slot_of(first_full, first));
        first->where = ALIAS_BY_FULL;
    }
    gptr(*e)->members++;
    ht_put(&a->afull, full, slot_of(full, al));
    al->where = ALIAS_BY_FULL;
    return true;
}

static void alias_unindex(dds__agg *a, alias *al) {
    if (al->where != ALIAS_UNINDEXED) lh_forget(a, al);
    if (al->where == ALIAS_BY_LOC) {
        ht_del(&a->aloc, al->loc, slot_of(al->loc, al), false);
    } else if (al->where == ALIAS_BY_FULL) {
        uint64_t full = alias_full_of(al);
        ht_del(&a->afull, full, slot_of(full, al), true);
        uint64_t *e = loc_entry(a, al->loc);
        assert(e && (*e & AGROUP_BIT));
        agroup *g = gptr(*e);
        if (--g->members == 0) {
            ht_del(&a->aloc, g->loc, *e, false);
            if (g->prev) g->prev->next = g->next;
            else a->groups = g->next;
            if (g->next) g->next->prev = g->prev;
            free(g);
        }
    }
    al->where = ALIAS_UNINDEXED;
}

static void alias_fill(alias *al, const dds__metric *m, char *data, uint64_t loc, bool extra) {
    memcpy(data, m->name.ptr, m->name.len);
    if (m->tags.len) memcpy(data + m->name.len, m->tags.ptr, m->tags.len);
    al->loc = loc;
    al->extra = extra;
    al->next = NULL;
    al->name_len = (uint32_t)m->name.len;
    al->tags_len = (uint32_t)m->tags.len;
    al->type = (uint8_t)m->type;
    al->where = ALIAS_UNINDEXED;
}

/* Another spelling (tag order, duplicates, empty tags) of an existing context. */
static void alias_add(dds__agg *a, ctx *c, const dds__metric *m, uint64_t loc, uint64_t full) {
    /* A client that permutes its tags at random would add an alias per permutation: past this
     * bound its lines just take the slow path. */
    if (c->naliases >= 64 || a->aloc.count + a->afull.count > 4u * a->live + 1024u) return;
    xalias *x = malloc(ALIAS_DATA_OFFSET + m->name.len + m->tags.len);
    if (!x) return;
    x->c = c;
    alias *al = &x->al;
    alias_fill(al, m, xalias_data(x), loc, true);
    if (!alias_index(a, al, full)) {
        free(x);
        return;
    }
    al->next = c->primary.next;
    c->primary.next = al;
    c->naliases++;
}

static const alias *alias_find_full(const dds__agg *a, const dds__metric *m, uint64_t loc, uint64_t full) {
    for (uint32_t i = (uint32_t)full & a->afull.mask; a->afull.s[i]; i = (i + 1) & a->afull.mask) {
        if ((a->afull.s[i] ^ full) & ~APTR_MASK) continue;
        const alias *al = aptr(a->afull.s[i]);
        if (al->loc == loc && alias_matches(al, m)) return al;
    }
    return NULL;
}

/* *full is computed on demand (have_full tells): only locator groups need it. */
static HOT_INLINE const alias *alias_find(const dds__agg *a, const dds__metric *m, uint64_t loc, uint64_t *full,
                                         bool *have_full) {
    for (uint32_t i = (uint32_t)loc & a->aloc.mask; a->aloc.s[i]; i = (i + 1) & a->aloc.mask) {
        uint64_t e = a->aloc.s[i];
        if ((e ^ loc) & ~APTR_MASK) continue;
        if (e & AGROUP_BIT) {
            if (gptr(e)->loc != loc) continue;
            *full = alias_full(m);
            *have_full = true;
            return alias_find_full(a, m, loc, *full);
        }
        const alias *al = aptr(e);
        if (al->loc != loc) continue;
        /* The only line with this locator: it is this one, or this one is new. */
        return alias_matches(al, m) ? al : NULL;
    }
    return NULL;
}

/* ---- contexts ------------------------------------------------------------------------------ */

static ctx *ctx_create(dds__agg *a, const dds__metric *m, const canon *cn, uint64_t loc, uint64_t full) {
    if (a->live == a->capall) {
        size_t cap = a->capall;
        void *p = a->all;
        if (grow(&p, &cap, a->live + 1, sizeof(ctx *)) < 0) return NULL;
        a->all = p;
        a->capall = (uint32_t)cap;
    }
    if (ctab_reserve(a) < 0) return NULL;
    ctx *c = malloc(sizeof(ctx) + m->name.len + m->tags.len);
    if (!c) return NULL;
    memset(c, 0, sizeof(*c));
    alias_fill(&c->primary, m, c->data, loc, false);
    (void)alias_index(a, &c->primary, full);
    c->hash = cn->hash;
    c->type = (uint8_t)m->type;
    c->simple = cn->n_items == cn->n && cn->plain && !cn->host.len;
    for (size_t i = 0; i < a->nbase && c->simple; i++) {
        if (!in_tagset(a->tb.v, cn->n, a->base_h[i], a->base[i])) continue;
        if (i < 32) c->base_in |= UINT32_C(1) << i;
        else c->simple = 0; /* past 32 base tags, such a context takes the canonical path */
    }
    c->cur.ts = NO_BUCKET;
    c->index = a->live;
    a->all[a->live++] = c;
    ctab_put(a->ctab, a->cmask, (uint32_t)c->hash, c->index + 1);
    a->ccount++;
    dds__counter_set(&a->ctr->contexts, a->live);
    return c;
}

static void bucket_free_buffers(uint8_t type, bucket *b) {
    switch (type) {
    case DDS__MT_HISTOGRAM:
    case DDS__MT_TIMING:
        if (b->u.h) free(b->u.h->s);
        free(b->u.h);
        b->u.h = NULL;
        break;
    case DDS__MT_SET:
        if (b->u.set) {
            free(b->u.set->tab);
            free(b->u.set->bytes);
        }
        free(b->u.set);
        b->u.set = NULL;
        break;
    case DDS__MT_DISTRIBUTION:
        if (b->u.sk) dds__sketch_free(b->u.sk);
        free(b->u.sk);
        b->u.sk = NULL;
        break;
    default:
        break;
    }
}

static void ctx_free(ctx *c) {
    bucket_free_buffers(c->type, &c->cur);
    for (uint32_t i = 0; i < c->capold; i++) bucket_free_buffers(c->type, &c->old[i]);
    free(c->old);
    for (alias *al = c->primary.next, *next; al; al = next) {
        next = al->next;
        free(al);
    }
    free(c);
}

static void ctx_release(dds__agg *a, ctx *c) {
    ctab_remove(a, c);
    for (alias *al = &c->primary; al; al = al->next) alias_unindex(a, al);
    ctx *last = a->all[--a->live];
    if (last != c) {
        /* The last context moves into the freed position: its table slot follows. */
        a->ctab[ctab_slot(a, last->hash, last->index)].pos1 = c->index + 1;
        last->index = c->index;
        a->all[c->index] = last;
    }
    ctx_free(c);
    dds__counter_set(&a->ctr->contexts, a->live);
}

static int reg_add(dds__agg *a, int64_t ts) {
    if (a->nreg && a->reg[a->nreg - 1] == ts) return 0;
    uint32_t i = a->nreg;
    while (i > 0 && a->reg[i - 1] > ts) i--;
    if (i > 0 && a->reg[i - 1] == ts) return 0;
    size_t cap = a->capreg;
    void *p = a->reg;
    if (grow(&p, &cap, a->nreg + 1, sizeof(int64_t)) < 0) return -1;
    a->reg = p;
    a->capreg = (uint32_t)cap;
    memmove(a->reg + i + 1, a->reg + i, (a->nreg - i) * sizeof(int64_t));
    a->reg[i] = ts;
    a->nreg++;
    return 0;
}

static void bucket_begin(uint8_t type, bucket *b, int64_t ts) {
    b->ts = ts;
    switch (type) {
    case DDS__MT_COUNT:
        b->u.sum = 0;
        break;
    case DDS__MT_GAUGE:
        b->u.last = 0;
        break;
    case DDS__MT_HISTOGRAM:
    case DDS__MT_TIMING:
        if (!b->u.h) break;
        b->u.h->n = 0;
        b->u.h->count = 0;
        b->u.h->sum = 0;
        break;
    case DDS__MT_SET:
        if (!b->u.set) break;
        if (b->u.set->tab) memset(b->u.set->tab, 0, ((size_t)b->u.set->mask + 1) * sizeof(smember));
        b->u.set->n = 0;
        b->u.set->blen = 0;
        break;
    case DDS__MT_DISTRIBUTION:
        if (b->u.sk) dds__sketch_reset(b->u.sk);
        break;
    }
}

/* A spare slot at old[nold] (with whatever buffers it kept), growing the array if needed. */
static bucket *old_spare(ctx *c) {
    if (c->nold == c->capold) {
        uint32_t ncap = c->capold ? c->capold * 2 : 2;
        bucket *nb = realloc(c->old, ncap * sizeof(bucket));
        if (!nb) return NULL;
        memset(nb + c->capold, 0, (ncap - c->capold) * sizeof(bucket));
        c->old = nb;
        c->capold = ncap;
    }
    return &c->old[c->nold];
}

/* Rare path: a bucket the context does not have yet (a new bucket, or a sample older than the
 * newest bucket). Slots are swapped, never copied, so every buffer keeps exactly one owner. */
static bucket *bucket_slow(dds__agg *a, ctx *c, int64_t ts) {
    assert(c->cur.ts != NO_BUCKET || c->nold == 0); /* flush empties old before cur */
    if (c->cur.ts == NO_BUCKET || ts > c->cur.ts) {
        if (c->type != DDS__MT_DISTRIBUTION && reg_add(a, ts) < 0) return NULL;
        /* A cur already sent with everything it holds is done: its slot is reused. */
        if (c->cur.ts != NO_BUCKET && !c->cur_sent) {
            bucket *spare = old_spare(c);
            if (!spare) return NULL;
            bucket t = *spare;
            *spare = c->cur;
            c->cur = t;
            c->nold++;
        }
        c->cur_sent = 0;
        bucket_begin(c->type, &c->cur, ts);
        return &c->cur;
    }
    uint32_t pos = c->nold;
    while (pos > 0 && c->old[pos - 1].ts > ts) pos--;
    if (pos > 0 && c->old[pos - 1].ts == ts) return &c->old[pos - 1];
    if (c->type != DDS__MT_DISTRIBUTION && reg_add(a, ts) < 0) return NULL;
    bucket *spare = old_spare(c);
    if (!spare) return NULL;
    bucket t = *spare;
    memmove(c->old + pos + 1, c->old + pos, (c->nold - pos) * sizeof(bucket));
    c->old[pos] = t;
    c->nold++;
    bucket_begin(c->type, &c->old[pos], ts);
    return &c->old[pos];
}

static inline bucket *bucket_for(dds__agg *a, ctx *c, int64_t ts) {
    if (c->cur.ts == ts) return &c->cur;
    return bucket_slow(a, c, ts);
}

/* Allocate the (empty) state of a set, histogram or distribution bucket: false when out of memory. */
static bool bucket_state(uint8_t type, bucket *b) {
    switch (type) {
    case DDS__MT_HISTOGRAM:
    case DDS__MT_TIMING:
        return (b->u.h = calloc(1, sizeof(histb))) != NULL;
    case DDS__MT_SET:
        return (b->u.set = calloc(1, sizeof(setb))) != NULL;
    case DDS__MT_DISTRIBUTION:
        return (b->u.sk = calloc(1, sizeof(dds__sketch))) != NULL; /* = dds__sketch_init */
    default:
        return true;
    }
}

static inline bool has_buckets(const ctx *c) { return c->nold || c->cur.ts != NO_BUCKET; }

/* ---- per-type sample updates ----------------------------------------------------------- */

/* 1 new member, 0 already there, -1 refused (bound reached or no memory). */
static int set_add(setb *s, const char *p, size_t len) {
    if (len >= SET_MAX_BYTES) return -1;
    uint64_t h = dds__hash64(p, len, SEED_SET);
    if (s->tab) {
        for (uint32_t i = (uint32_t)h & s->mask; s->tab[i].len1; i = (i + 1) & s->mask)
            if (s->tab[i].h == h && s->tab[i].len1 == len + 1 && memcmp(s->bytes + s->tab[i].off, p, len) == 0)
                return 0;
    }
    if (s->n >= SET_MAX_MEMBERS || s->blen + len > SET_MAX_BYTES) return -1;
    if (!s->tab || (s->n + 1) * 2 > s->mask + 1) {
        uint32_t size = s->tab ? (s->mask + 1) * 2 : 16;
        smember *nt = calloc(size, sizeof(smember));
        if (!nt) return -1;
        for (uint32_t i = 0; s->tab && i <= s->mask; i++) {
            if (!s->tab[i].len1) continue;
            uint32_t j = (uint32_t)s->tab[i].h & (size - 1);
            while (nt[j].len1) j = (j + 1) & (size - 1);
            nt[j] = s->tab[i];
        }
        free(s->tab);
        s->tab = nt;
        s->mask = size - 1;
    }
    if (s->blen + len > s->bcap) {
        size_t cap = s->bcap;
        void *b = s->bytes;
        if (grow(&b, &cap, s->blen + len, 1) < 0) return -1;
        s->bytes = b;
        s->bcap = (uint32_t)cap;
    }
    if (len) memcpy(s->bytes + s->blen, p, len);
    uint32_t i = (uint32_t)h & s->mask;
    while (s->tab[i].len1) i = (i + 1) & s->mask;
    s->tab[i] = (smember){h, s->blen, (uint32_t)len + 1};
    s->blen += (uint32_t)len;
    s->n++;
    return 1;
}

static int hist_push(histb *h, double v, int64_t w, double weight) {
    if (h->n == h->cap) {
        if (h->cap >= HIST_MAX_SAMPLES) return -1;
        uint32_t ncap = h->cap ? h->cap * 2 : 8;
        hsample *ns = realloc(h->s, ncap * sizeof(hsample));
        if (!ns) return -1;
        h->s = ns;
        h->cap = ncap;
    }
    h->s[h->n++] = (hsample){v, w};
    h->count += w;
    h->sum += v * weight;
    return 0;
}

/* ---- public: add --------------------------------------------------------------------------- */

static void add_timed(dds__agg *a, const dds__metric *m, const double *vals, size_t nvals) {
    /* Go agent no-aggregation pipeline: only gauges and counts are supported. */
    if (m->type != DDS__MT_GAUGE && m->type != DDS__MT_COUNT) {
        drop(a, m->type == DDS__MT_SET ? 1 : nvals);
        return;
    }
    size_t nfinite = 0;
    for (size_t i = 0; i < nvals; i++) nfinite += isfinite(vals[i]) != 0;
    drop(a, nvals - nfinite);
    if (!nfinite) return;
    canon cn;
    keyblob *k = NULL;
    timed *t = NULL;
    if (a->ntimed >= TIMED_MAX) goto fail;
    if (a->ntimed == a->captimed) {
        size_t cap = a->captimed;
        void *p = a->timed;
        if (grow(&p, &cap, a->ntimed + 1, sizeof(timed *)) < 0) goto fail;
        a->timed = p;
        a->captimed = (uint32_t)cap;
    }
    if (canon_tags(&a->tb, (uint8_t)m->type, m->name, m->tags, &cn) < 0) goto fail;
    if (!(k = key_build(a, &a->tb, &cn, m->name, m->tags, NULL))) goto fail;
    if (!(t = malloc(sizeof(timed) + nfinite * sizeof(double)))) goto fail;
    t->key = k;
    t->type = (uint8_t)m->type;
    t->ts = m->timestamp;
    t->nvals = 0;
    for (size_t i = 0; i < nvals; i++)
        if (isfinite(vals[i])) t->vals[t->nvals++] = vals[i];
    a->timed[a->ntimed++] = t;
    dds__counter_add(&a->ctr->samples, nfinite);
    return;
fail:
    free(k);
    drop(a, nfinite);
}

static ctx *lookup_slow(dds__agg *a, const dds__metric *m, uint64_t loc, uint64_t full, size_t nsamples) {
    canon cn;
    if (canon_tags(&a->tb, (uint8_t)m->type, m->name, m->tags, &cn) < 0) {
        drop(a, nsamples);
        return NULL;
    }
    bool failed;
    ctx *c = ctab_find(a, (uint8_t)m->type, m->name, &cn, &failed);
    if (c) {
        alias_add(a, c, m, loc, full);
        return c;
    }
    if (failed) {
        drop(a, nsamples);
        return NULL;
    }
    if (a->context_limit && a->live >= a->context_limit) {
        dds__counter_add(&a->ctr->contexts_dropped, nsamples);
        return NULL;
    }
    if (!(c = ctx_create(a, m, &cn, loc, full))) drop(a, nsamples);
    return c;
}

/* dds__agg_add, with the context already found (hit) or not (NULL). The filters come first either
 * way and never depend on the lookup, so a line found early behaves as one found here. */
static HOT_INLINE void add_to(dds__agg *a, const dds__metric *m, const double *vals, size_t nvals, int64_t now_s,
                              ctx *hit) {
    if (!is_aggregated_type((uint8_t)m->type)) return;
    const bool is_set = m->type == DDS__MT_SET;
    size_t nsamples = is_set ? 1 : nvals;
    if (nsamples == 0) return;
    if (!a->client_telemetry &&
        has_prefix(m->name.ptr, m->name.len, CLIENT_TELEMETRY_PREFIX, PFX_LEN(CLIENT_TELEMETRY_PREFIX))) {
        drop(a, nsamples);
        return;
    }
    if (m->timestamp != 0) {
        add_timed(a, m, vals, nvals);
        return;
    }
    size_t nfinite = nsamples;
    if (!is_set) {
        nfinite = 0;
        for (size_t i = 0; i < nvals; i++) nfinite += isfinite(vals[i]) != 0;
        if (nfinite < nvals) drop(a, nvals - nfinite);
        if (!nfinite) return; /* no context for a line with nothing to aggregate */
    }

    ctx *c = hit;
    if (!c) {
        const uint64_t loc = alias_locator(m);
        uint64_t full = 0;
        bool have_full = false;
        const alias *al = a->aloc.s ? alias_find(a, m, loc, &full, &have_full) : NULL;
        if (al) c = alias_ctx(al);
        else {
            if (!have_full) full = alias_full(m);
            if (!(c = lookup_slow(a, m, loc, full, nfinite))) return;
        }
    }
    c->last_seen = now_s;
    if (now_s != a->now_s) {
        a->now_s = now_s;
        a->now_bucket = bucket_start(now_s);
    }
    bucket *b = bucket_for(a, c, a->now_bucket);
    if (b == &c->cur) c->cur_sent = 0; /* new data: the next flush re-sends the whole bucket */
    if (!b) {
        drop(a, nfinite);
        return;
    }

    const double rate = sane_rate(m->sample_rate);
    const double weight = 1 / rate;
    size_t done = 0;
    /* A set's, histogram's or distribution's bucket gets its state at its first sample. */
    if (m->type >= DDS__MT_HISTOGRAM && !b->u.h && !bucket_state(m->type, b)) {
        drop(a, nfinite);
        return;
    }
    switch (m->type) {
    case DDS__MT_COUNT:
        for (size_t i = 0; i < nvals; i++)
            if (isfinite(vals[i])) b->u.sum += vals[i] * weight;
        done = nfinite;
        break;
    case DDS__MT_GAUGE:
        for (size_t i = 0; i < nvals; i++)
            if (isfinite(vals[i])) b->u.last = vals[i];
        done = nfinite;
        break;
    case DDS__MT_HISTOGRAM:
    case DDS__MT_TIMING: {
        int64_t w = weight < 1e18 ? (int64_t)weight : (int64_t)1e18;
        for (size_t i = 0; i < nvals; i++)
            if (isfinite(vals[i]) && hist_push(b->u.h, vals[i], w, weight) == 0) done++;
        break;
    }
    case DDS__MT_DISTRIBUTION:
        for (size_t i = 0; i < nvals; i++)
            if (isfinite(vals[i]) && dds__sketch_insert_rate(b->u.sk, vals[i], rate) == 0) done++;
        break;
    case DDS__MT_SET:
        done = set_add(b->u.set, m->raw_value.ptr, m->raw_value.len) >= 0;
        break;
    }
    if (done) dds__counter_add(&a->ctr->samples, done);
    if (done < nfinite) drop(a, nfinite - done);
}

void dds__agg_add(dds__agg *a, const dds__metric *m, const double *vals, size_t nvals, int64_t now_s) {
    add_to(a, m, vals, nvals, now_s, NULL);
}

/* A line parsed up to its tag list, m->tags running to the end of the line (tags_open): a line
 * seen before is a hit without a scan of its tags for a '|' (an alias whose bytes equal the
 * line's proves there is none: no indexed alias holds a '|' in its tags, see alias_index, so the
 * tags were the line's last field and m is the full parse); anything else is parsed to its end
 * first. With learn, the line's tag-list length becomes its name's first line-end hint (nh:
 * name_hash): add_next found the line's end by memchr. */
static HOT_INLINE int add_open(dds__agg *a, dds__metric *m, const double *vals, size_t nvals, int64_t now_s,
                               uint64_t nh, bool learn) {
    bool have_full = false;
    uint64_t full;
    const size_t tags_len = m->tags.len;
    const uint64_t loc = locator(m->tags.ptr, m->tags.len, nh, (uint8_t)m->type);
    const alias *al = a->aloc.s ? alias_find(a, m, loc, &full, &have_full) : NULL;
    if (al) {
        add_to(a, m, vals, nvals, now_s, alias_ctx(al));
        if (learn) lh_learn(a, nh, al);
        return DDS__PARSE_OK;
    }
    int st = dds__parse_metric_close(m, &nvals);
    if (st != DDS__PARSE_OK) return st;
    add_to(a, m, vals, nvals, now_s, NULL);
    /* The line's own alias, if it was made and indexed (only when the tags were the last field:
     * an alias of tags that were not never matches the whole line). Once per new spelling. */
    if (learn && m->tags.len == tags_len && a->aloc.s && (al = alias_find(a, m, loc, &full, &have_full)))
        lh_learn(a, nh, al);
    return DDS__PARSE_OK;
}

int dds__agg_add_line(dds__agg *a, const char *line, size_t len, double *vals, size_t cap, int64_t now_s) {
    dds__metric m;
    size_t nvals;
    bool tags_open;
    int st = dds__parse_metric_open(line, len, &m, vals, cap, &nvals, &tags_open);
    if (st != DDS__PARSE_OK) return st;
    if (tags_open) return add_open(a, &m, vals, nvals, now_s, name_hash(m.name.ptr, m.name.len), false);
    add_to(a, &m, vals, nvals, now_s, NULL);
    return DDS__PARSE_OK;
}

/* Whether the line whose bytes before q hold no '\n' is [start, q) as dds__packet_next_line
 * splits it (one '\r' before the '\n' or the packet's end is not the line's); *next: after it. */
static HOT_INLINE bool line_ends_at(const char *q, const char *end, const char **next) {
    if (q == end || *q == '\n') {
        if (q[-1] == '\r') return false;
        *next = q + (q < end);
        return true;
    }
    if (*q == '\r' && (q + 1 == end || q[1] == '\n')) {
        *next = q + 1 + (q + 1 < end);
        return true;
    }
    return false;
}

/* Whether bytes hold a '\n', 16 at a time (common/bytescan.h). Inline: the glibc call costs more
 * than these few compares for the 64 bytes or so it is asked about. */
/* [p, p + 64) */
static HOT_INLINE bool has_newline64(const char *p) {
    return (dds__scan16_1(p, '\n') | dds__scan16_1(p + 16, '\n') | dds__scan16_1(p + 32, '\n') |
            dds__scan16_1(p + 48, '\n')) != 0;
}
/* [p, p + n), n >= 16: the last window overlaps the one before. */
static HOT_INLINE bool has_newline(const char *p, size_t n) {
    uint64_t hit = dds__scan16_1(p + n - 16, '\n');
    for (size_t i = 0; i + 16 < n; i += 16) hit |= dds__scan16_1(p + i, '\n');
    return hit != 0;
}

/* Lines shorter than this are split by memchr at once: the scan is short, and the head's parse
 * would run into the next line when a line has no tags. Longer ones are parsed over at most
 * HEAD_MAX bytes: a line whose tag list does not start there is split by memchr too (so a packet
 * of lines without ':' nor '|' costs no more than linear time). */
enum { SHORT_LINE = 64, HEAD_MAX = 1024 };

/* The metric line at *cursor (*cursor < end, **cursor none of '\n', '\r', '_'): as
 * dds__packet_next_line then dds__agg_add_line, same status, same *cursor after it, same *line.
 * A long line seen before is not scanned for its '\n' first: its end is predicted by a hint of
 * its name, and proven by the compare with its context's bytes. */
static HOT_INLINE int add_next(dds__agg *a, const char **cursor, const char *end, dds__slice *line, double *vals,
                               size_t cap, int64_t now_s) {
    const char *p = *cursor;
    const size_t rest = (size_t)(end - p);
    dds__metric m;
    size_t nvals;
    bool tags_open = false;
    int st = DDS__PARSE_ERR_NAME;
    uint64_t nh = 0;
    const char *first = NULL;
    if (rest > SHORT_LINE && !has_newline64(p)) {
        /* The name's bucket is asked for as soon as the name is known: its load (the table does
         * not stay in L1 while packets stream through) overlaps the parse of the rest. */
        const char *head_end = p + (rest < HEAD_MAX ? rest : HEAD_MAX);
        first = dds__find2(p, head_end, ':', '|');
        if (first < head_end && *first == ':') {
            nh = name_hash(p, (size_t)(first - p));
            if (a->lh) __builtin_prefetch(lh_bucket(a, nh));
        }
        st = dds__parse_metric_open_at(p, (size_t)(head_end - p), first, &m, vals, cap, &nvals, &tags_open);
        /* Only a head made of this line's bytes: no '\n' before the tag list. */
        if (st == DDS__PARSE_OK && tags_open) {
            size_t head = (size_t)(m.tags.ptr - p);
            if (head > SHORT_LINE && has_newline(p + SHORT_LINE - 16, head - SHORT_LINE + 16)) tags_open = false;
        }
    }
    if (st != DDS__PARSE_OK || !tags_open) {
        /* Split by memchr and start again: a short line, or a long one without a tag list. */
        const char *nl = memchr(p, '\n', rest);
        const char *stop = nl ? nl : end;
        if (stop[-1] == '\r') stop--; /* not p: *p is not '\r' */
        *cursor = nl ? nl + 1 : end;
        *line = dds__slice_make(p, (size_t)(stop - p));
        return dds__agg_add_line(a, p, line->len, vals, cap, now_s);
    }
    /* The line runs at least to its tag list. An alias of this name whose tags are the line's bytes
     * up to a terminator is the line's: no indexed alias holds a '\n' (nor a '|' in its tags), so
     * the line ends there, and its tags were its last field. An entry is tried only if the line
     * has a terminator at its length, so the alias is read only when it has a chance. A parsed
     * name ends at the first ':' when that comes before any '|': the one hashed above. */
    if (m.name.ptr + m.name.len != first) nh = name_hash(m.name.ptr, m.name.len);
    const char *tags = m.tags.ptr;
    bool learn = true; /* the first long line makes the table (lh_learn) */
    lhint *b = NULL;
    if (a->lh) {
        b = lh_bucket(a, nh);
        const uint8_t missed = b->miss, chk = lh_check(nh);
        learn = missed < LH_TRIES || missed == UINT8_MAX; /* then 0 again: LH_TRIES tries in 256 */
        for (int i = 0; learn && i < LH_WAYS; i++) {
            if (b->chk[i] != chk) continue;
            const uint64_t e = b->e[i];
            const size_t len = lh_len(e);
            const char *next;
            if (len > (size_t)(end - tags) || !line_ends_at(tags + len, end, &next)) continue;
            m.tags.len = len;
            const alias *al = lh_alias(e);
            if (e & LH_CROWDED || !alias_matches(al, &m)) {
                /* An entry of another name or type is passed over. A second context of this name,
                 * type and length makes the pair crowded: from then on the locator finds the
                 * line's context (the entry's own alias is not read), and the context found takes
                 * the entry unless the bucket holds it already. */
                if (!(e & LH_CROWDED) && !same_name(al, &m)) continue;
                bool have_full = false;
                uint64_t full;
                const alias *found = alias_find(a, &m, locator(tags, len, nh, (uint8_t)m.type), &full, &have_full);
                if (!found) {
                    b->e[i] |= LH_CROWDED;
                    break; /* a new context: the locator path makes it */
                }
                if (!lh_holds(b, found)) {
                    b->e[i] = lh_entry(found, true);
                    b->chk[i] = chk;
                }
                al = found;
            }
            if (missed) b->miss = missed > LH_HIT_CREDIT ? (uint8_t)(missed - LH_HIT_CREDIT) : 0;
            *cursor = next;
            *line = dds__slice_make(p, (size_t)(tags + len - p));
            add_to(a, &m, vals, nvals, now_s, alias_ctx(al));
            return DDS__PARSE_OK;
        }
    }
    if (b) b->miss++;
    const char *nl = memchr(tags, '\n', (size_t)(end - tags));
    const char *stop = nl ? nl : end;
    if (stop > tags && stop[-1] == '\r') stop--;
    *cursor = nl ? nl + 1 : end;
    *line = dds__slice_make(p, (size_t)(stop - p));
    m.tags.len = (size_t)(stop - tags);
    return add_open(a, &m, vals, nvals, now_s, nh, learn);
}

size_t dds__agg_add_packet(dds__agg *a, const char *buf, size_t len, double *vals, size_t cap, int64_t now_s,
                           dds__agg_other_fn other, void *user) {
    const char *cur = buf, *end = buf + len;
    size_t added = 0;
    dds__slice line;
    while (cur < end) {
        int st;
        const char c0 = *cur;
        if (c0 != '_' && c0 != '\n' && c0 != '\r') {
            st = add_next(a, &cur, end, &line, vals, cap, now_s);
        } else {
            /* Maybe empty lines, an event, a service check: the plain split. */
            if (!dds__packet_next_line(&cur, end, &line)) break;
            if (dds__line_kind_of(line) != DDS__LINE_METRIC) {
                other(user, line, DDS__AGG_NOT_METRIC);
                continue;
            }
            st = dds__agg_add_line(a, line.ptr, line.len, vals, cap, now_s);
        }
        if (st == DDS__PARSE_OK) added++;
        else other(user, line, st);
    }
    return added;
}

/* ---- flush --------------------------------------------------------------------------------- */

static void zero_fill(dds__agg *a, int64_t cutoff, bool force) {
    const int64_t expiry = a->counter_expiry_s;
    int64_t single = 0;
    uint32_t to = 0;
    if (a->nreg) {
        /* Go agent (countersSampleZeroValue): every flushed bucket gets a 0 for every counter
         * seen less than dogstatsd_expiry_seconds before the bucket's start. */
        while (to < a->nreg && (force || a->reg[to] + BUCKET <= cutoff)) to++;
        if (to == 0) return;
    } else if (a->last_cutoff + BUCKET <= cutoff) {
        /* Nothing at all was received: still send the zeros, once per interval. */
        single = cutoff - BUCKET;
    } else {
        return;
    }
    /* Copy: bucket_for may insert into the registry while we walk it. */
    int64_t stack_ts[64], *ts = stack_ts;
    uint32_t nts = a->nreg ? to : 1;
    if (nts > 64 && !(ts = malloc(nts * sizeof(int64_t)))) return;
    if (a->nreg) memcpy(ts, a->reg, nts * sizeof(int64_t));
    else ts[0] = single;
    for (uint32_t s = 0; s < a->live; s++) {
        ctx *c = a->all[s];
        if (c->type != DDS__MT_COUNT) continue;
        for (uint32_t i = 0; i < nts; i++)
            if (c->last_seen + expiry > ts[i]) (void)bucket_for(a, c, ts[i]);
    }
    if (ts != stack_ts) free(ts);
}

static int cmp_hsample(const void *x, const void *y) {
    double a = ((const hsample *)x)->v, b = ((const hsample *)y)->v;
    return a < b ? -1 : a > b;
}

static const char *name_with(dds__agg *a, const keyblob *k, const char *suffix, size_t slen, size_t *len) {
    size_t cap = a->namecap;
    void *p = a->namebuf;
    if (grow(&p, &cap, k->name.len + slen, 1) < 0) return NULL;
    a->namebuf = p;
    a->namecap = cap;
    memcpy(a->namebuf, k->name.ptr, k->name.len);
    memcpy(a->namebuf + k->name.len, suffix, slen);
    *len = k->name.len + slen;
    return a->namebuf;
}

static void send_series(const dds__agg_sink *sink, const keyblob *k, dds__slice name, dds__api_type type,
                        const dds__point *pts, size_t npts) {
    if (!npts || !sink || !sink->series) return;
    dds__series s = {
        .name = name,
        .host = k->host,
        .tags = k->stags,
        .ntags = k->nstags,
        .resources = k->res,
        .nresources = k->nres,
        .type = type,
        .interval = BUCKET,
        .points = pts,
        .npoints = npts,
    };
    sink->series(sink->user, &s);
}

enum { AGG_MAX, AGG_MEDIAN, AGG_AVG, AGG_COUNT, AGG_MIN, AGG_SUM, AGG_N };
static const struct {
    uint32_t flag;
    const char *suffix;
    dds__api_type type;
} HAGGS[AGG_N] = {
    {DDS__HAGG_MAX, ".max", DDS__API_GAUGE},     {DDS__HAGG_MEDIAN, ".median", DDS__API_GAUGE},
    {DDS__HAGG_AVG, ".avg", DDS__API_GAUGE},     {DDS__HAGG_COUNT, ".count", DDS__API_RATE},
    {DDS__HAGG_MIN, ".min", DDS__API_GAUGE},     {DDS__HAGG_SUM, ".sum", DDS__API_GAUGE},
};

/* Go agent histogram.go: samples sorted by value; median = first sample whose cumulative weight
 * passes (count-1)/2; percentile p% = first passing (p*count-1)/100; avg = sum/count with sum of
 * v*(1/rate) and count of trunc(1/rate); count sent as a rate over the 10 s bucket. */
static void emit_hist(dds__agg *a, const keyblob *key, uint32_t k, const dds__agg_sink *sink) {
    const size_t nser = AGG_N + (size_t)a->npct;
    size_t cap = a->ptscap;
    void *p = a->pts;
    if (grow(&p, &cap, nser * k, sizeof(dds__point)) < 0) {
        drop(a, k);
        return;
    }
    a->pts = p;
    a->ptscap = cap;
    size_t np = 0; /* points per series (buckets with samples) */
    for (uint32_t j = 0; j < k; j++) {
        histb *h = a->bp[j]->u.h;
        if (!h || !h->n) continue;
        qsort(h->s, h->n, sizeof(hsample), cmp_hsample);
        double v[AGG_N];
        v[AGG_MAX] = h->s[h->n - 1].v;
        v[AGG_MIN] = h->s[0].v;
        v[AGG_AVG] = h->sum / (double)h->count;
        v[AGG_SUM] = h->sum;
        v[AGG_COUNT] = (double)h->count / BUCKET;
        int64_t target = (h->count - 1) / 2, cum = 0;
        v[AGG_MEDIAN] = h->s[h->n - 1].v;
        for (uint32_t i = 0; i < h->n; i++) {
            cum += h->s[i].w;
            if (cum > target) {
                v[AGG_MEDIAN] = h->s[i].v;
                break;
            }
        }
        for (int g = 0; g < AGG_N; g++) a->pts[(size_t)g * k + np] = (dds__point){v[g], a->bp[j]->ts};
        uint32_t i = 0;
        cum = h->s[0].w;
        for (int q = 0; q < a->npct; q++) {
            int64_t t = ((int64_t)a->pct[q] * h->count - 1) / 100;
            while (cum <= t && i + 1 < h->n) cum += h->s[++i].w;
            a->pts[(size_t)(AGG_N + q) * k + np] = (dds__point){h->s[i].v, a->bp[j]->ts};
        }
        np++;
    }
    for (int g = 0; g < AGG_N; g++) {
        if (!(a->hagg & HAGGS[g].flag)) continue;
        size_t len;
        const char *nm = name_with(a, key, HAGGS[g].suffix, strlen(HAGGS[g].suffix), &len);
        if (nm) send_series(sink, key, dds__slice_make(nm, len), HAGGS[g].type, a->pts + (size_t)g * k, np);
    }
    for (int q = 0; q < a->npct; q++) {
        size_t len;
        const char *nm = name_with(a, key, a->pct_suffix[q], strlen(a->pct_suffix[q]), &len);
        if (nm)
            send_series(sink, key, dds__slice_make(nm, len), DDS__API_GAUGE, a->pts + (size_t)(AGG_N + q) * k, np);
    }
}

static void emit_sketch(dds__agg *a, const keyblob *key, uint32_t k, const dds__agg_sink *sink) {
    size_t cap = a->sptscap;
    void *p = a->spts;
    if (grow(&p, &cap, k, sizeof(dds__sketch_point)) < 0) {
        drop(a, k);
        return;
    }
    a->spts = p;
    a->sptscap = cap;
    size_t np = 0;
    for (uint32_t j = 0; j < k; j++) {
        dds__sketch *sk = a->bp[j]->u.sk;
        if (!sk || sk->count == 0) continue;
        dds__sketch_point *pt = &a->spts[np++];
        pt->ts = a->bp[j]->ts;
        pt->cnt = sk->count;
        pt->min = sk->min;
        pt->max = sk->max;
        pt->sum = sk->sum;
        pt->avg = sk->avg;
        dds__sketch_bins(sk, &pt->keys, &pt->counts, &pt->nbins);
    }
    if (!np || !sink || !sink->sketch) return;
    dds__sketch_series s = {
        .name = key->name,
        .host = key->host,
        .tags = key->ktags,
        .ntags = key->nktags,
        .points = a->spts,
        .npoints = np,
    };
    sink->sketch(sink->user, &s);
}

/* open_from: start of the bucket still open in real time (a forced flush sends it early). */
static void emit_ctx(dds__agg *a, ctx *c, int64_t cutoff, int64_t open_from, bool force, const dds__agg_sink *sink) {
    /* The flushable buckets, oldest first: a prefix of old[], then cur when it is flushable. */
    uint32_t kold = 0;
    while (kold < c->nold && (force || c->old[kold].ts + BUCKET <= cutoff)) kold++;
    bool cur_due = kold == c->nold && c->cur.ts != NO_BUCKET && (force || c->cur.ts + BUCKET <= cutoff);
    /* A forced flush sends the open bucket early (flush before a freeze). Points with the same
     * series and timestamp replace each other at Datadog, so later samples of that bucket must
     * be re-sent together with the ones already sent: the bucket is kept (cur_sent) and sent
     * again, whole, only if it gets new samples. Sketches merge at Datadog instead: theirs is
     * sent once and forgotten. */
    bool with_cur = cur_due && !c->cur_sent;
    bool keep_cur = with_cur && force && c->cur.ts >= open_from && c->type != DDS__MT_DISTRIBUTION;
    if (cur_due && c->cur_sent && c->cur.ts < open_from) {
        c->cur.ts = NO_BUCKET; /* sent already, and now closed: nothing more can come */
        c->cur_sent = 0;
    }
    uint32_t k = kold + with_cur;
    if (!k) return;
    size_t bpcap = a->bpcap;
    void *bp = a->bp;
    if (grow(&bp, &bpcap, k, sizeof(bucket *)) < 0) return; /* kept for the next flush */
    a->bp = bp;
    a->bpcap = bpcap;
    for (uint32_t j = 0; j < kold; j++) a->bp[j] = &c->old[j];
    if (with_cur) a->bp[kold] = &c->cur;
    const keyblob *key = ctx_key(a, c);
    if (!key) return; /* out of memory: kept for the next flush */
    switch (c->type) {
    case DDS__MT_COUNT:
    case DDS__MT_GAUGE:
    case DDS__MT_SET: {
        size_t cap = a->ptscap;
        void *p = a->pts;
        if (grow(&p, &cap, k, sizeof(dds__point)) < 0) {
            drop(a, k);
            break;
        }
        a->pts = p;
        a->ptscap = cap;
        size_t np = 0;
        for (uint32_t j = 0; j < k; j++) {
            const bucket *b = a->bp[j];
            double v;
            if (c->type == DDS__MT_COUNT) v = b->u.sum / BUCKET;
            else if (c->type == DDS__MT_GAUGE) v = b->u.last;
            else if (b->u.set && b->u.set->n) v = (double)b->u.set->n;
            else continue;
            a->pts[np++] = (dds__point){v, b->ts};
        }
        send_series(sink, key, key->name, c->type == DDS__MT_COUNT ? DDS__API_RATE : DDS__API_GAUGE, a->pts, np);
        break;
    }
    case DDS__MT_HISTOGRAM:
    case DDS__MT_TIMING:
        emit_hist(a, key, k, sink);
        break;
    case DDS__MT_DISTRIBUTION:
        emit_sketch(a, key, k, sink);
        break;
    }
    /* Drop oversized buffers, then move the flushed slots behind the live ones (swapping keeps
     * every slot's buffers owned exactly once). */
    for (uint32_t j = 0; j < k; j++) {
        bucket *b = a->bp[j];
        if (keep_cur && b == &c->cur) continue;
        if (((c->type == DDS__MT_HISTOGRAM || c->type == DDS__MT_TIMING) && b->u.h && b->u.h->cap > HIST_KEEP_CAP) ||
            (c->type == DDS__MT_SET && b->u.set && b->u.set->tab && b->u.set->mask + 1 > SET_KEEP_SLOTS))
            bucket_free_buffers(c->type, b);
    }
    for (uint32_t j = 0; j + kold < c->nold; j++) {
        bucket t = c->old[j];
        c->old[j] = c->old[j + kold];
        c->old[j + kold] = t;
    }
    c->nold -= kold;
    if (!c->nold && c->old && (c->type == DDS__MT_COUNT || c->type == DDS__MT_GAUGE)) {
        /* No buffers to keep for the next bucket: the spare slots would only cost memory. */
        free(c->old);
        c->old = NULL;
        c->capold = 0;
    }
    if (keep_cur) c->cur_sent = 1;
    else if (with_cur) c->cur.ts = NO_BUCKET;
}

static void emit_timed(dds__agg *a, const dds__agg_sink *sink) {
    for (uint32_t i = 0; i < a->ntimed; i++) {
        timed *t = a->timed[i];
        /* Go agent no-aggregation pipeline: one series per sample at its own timestamp; counts
         * become a rate over 10 s without sample-rate scaling. */
        bool count = t->type == DDS__MT_COUNT;
        for (uint32_t j = 0; j < t->nvals; j++) {
            dds__point pt = {count ? t->vals[j] / BUCKET : t->vals[j], t->ts};
            send_series(sink, t->key, t->key->name, count ? DDS__API_RATE : DDS__API_GAUGE, &pt, 1);
        }
        free(t->key);
        free(t);
    }
    a->ntimed = 0;
}

void dds__agg_flush(dds__agg *a, int64_t now_s, bool force, const dds__agg_sink *sink) {
    /* A forced flush (flush before freeze, stop) also closes the current bucket. */
    const int64_t cutoff = bucket_start(now_s) + (force ? BUCKET : 0);
    if (a->counter_expiry_s) zero_fill(a, cutoff, force);

    for (uint32_t s = 0; s < a->live; s++)
        if (has_buckets(a->all[s])) emit_ctx(a, a->all[s], cutoff, bucket_start(now_s), force, sink);
    emit_timed(a, sink);

    uint32_t r = 0;
    while (r < a->nreg && (force || a->reg[r] + BUCKET <= cutoff)) r++;
    if (r) {
        memmove(a->reg, a->reg + r, (a->nreg - r) * sizeof(int64_t));
        a->nreg -= r;
    }

    /* Backwards: a release moves the last context into the freed position. */
    for (uint32_t s = a->live; s-- > 0;) {
        ctx *c = a->all[s];
        if (has_buckets(c)) continue;
        /* A counter stays while it can still be zero-filled: a future bucket starts at or after
         * cutoff, and gets a zero while last_seen + expiry is past its start. */
        if (a->counter_expiry_s && c->type == DDS__MT_COUNT && c->last_seen + (int64_t)a->counter_expiry_s > cutoff)
            continue;
        if (a->context_expiry_s && c->last_seen + (int64_t)a->context_expiry_s > now_s) continue;
        ctx_release(a, c);
    }
    a->last_cutoff = cutoff;
    dds__counter_set(&a->ctr->contexts, a->live);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int cmp_int(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return a < b ? -1 : a > b;
}

dds__agg *dds__agg_new(const dds__agg_config *cfg, dds__agg_counters *counters) {
    dds__agg *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->ctr = counters;
    a->hagg = cfg->histogram_aggregates;
    a->counter_expiry_s = cfg->counter_expiry_s;
    a->context_expiry_s = cfg->context_expiry_s;
    a->context_limit = cfg->context_limit;
    a->client_telemetry = cfg->client_telemetry;

    /* Go agent: each percentile becomes int(p*100 + 0.5), sorted; the suffix is ".<int>percentile"
     * (0.95 -> ".95percentile", 0.5 -> ".50percentile"). Duplicates would make identical series. */
    size_t np = cfg->n_percentiles < DDS__MAX_PERCENTILES ? cfg->n_percentiles : DDS__MAX_PERCENTILES;
    for (size_t i = 0; i < np; i++) {
        double p = cfg->percentiles[i];
        if (!(p >= 0 && p <= 1)) continue;
        a->pct[a->npct++] = (int)(p * 100 + 0.5);
    }
    qsort(a->pct, (size_t)a->npct, sizeof(int), cmp_int);
    int w = 0;
    for (int i = 0; i < a->npct; i++)
        if (w == 0 || a->pct[w - 1] != a->pct[i]) a->pct[w++] = a->pct[i];
    a->npct = w;
    for (int i = 0; i < a->npct; i++) snprintf(a->pct_suffix[i], sizeof(a->pct_suffix[i]), ".%dpercentile", a->pct[i]);

    if (cfg->metric_namespace.len) {
        size_t n = cfg->metric_namespace.len;
        bool dot = cfg->metric_namespace.ptr[n - 1] == '.';
        if (!(a->ns = malloc(n + 1))) goto fail;
        memcpy(a->ns, cfg->metric_namespace.ptr, n);
        if (!dot) a->ns[n++] = '.';
        a->ns_len = n;
    }

    if (cfg->n_base_tags) {
        size_t bytes = 0;
        for (size_t i = 0; i < cfg->n_base_tags; i++) bytes += cfg->base_tags[i].len;
        a->base = calloc(cfg->n_base_tags, sizeof(dds__slice));
        a->base_h = calloc(cfg->n_base_tags, sizeof(uint64_t));
        a->base_mem = malloc(bytes ? bytes : 1);
        if (!a->base || !a->base_h || !a->base_mem) goto fail;
        char *p = a->base_mem;
        for (size_t i = 0; i < cfg->n_base_tags; i++) {
            dds__slice t = cfg->base_tags[i];
            if (!t.len) continue;
            uint64_t h = dds__hash64(t.ptr, t.len, SEED_TAG);
            bool dup = false;
            for (size_t j = 0; j < a->nbase && !dup; j++) dup = a->base_h[j] == h && dds__slice_eq(a->base[j], t);
            if (dup) continue;
            memcpy(p, t.ptr, t.len);
            a->base[a->nbase] = dds__slice_make(p, t.len);
            a->base_h[a->nbase++] = h;
            p += t.len;
        }
    }
    dds__counter_set(&a->ctr->contexts, 0);
    return a;
fail:
    dds__agg_free(a);
    return NULL;
}

void dds__agg_free(dds__agg *a) {
    if (!a) return;
    for (uint32_t s = 0; s < a->live; s++) ctx_free(a->all[s]);
    free(a->all);
    free(a->ctab);
    while (a->groups) {
        agroup *next = a->groups->next;
        free(a->groups);
        a->groups = next;
    }
    free(a->aloc.s);
    free(a->afull.s);
    free(a->lh_mem);
    for (uint32_t i = 0; i < a->ntimed; i++) {
        free(a->timed[i]->key);
        free(a->timed[i]);
    }
    free(a->timed);
    free(a->reg);
    free(a->bp);
    free(a->tb.v);
    free(a->tb.tmp);
    free(a->tc.v);
    free(a->tc.tmp);
    free(a->keybuf);
    free(a->pts);
    free(a->spts);
    free(a->namebuf);
    free(a->ns);
    free(a->base);
    free(a->base_h);
    free(a->base_mem);
    free(a);
}
