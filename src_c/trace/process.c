/* process.c - what happens to spans between decoding and encoding. In: a decoded tracer payload
 * (slices into the request body or its arena) and the request's settings. Out: the same records,
 * validated, normalized, obfuscated, marked and enriched in place, invalid chunks removed.
 * Never writes through a slice it was given (it may point into the request body), allocates only
 * from the request's arena, and never aborts: an allocation failure drops the chunk at hand
 * (or every chunk, when it hits the payload's own fields). */
#include "trace/process.h"

#include <assert.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"
#include "trace/obfuscate_redis.h"
#include "trace/obfuscate_sql.h"

/* Limits of the Go agent (pkg/trace/traceutil/normalize, pkg/trace/agent/truncator.go). */
#define MAX_SERVICE_LEN 100
#define MAX_NAME_LEN 100
#define MAX_TYPE_LEN 100
#define MAX_RESOURCE_LEN 5000
#define MAX_META_KEY_LEN 200
#define MAX_META_VALUE_LEN 25000
#define MAX_METRIC_KEY_LEN 200
#define MAX_TAG_LEN 200
#define YEAR_2000_NS INT64_C(946684800000000000)
/* The Go agent's sampler.PriorityNone (math.MinInt8): a v0.7 chunk may carry it explicitly. */
#define GO_PRIORITY_NONE (-128)

typedef struct proc {
    const dds__trace_process_config *cfg;
    dds__arena *arena;
    dds__slice fallback_service;   /* "unnamed-<lang>-service", built on first use */
    uint32_t *slots;               /* span id -> index + 1 (0 = empty), reused across chunks */
    size_t slots_cap;              /* allocated slots */
    size_t mask;                   /* slots in use for the current chunk, minus 1 */
    uint64_t obfuscated, sql_non_parsable;
    dds__buf re_scratch;           /* the C-string copy regexec needs, reused for every tag */
} proc;

static const dds__slice S_EMPTY = {"", 0};

/* ---- slices and small arrays --------------------------------------------------------------- */

static bool slice_is(dds__slice s, const char *lit, size_t n) {
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}
#define IS(s, lit) slice_is((s), lit, sizeof(lit) - 1)

static bool has_suffix(dds__slice s, const char *suf, size_t n) {
    return s.len >= n && memcmp(s.ptr + s.len - n, suf, n) == 0;
}

static char *alloc_bytes(proc *p, size_t n) { return dds__arena_alloc(p->arena, n ? n : 1); }

/* a + b in the arena. */
static bool concat(proc *p, dds__slice a, dds__slice b, dds__slice *out) {
    char *d = alloc_bytes(p, a.len + b.len);
    if (!d) return false;
    if (a.len) memcpy(d, a.ptr, a.len);
    if (b.len) memcpy(d + a.len, b.ptr, b.len);
    *out = dds__slice_make(d, a.len + b.len);
    return true;
}

/* Maps in the Go agent hold one value per key; a decoded array may repeat a key and the
 * intake keeps the last entry it reads, so "the" entry is the last one. */
static dds__kv *kv_find(dds__kv *kv, uint32_t n, const char *key, size_t klen) {
    for (uint32_t i = n; i-- > 0;)
        if (slice_is(kv[i].key, key, klen)) return &kv[i];
    return NULL;
}
#define KV_FIND(kv, n, lit) kv_find((kv), (n), lit, sizeof(lit) - 1)

static dds__kvd *kvd_find(dds__kvd *kv, uint32_t n, const char *key, size_t klen) {
    for (uint32_t i = n; i-- > 0;)
        if (slice_is(kv[i].key, key, klen)) return &kv[i];
    return NULL;
}
#define KVD_FIND(kv, n, lit) kvd_find((kv), (n), lit, sizeof(lit) - 1)

/* Set every entry of add[]: replace the value of an existing key, append the others. The array
 * may be exactly the decoder's size, so appending moves it to a new arena array (one copy for
 * all the keys added at once); the old one stays in the arena until the request ends. */
static bool kv_put(proc *p, dds__kv **arr, uint32_t *n, const dds__kv *add, uint32_t nadd) {
    uint32_t missing = 0;
    for (uint32_t i = 0; i < nadd; i++) {
        dds__kv *e = kv_find(*arr, *n, add[i].key.ptr, add[i].key.len);
        if (e) e->value = add[i].value;
        else missing++;
    }
    if (missing == 0) return true;
    if (*n > UINT32_MAX - missing) return false;
    dds__kv *grown = dds__arena_calloc(p->arena, (size_t)*n + missing, sizeof(*grown));
    if (!grown) return false;
    if (*n) memcpy(grown, *arr, (size_t)*n * sizeof(*grown));
    uint32_t m = *n;
    for (uint32_t i = 0; i < nadd; i++)
        if (!kv_find(grown, m, add[i].key.ptr, add[i].key.len)) grown[m++] = add[i];
    *arr = grown;
    *n = m;
    return true;
}

static bool kvd_put(proc *p, dds__kvd **arr, uint32_t *n, dds__slice key, double v) {
    dds__kvd *e = kvd_find(*arr, *n, key.ptr, key.len);
    if (e) {
        e->value = v;
        return true;
    }
    if (*n == UINT32_MAX) return false;
    dds__kvd *grown = dds__arena_calloc(p->arena, (size_t)*n + 1, sizeof(*grown));
    if (!grown) return false;
    if (*n) memcpy(grown, *arr, (size_t)*n * sizeof(*grown));
    grown[*n] = (dds__kvd){key, v};
    *arr = grown;
    (*n)++;
    return true;
}

/* Remove every entry with this key (keeps the order of the others). */
static void kv_remove(dds__kv *kv, uint32_t *n, const char *key, size_t klen) {
    uint32_t w = 0;
    for (uint32_t r = 0; r < *n; r++)
        if (!slice_is(kv[r].key, key, klen)) kv[w++] = kv[r];
    *n = w;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* One code point of p[0..n) (n >= 1): its width, or U+FFFD with width 1 for an ill-formed byte,
 * exactly as Go's utf8.DecodeRune. */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp) {
    size_t w = dds__utf8_decode(p, n, cp);
    if (w) return w;
    *cp = 0xFFFD;
    return 1;
}

static bool utf8_valid(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t w = utf8_decode(p + i, n - i, &cp);
        if (cp == 0xFFFD && w == 1) return false;
        i += w;
    }
    return true;
}

/* Length of Go's TruncateUTF8(s, limit): cut at limit, then drop bytes one at a time until one
 * of the last 4, 3, 2 or 1 bytes forms valid UTF-8, so a multi-byte character is never split. */
static size_t truncate_utf8_len(dds__slice s, size_t limit) {
    if (s.len <= limit) return s.len;
    const uint8_t *b = (const uint8_t *)s.ptr;
    size_t n = limit;
    while (n >= 1) {
        if ((n >= 4 && utf8_valid(b + n - 4, 4)) || (n >= 3 && utf8_valid(b + n - 3, 3)) ||
            (n >= 2 && utf8_valid(b + n - 2, 2)) || utf8_valid(b + n - 1, 1))
            break;
        n--;
    }
    return n;
}

/* Go TruncateUTF8(s, limit) + "..." when s is over the limit (the truncator's meta rule). */
static bool truncate_with_dots(proc *p, dds__slice *s, size_t limit, bool *changed) {
    if (s->len <= limit) return true;
    *changed = true;
    return concat(p, dds__slice_make(s->ptr, truncate_utf8_len(*s, limit)), DDS__SLICE_LIT("..."), s);
}

/* ---- Unicode classes for tag normalization ----------------------------------------------- */

/* Go's unicode.IsLetter / IsDigit / IsUpper+ToLower, for the scripts service names and envs
 * are written in: Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Thai, kana, CJK, Hangul and
 * full-width forms (ranges from the Unicode database). A letter of another script is treated
 * like punctuation (it becomes '_'), and the irregular case pairs of Latin Extended-B and
 * extended Greek keep their case: the one deliberate gap, against a 600-range table. */
typedef struct cp_range { uint32_t lo, hi; } cp_range;

static const cp_range LETTERS[] = {
    {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x2C1},
    {0x2C6, 0x2D1}, {0x2E0, 0x2E4}, {0x2EC, 0x2EC}, {0x2EE, 0x2EE}, {0x370, 0x374}, {0x376, 0x377},
    {0x37A, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1},
    {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556}, {0x559, 0x559}, {0x560, 0x588},
    {0x5D0, 0x5EA}, {0x5EF, 0x5F2}, {0x620, 0x64A}, {0x66E, 0x66F}, {0x671, 0x6D3}, {0x6D5, 0x6D5},
    {0x6E5, 0x6E6}, {0x6EE, 0x6EF}, {0x6FA, 0x6FC}, {0x6FF, 0x6FF}, {0xE01, 0xE30}, {0xE32, 0xE33},
    {0xE40, 0xE46}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D},
    {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x3041, 0x3096}, {0x309D, 0x309F}, {0x30A1, 0x30FA}, {0x30FC, 0x30FF}, {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0xFF66, 0xFFBE},
    {0xFFC2, 0xFFC7}, {0xFFCA, 0xFFCF}, {0xFFD2, 0xFFD7}, {0xFFDA, 0xFFDC},
};
static const cp_range DIGITS[] = {{0x660, 0x669}, {0x6F0, 0x6F9}, {0xE50, 0xE59}, {0xFF10, 0xFF19}};

/* Upper-case runs: every `step`-th code point of [lo, hi] lowers to cp + delta. */
typedef struct case_run { uint32_t lo, hi; uint8_t step; int32_t delta; } case_run;
static const case_run UPPER[] = {
    {0xC0, 0xD6, 1, 32},    {0xD8, 0xDE, 1, 32},    {0x100, 0x12E, 2, 1},  {0x132, 0x136, 2, 1},
    {0x139, 0x147, 2, 1},   {0x14A, 0x176, 2, 1},   {0x178, 0x178, 1, -121}, {0x179, 0x17D, 2, 1},
    {0x386, 0x386, 1, 38},  {0x388, 0x38A, 1, 37},  {0x38C, 0x38C, 1, 64}, {0x38E, 0x38F, 1, 63},
    {0x391, 0x3A1, 1, 32},  {0x3A3, 0x3AB, 1, 32},  {0x3D8, 0x3EE, 2, 1},  {0x400, 0x40F, 1, 80},
    {0x410, 0x42F, 1, 32},  {0x460, 0x480, 2, 1},   {0x48A, 0x4BE, 2, 1},  {0x4C0, 0x4C0, 1, 15},
    {0x4C1, 0x4CD, 2, 1},   {0x4D0, 0x52E, 2, 1},   {0x531, 0x556, 1, 48}, {0x1E00, 0x1E94, 2, 1},
    {0x1EA0, 0x1EFE, 2, 1}, {0xFF21, 0xFF3A, 1, 32},
};

static bool in_ranges(const cp_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(LETTERS, sizeof(LETTERS) / sizeof(LETTERS[0]), cp);
}

static bool is_digit(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(DIGITS, sizeof(DIGITS) / sizeof(DIGITS[0]), cp);
}

/* The lower-case form of an upper-case code point, or cp itself. */
static uint32_t to_lower(uint32_t cp) {
    for (size_t i = 0; i < sizeof(UPPER) / sizeof(UPPER[0]); i++) {
        const case_run *r = &UPPER[i];
        if (cp >= r->lo && cp <= r->hi) return (cp - r->lo) % r->step == 0 ? (uint32_t)((int32_t)cp + r->delta) : cp;
    }
    return cp;
}

/* ---- Go traceutil/normalize ---------------------------------------------------------------- */

static bool ascii_tag_start(uint8_t c) { return (c >= 'a' && c <= 'z') || c == ':'; }
static bool ascii_tag_char(uint8_t c) {
    return ascii_tag_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '-';
}

/* Go isNormalizedASCIITag: the fast path that returns the input untouched. An underscore is
 * fine only when a valid non-underscore character follows it. */
static bool is_normalized_ascii_tag(dds__slice s, bool check_start) {
    if (s.len == 0) return true;
    if (s.len > MAX_TAG_LEN) return false;
    const uint8_t *b = (const uint8_t *)s.ptr;
    size_t i = 0;
    if (check_start) {
        if (!ascii_tag_start(b[0])) return false;
        i++;
    }
    for (; i < s.len; i++) {
        if (ascii_tag_char(b[i])) continue;
        if (b[i] != '_') return false;
        i++;
        if (i == s.len || !ascii_tag_char(b[i])) return false;
    }
    return true;
}

/* Go normalize(v, removeDigitStartChar), behind NormalizeTag (true) and NormalizeTagValue
 * (false): lower-case, keep letters, digits and ": . / -", turn every run of other characters
 * (underscores included) into one '_', drop such a run at the end, stop after 200 characters
 * or 400 bytes. NormalizeTag also trims everything before the first letter (or ':'). */
static bool normalize_tag(proc *p, dds__slice in, bool remove_digit_start, dds__slice *out) {
    if (is_normalized_ascii_tag(in, remove_digit_start)) {
        *out = in;
        return true;
    }
    /* The scan below stops once it has read 400 bytes, inside a character of at most 4. */
    size_t n = in.len < 2 * MAX_TAG_LEN + 4 ? in.len : 2 * MAX_TAG_LEN + 4;
    uint8_t *tag = (uint8_t *)alloc_bytes(p, n);
    if (!tag) return false;
    memcpy(tag, in.ptr, n);

    struct { size_t lo, hi; } cuts[2 * MAX_TAG_LEN];  /* one per character at most */
    size_t ncuts = 0, trim = 0, chars = 0, stop = 0, jump;
    for (size_t i = 0; i < n; i += jump) {
        uint32_t r;
        jump = utf8_decode(tag + i, n - i, &r);
        if ((r >= 'a' && r <= 'z') || r == ':') {
            chars++;
        } else if (r >= 'A' && r <= 'Z') {
            tag[i] = (uint8_t)(tag[i] + ('a' - 'A'));
            chars++;
        } else {
            uint32_t low = to_lower(r);
            if (low != r && dds__utf8_len(low) == dds__utf8_len(r)) {  /* same width only, as Go */
                dds__utf8_encode(tag + i, low);
                r = low;
            }
            if (is_letter(r)) {
                chars++;
            } else if (remove_digit_start && chars == 0) {
                trim = i + jump;
            } else if (is_digit(r) || r == '.' || r == '/' || r == '-') {
                chars++;
            } else {
                chars++;
                if (ncuts > 0 && cuts[ncuts - 1].hi >= i) {
                    cuts[ncuts - 1].hi += jump;
                } else {
                    assert(ncuts < sizeof(cuts) / sizeof(cuts[0]));
                    cuts[ncuts].lo = i;
                    cuts[ncuts].hi = i + jump;
                    ncuts++;
                }
            }
        }
        stop = i + jump;
        if (stop >= 2 * MAX_TAG_LEN || chars >= MAX_TAG_LEN) break;
    }
    uint8_t *t = tag + trim;
    size_t len = stop - trim, delta = trim;
    for (size_t c = 0; c < ncuts; c++) {
        size_t lo = cuts[c].lo - delta, hi = cuts[c].hi - delta;
        if (hi >= len) {
            len = lo;
            break;
        }
        t[lo] = '_';
        if (hi - lo == 1) continue;
        memmove(t + lo + 1, t + hi, len - hi);
        len -= hi - lo - 1;
        delta += cuts[c].hi - cuts[c].lo - 1;
    }
    *out = dds__slice_make((const char *)t, len);
    return true;
}

static bool ascii_alpha(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool ascii_alnum(uint8_t c) { return ascii_alpha(c) || (c >= '0' && c <= '9'); }

/* Go isValidNormalizedMetricName. */
static bool is_normalized_metric_name(const uint8_t *b, size_t n) {
    if (n == 0 || !ascii_alpha(b[0])) return false;
    for (size_t j = 1; j < n; j++) {
        if (ascii_alnum(b[j])) continue;
        if ((b[j] == '.' || b[j] == '_') && b[j - 1] != '_') continue;
        return false;
    }
    return true;
}

/* Go normMetricNameParse: skip to the first ASCII letter, keep [A-Za-z0-9], '.' replaces an
 * underscore before it, any other run becomes one '_' (none after '.' or '_'), and one
 * trailing '_' goes. False when there is no letter at all. */
static bool normalize_metric_name(proc *p, dds__slice in, dds__slice *out, bool *ok) {
    const uint8_t *b = (const uint8_t *)in.ptr;
    size_t i = 0;
    *ok = false;
    if (in.len == 0 || in.len > MAX_NAME_LEN) return true;
    while (i < in.len && !ascii_alpha(b[i])) i++;
    if (i == in.len) return true;
    *ok = true;
    if (is_normalized_metric_name(b + i, in.len - i)) {
        size_t len = in.len - i;
        if (b[i + len - 1] == '_') len--;
        *out = dds__slice_make(in.ptr + i, len);
        return true;
    }
    char *res = alloc_bytes(p, in.len - i);
    if (!res) return false;
    size_t n = 0;
    for (; i < in.len; i++) {
        if (ascii_alnum(b[i])) {
            res[n++] = (char)b[i];
        } else if (b[i] == '.') {
            if (res[n - 1] == '_') res[n - 1] = '.';
            else res[n++] = '.';
        } else if (res[n - 1] != '.' && res[n - 1] != '_') {
            res[n++] = '_';
        }
    }
    if (res[n - 1] == '_') n--;
    *out = dds__slice_make(res, n);
    return true;
}

/* Go NormalizeName: empty or without a letter -> "unnamed_operation"; over 100 bytes ->
 * TruncateUTF8 first. */
static bool normalize_name(proc *p, dds__slice *name, bool *changed) {
    static const dds__slice fallback = DDS__SLICE_LIT("unnamed_operation");
    dds__slice in = *name, out = *name;
    bool ok;
    if (in.len == 0) {
        out = fallback;
    } else {
        in.len = truncate_utf8_len(in, MAX_NAME_LEN);
        if (!normalize_metric_name(p, in, &out, &ok)) return false;
        if (!ok) out = fallback;
    }
    if (!dds__slice_eq(out, *name)) *changed = true;
    *name = out;
    return true;
}

/* Go fallbackService: "unnamed-<lang>-service" with the header's language as sent. */
static bool fallback_service(proc *p, dds__slice *out) {
    if (p->cfg->lang.len == 0) {
        *out = DDS__SLICE_LIT("unnamed-service");
        return true;
    }
    if (!p->fallback_service.ptr) {
        dds__slice head;
        if (!concat(p, DDS__SLICE_LIT("unnamed-"), p->cfg->lang, &head) ||
            !concat(p, head, DDS__SLICE_LIT("-service"), &p->fallback_service))
            return false;
    }
    *out = p->fallback_service;
    return true;
}

/* Go NormalizeService (service) and NormalizePeerService (peer.service, _dd.base_service, whose
 * fallback is ""): TruncateUTF8 to 100, then NormalizeTagValue. */
static bool normalize_service(proc *p, dds__slice *svc, bool peer, bool *changed) {
    dds__slice out;
    if (svc->len == 0) {
        if (peer) return true;
        if (!fallback_service(p, &out)) return false;
    } else {
        dds__slice in = dds__slice_make(svc->ptr, truncate_utf8_len(*svc, MAX_SERVICE_LEN));
        if (!normalize_tag(p, in, false, &out)) return false;
        if (out.len == 0 && !peer && !fallback_service(p, &out)) return false;
    }
    if (!dds__slice_eq(out, *svc)) *changed = true;
    *svc = out;
    return true;
}

/* Go isValidStatusCode: strconv.ParseUint(sc, 10, 64) succeeds and 100 <= code < 600. */
static bool valid_status_code(dds__slice sc) {
    if (sc.len == 0) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < sc.len; i++) {
        uint8_t c = (uint8_t)sc.ptr[i];
        if (c < '0' || c > '9') return false;
        if (v > 1000) continue;  /* already out of range; keep checking the digits only */
        v = v * 10 + (c - '0');
    }
    return v >= 100 && v < 600;
}

/* ---- span ids ------------------------------------------------------------------------------ */

static size_t id_hash(uint64_t id) {
    id ^= id >> 33;
    id *= UINT64_C(0xff51afd7ed558ccd);
    id ^= id >> 33;
    return (size_t)id;
}

/* span_id -> index for the chunk; for a repeated id the later span wins, as in the Go agent's
 * ComputeTopLevel map. A hash table rather than a scan per span: a hostile chunk of 100k spans
 * would otherwise cost 10^10 comparisons. */
static bool index_build(proc *p, const dds__trace_chunk *c) {
    size_t want = 8;
    while (want < (size_t)c->nspans * 2) want *= 2;
    if (want > p->slots_cap) {
        uint32_t *s = dds__arena_calloc(p->arena, want, sizeof(*s));
        if (!s) return false;
        p->slots = s;
        p->slots_cap = want;
    } else {
        memset(p->slots, 0, want * sizeof(*p->slots));
    }
    p->mask = want - 1;
    for (uint32_t i = 0; i < c->nspans; i++) {
        uint64_t id = c->spans[i].span_id;
        for (size_t h = id_hash(id) & p->mask;; h = (h + 1) & p->mask) {
            uint32_t v = p->slots[h];
            if (v == 0 || c->spans[v - 1].span_id == id) {
                p->slots[h] = i + 1;
                break;
            }
        }
    }
    return true;
}

static int64_t index_find(const proc *p, const dds__trace_chunk *c, uint64_t id) {
    for (size_t h = id_hash(id) & p->mask;; h = (h + 1) & p->mask) {
        uint32_t v = p->slots[h];
        if (v == 0) return -1;
        if (c->spans[v - 1].span_id == id) return (int64_t)v - 1;
    }
}

/* Go GetRoot: the last span with parent_id 0; else a span whose parent is not in the chunk (Go
 * takes one at random from a map; we take the first, so the result is reproducible); else the
 * last span. */
static dds__span *find_root(const proc *p, dds__trace_chunk *c) {
    for (uint32_t j = c->nspans; j-- > 0;)
        if (c->spans[j].parent_id == 0) return &c->spans[j];
    for (uint32_t i = 0; i < c->nspans; i++)
        if (index_find(p, c, c->spans[i].parent_id) < 0) return &c->spans[i];
    return &c->spans[c->nspans - 1];
}

/* ---- validation and normalization ------------------------------------------------------------ */

/* Go normalizeTrace's drop rules: ids 0, or a span of another trace than the first span's. Go
 * SameTraceID also compares the high 64 bits (_dd.p.tid) when both spans carry them. */
static bool chunk_valid(dds__trace_chunk *c) {
    if (c->nspans == 0) return false;
    dds__span *first = &c->spans[0];
    const dds__kv *first_tid = KV_FIND(first->meta, first->nmeta, "_dd.p.tid");
    for (uint32_t i = 0; i < c->nspans; i++) {
        dds__span *s = &c->spans[i];
        if (s->trace_id == 0 || s->span_id == 0 || s->trace_id != first->trace_id) return false;
        const dds__kv *tid = KV_FIND(s->meta, s->nmeta, "_dd.p.tid");
        if (first_tid && tid && !dds__slice_eq(first_tid->value, tid->value)) return false;
    }
    return true;
}

/* Go Agent.normalize for one span (ids already checked). */
static bool normalize_span(proc *p, dds__span *s, bool *changed) {
    if (!normalize_service(p, &s->service, false, changed)) return false;
    dds__kv *kv;
    if ((kv = KV_FIND(s->meta, s->nmeta, "peer.service")) && !normalize_service(p, &kv->value, true, changed))
        return false;
    if ((kv = KV_FIND(s->meta, s->nmeta, "_dd.base_service")) && !normalize_service(p, &kv->value, true, changed))
        return false;
    if (!normalize_name(p, &s->name, changed)) return false;
    if (s->resource.len == 0) {
        s->resource = s->name;
        *changed = true;
    }
    if (s->parent_id == s->trace_id && s->parent_id == s->span_id) {
        s->parent_id = 0;
        *changed = true;
    }
    /* Go FixDuration: negative, or start + duration past int64 (Go's MaxInt64 - start wraps for
     * a negative start, which resets any duration: reproduced with unsigned arithmetic). */
    int64_t room = (int64_t)((uint64_t)INT64_MAX - (uint64_t)s->start);
    if (s->duration < 0 || s->duration > room) {
        s->duration = 0;
        *changed = true;
    }
    /* Go FixStartTime: a start before 2000 is garbage; now (receive time) - duration, or now. */
    if (s->start < YEAR_2000_NS) {
        int64_t now = p->cfg->now_ns;
        s->start = now >= 0 && now - s->duration >= 0 ? now - s->duration : now;
        *changed = true;
    }
    size_t tl = truncate_utf8_len(s->type, MAX_TYPE_LEN);
    if (tl != s->type.len) {
        s->type.len = tl;
        *changed = true;
    }
    if ((kv = KV_FIND(s->meta, s->nmeta, "env")) && kv->value.len > 0) {
        dds__slice env;
        if (!normalize_tag(p, kv->value, false, &env)) return false;
        if (!dds__slice_eq(env, kv->value)) *changed = true;
        kv->value = env;
    }
    if ((kv = KV_FIND(s->meta, s->nmeta, "http.status_code")) && !valid_status_code(kv->value)) {
        kv_remove(s->meta, &s->nmeta, "http.status_code", sizeof("http.status_code") - 1);
        *changed = true;
    }
    for (uint32_t i = 0; i < s->nlinks; i++) {
        dds__span_link *l = &s->links[i];
        if ((kv = KV_FIND(l->attributes, l->nattributes, "link.name")) && !normalize_name(p, &kv->value, changed))
            return false;
    }
    return true;
}

/* Go Agent.Truncate: resource to 5000 bytes; meta keys over 200 and values over 25000 bytes and
 * metric keys over 200 cut with "..." appended, except structured meta (_dd.*.json, .msgpack,
 * .protobuf), which the backend must receive whole. */
static bool truncate_span(proc *p, dds__span *s, bool *changed) {
    size_t rl = truncate_utf8_len(s->resource, MAX_RESOURCE_LEN);
    if (rl != s->resource.len) {
        s->resource.len = rl;
        *changed = true;
    }
    for (uint32_t i = 0; i < s->nmeta; i++) {
        dds__kv *kv = &s->meta[i];
        if (dds__slice_has_prefix(kv->key, "_dd.", 4) &&
            (has_suffix(kv->key, ".json", 5) || has_suffix(kv->key, ".msgpack", 8) ||
             has_suffix(kv->key, ".protobuf", 9)))
            continue;
        if (!truncate_with_dots(p, &kv->key, MAX_META_KEY_LEN, changed) ||
            !truncate_with_dots(p, &kv->value, MAX_META_VALUE_LEN, changed))
            return false;
    }
    for (uint32_t i = 0; i < s->nmetrics; i++)
        if (!truncate_with_dots(p, &s->metrics[i].key, MAX_METRIC_KEY_LEN, changed)) return false;
    return true;
}

/* ---- obfuscation --------------------------------------------------------------------------- */

/* Go validCardPrefix on the digits read so far: *yes when they form a known issuer prefix,
 * return value "maybe, once more digits come". */
static bool card_prefix(int n, bool *yes) {
    *yes = false;
    if (n > 699999) return false;
    if (n < 10) {
        if (n == 1 || n == 4) *yes = true;
        return n == 2 || n == 3 || n == 5 || n == 6;
    }
    if (n < 100) {
        if ((n >= 34 && n <= 39) || (n >= 51 && n <= 55) || n == 62 || n == 65) {
            *yes = true;
            return false;
        }
        if (n == 30 || n == 50 || (n >= 22 && n <= 27) || (n >= 56 && n <= 58) || (n >= 60 && n <= 69)) return true;
    }
    if (n < 1000) {
        if ((n >= 300 && n <= 305) || (n >= 644 && n <= 649) || n == 309 || n == 636) {
            *yes = true;
            return false;
        }
        if ((n >= 352 && n <= 358) || (n >= 222 && n <= 272) || (n >= 500 && n <= 509) || (n >= 560 && n <= 589) ||
            (n >= 600 && n <= 699))
            return true;
    }
    if (n < 10000) {
        if ((n >= 3528 && n <= 3589) || n == 5019 || n == 6011) {
            *yes = true;
            return false;
        }
        if ((n >= 2221 && n <= 2720) || (n >= 5000 && n <= 5099) || (n >= 5600 && n <= 5899) ||
            (n >= 6000 && n <= 6999))
            return true;
    }
    if (n < 100000) {
        if ((n >= 22210 && n <= 27209) || (n >= 50000 && n <= 50999) || (n >= 56000 && n <= 58999) ||
            (n >= 60000 && n <= 69999))
            return true;
    }
    if ((n >= 222100 && n <= 272099) || (n >= 500000 && n <= 509999) || (n >= 560000 && n <= 589999) ||
        (n >= 600000 && n <= 699999))
        *yes = true;
    return false;
}

/* Go IsCardNumber with Luhn validation on: 12 to 16 digits, spaces and dashes ignored, nothing
 * else allowed, a known issuer prefix, and a valid Luhn checksum. */
static bool is_card_number(dds__slice v) {
    if (v.len < 12) return false;
    uint8_t digits[16];
    size_t count = 0;
    int prefix = 0;
    bool found = false;
    for (size_t i = 0; i < v.len; i++) {
        uint8_t c = (uint8_t)v.ptr[i];
        if (c == ' ' || c == '-') continue;
        if (c < '0' || c > '9') return false;
        if (count == 16) return false;
        digits[count++] = (uint8_t)(c - '0');
        if (!found) {
            prefix = prefix * 10 + (c - '0');
            bool yes;
            bool maybe = card_prefix(prefix, &yes);
            if (yes) found = true;
            else if (!maybe) return false;
        }
    }
    if (count < 12 || !found) return false;
    int sum = 0;
    bool alt = false;
    for (size_t i = count; i-- > 0;) {
        int d = digits[i];
        if (alt) {
            d *= 2;
            if (d > 9) d = d % 10 + 1;
        }
        alt = !alt;
        sum += d;
    }
    return sum % 10 == 0;
}

/* Go ObfuscateCreditCardNumber's key filter: tags known never to hold a card number, and any
 * key starting with '_' (internal tags). */
static bool card_key_exempt(dds__slice k) {
    static const char *const keep[] = {
        "_sample_rate", "_sampling_priority_v1", "account_id", "aws_account", "error", "error.msg", "error.type",
        "error.stack", "env", "graphql.field", "graphql.query", "graphql.type", "graphql.operation.name",
        "grpc.code", "grpc.method", "grpc.request", "http.status_code", "http.method", "runtime-id", "out.host",
        "out.port", "sampling.priority", "span.type", "span.name", "service.name", "service", "sql.query",
        "version", "databricks_job_id", "databricks_job_run_id", "databricks_task_run_id",
        "config.spark_app_startTime", "config.spark_databricks_job_parentRunId",
    };
    if (k.len > 0 && k.ptr[0] == '_') return true;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (slice_is(k, keep[i], strlen(keep[i]))) return true;
    return false;
}

static bool is_hex(uint8_t c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* Go unescape's check: every '%' starts a "%XX" escape. In a host, Go also refuses an escaped
 * ASCII byte other than "%25". */
static bool escapes_valid(const char *s, size_t n, bool host) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') continue;
        if (i + 2 >= n || !is_hex((uint8_t)s[i + 1]) || !is_hex((uint8_t)s[i + 2])) return false;
        if (host && s[i + 1] < '8' && !(s[i + 1] == '2' && s[i + 2] == '5')) return false;
        i += 2;
    }
    return true;
}

/* Characters Go's url package accepts unescaped in a host (shouldEscape(c, encodeHost) false). */
static bool host_char(uint8_t c) {
    return c >= 0x80 || ascii_alnum(c) || (c && strchr("-._~!$&'()*+,;=:[]<>\"%", c));
}

static bool userinfo_char(uint8_t c) { return ascii_alnum(c) || (c && strchr("-._:~!$&'()*+,;=%@", c)); }

static bool port_valid(const char *s, size_t n) {
    if (n == 0) return true;
    if (s[0] != ':') return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static bool is_http_scheme(const char *s, size_t n) {
    return (n == 4 && strncasecmp(s, "http", 4) == 0) || (n == 5 && strncasecmp(s, "https", 5) == 0);
}

/* Go parseHost (Go 1.26): '[' only as the first byte, opening an IPv6 literal (checked here
 * for its characters only, Go parses the address) with an optional port after ']'; otherwise
 * the port starts at the first ':' for http and https (strict colons) and at the last one for
 * other schemes. */
static bool host_valid(const char *h, size_t hn, bool http) {
    if (hn > 0 && h[0] == '[') {
        const char *close = NULL;
        for (size_t i = hn; i-- > 0;)
            if (h[i] == ']') {
                close = h + i;
                break;
            }
        if (!close || !port_valid(close + 1, hn - (size_t)(close + 1 - h))) return false;
        bool colon = false;
        for (const char *c = h + 1; c < close; c++) {
            if (c[0] == '%' && close - c >= 3 && c[1] == '2' && c[2] == '5') break;  /* zone id */
            if (*c == ':') colon = true;
            else if (!is_hex((uint8_t)*c) && *c != '.') return false;
        }
        if (!colon) return false;
    } else {
        if (memchr(h, '[', hn)) return false;
        const char *colon = NULL;
        for (size_t i = 0; i < hn; i++)
            if (h[i] == ':') {
                colon = h + i;
                if (http) break;
            }
        if (colon && !port_valid(colon, hn - (size_t)(colon - h))) return false;
    }
    return true;
}

/* Where Go's url.Parse would find things in an http.url, or false where it fails. Offsets into
 * the string; userinfo is [auth, at) with at > auth when present. */
typedef struct url_parts {
    size_t auth, at;   /* userinfo to strip: [auth, at), '@' included */
    size_t query;      /* index of the first '?' of the query, or SIZE_MAX */
    size_t frag;       /* index of '#', or the length */
    size_t path_lo, path_hi; /* the path, empty for an opaque URL ("mailto:x") */
} url_parts;

static bool url_parse(dds__slice u, url_parts *out) {
    const char *s = u.ptr;
    size_t n = u.len;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f) return false;  /* Go: invalid control character */
    const char *hash = memchr(s, '#', n);
    size_t frag = hash ? (size_t)(hash - s) : n;
    if (hash && !escapes_valid(hash + 1, n - frag - 1, false)) return false;
    out->frag = frag;
    out->auth = out->at = 0;
    out->path_lo = out->path_hi = 0;
    /* Go getScheme: letters, then letters, digits, "+-."; ':' at 0 is an error; anything else
     * means "no scheme". */
    size_t rest = 0;
    bool scheme = false;
    for (size_t i = 0; i < frag; i++) {
        uint8_t c = (uint8_t)s[i];
        if (ascii_alpha(c)) continue;
        if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
            if (i == 0) break;
            continue;
        }
        if (c == ':') {
            if (i == 0) return false;
            rest = i + 1;
            scheme = true;
        }
        break;
    }
    const char *q = memchr(s + rest, '?', frag - rest);
    out->query = q ? (size_t)(q - s) : SIZE_MAX;
    size_t end = q ? (size_t)(q - s) : frag;
    const char *r = s + rest;
    size_t rn = end - rest;
    if (rn == 0 || r[0] != '/') {
        if (scheme) return true;  /* opaque ("mailto:x"): Go does not look inside */
        out->path_lo = rest;
        out->path_hi = end;
        const char *slash = memchr(r, '/', rn);
        if (memchr(r, ':', slash ? (size_t)(slash - r) : rn)) return false;  /* Go: colon in first segment */
        return escapes_valid(r, rn, false);
    }
    size_t path = rest;
    if (rn >= 2 && r[1] == '/' && (scheme || rn < 3 || r[2] != '/')) {
        size_t a = rest + 2;
        const char *slash = memchr(s + a, '/', end - a);
        size_t ae = slash ? (size_t)(slash - s) : end;
        size_t host = a;
        for (size_t i = ae; i-- > a;)
            if (s[i] == '@') {
                host = i + 1;
                break;
            }
        if (host > a) {
            for (size_t i = a; i < host - 1; i++)
                if (!userinfo_char((uint8_t)s[i])) return false;
            if (!escapes_valid(s + a, host - 1 - a, false)) return false;
            out->auth = a;
            out->at = host;
        }
        const char *h = s + host;
        size_t hn = ae - host;
        if (!host_valid(h, hn, scheme && is_http_scheme(s, rest - 1))) return false;
        for (size_t i = 0; i < hn; i++)
            if (!host_char((uint8_t)h[i])) return false;
        if (!escapes_valid(h, hn, true)) return false;
        path = ae;
    }
    out->path_lo = path;
    out->path_hi = end;
    return escapes_valid(s + path, end - path, false);
}

/* A path segment Go's RemovePathDigits replaces: one with a digit once unescaped. */
static bool segment_has_digit(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') return true;
        if (s[i] == '%' && i + 2 < n && s[i + 1] == '3' && s[i + 2] >= '0' && s[i + 2] <= '9') return true;
    }
    return false;
}

static bool path_has_digit(const char *s, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++)
        if (s[i] >= '0' && s[i] <= '9') return true;
    return segment_has_digit(s + lo, hi - lo);
}

/* Go ObfuscateURLString on http.url of "web" and "http" spans: user info always goes; with
 * remove_query_string a non-empty query becomes a bare '?' (the fragment stays); with
 * remove_paths_with_digits each path segment holding a digit becomes '?'; and, with either, a
 * URL Go cannot parse becomes "?" rather than leak. Go then re-serializes the URL (lower-case scheme,
 * re-escaped path and fragment, upper-case escapes, an empty '#' dropped); we keep the other
 * bytes as sent. Which URLs fail follows Go 1.26's net/url (checked against it on 20000
 * generated URLs). */
static bool obfuscate_url(proc *p, dds__slice *v) {
    bool rm = p->cfg->remove_query_string;
    url_parts up;
    if (!url_parse(*v, &up)) {
        if (rm || p->cfg->remove_paths_with_digits) *v = DDS__SLICE_LIT("?");
        return true;
    }
    bool digits = p->cfg->remove_paths_with_digits && path_has_digit(v->ptr, up.path_lo, up.path_hi);
    size_t cut_lo = up.auth, cut_hi = up.at;                 /* userinfo */
    size_t q_lo = SIZE_MAX, q_hi = SIZE_MAX;                  /* query bytes after '?' */
    if (rm && up.query != SIZE_MAX && up.query + 1 < up.frag) {
        q_lo = up.query + 1;
        q_hi = up.frag;
    }
    if (cut_hi == cut_lo && q_lo == SIZE_MAX && !digits) return true;
    char *d = alloc_bytes(p, v->len);  /* everything only shrinks */
    if (!d) return false;
    size_t n = 0;
    for (size_t i = 0; i < v->len;) {
        if (i >= cut_lo && i < cut_hi) {
            i = cut_hi;
        } else if (q_lo != SIZE_MAX && i >= q_lo && i < q_hi) {
            i = q_hi;
        } else if (digits && i >= up.path_lo && i < up.path_hi && v->ptr[i] != '/') {
            size_t e = i;
            while (e < up.path_hi && v->ptr[e] != '/') e++;
            if (segment_has_digit(v->ptr + i, e - i)) {
                d[n++] = '?';
            } else {
                memcpy(d + n, v->ptr + i, e - i);
                n += e - i;
            }
            i = e;
        } else {
            d[n++] = v->ptr[i++];
        }
    }
    *v = dds__slice_make(d, n);
    return true;
}

/* Go obfuscateSpan for "sql" and "cassandra": resource and sql.query both become the
 * obfuscated query (or "Non-parsable SQL query"); the dialect comes from db.type. */
static bool obfuscate_sql_span(proc *p, dds__span *s) {
    if (s->resource.len == 0) return true;
    const dds__kv *db = KV_FIND(s->meta, s->nmeta, "db.type");
    dds__slice q;
    dds__sql_result r = dds__obfuscate_sql_cached(p->cfg->sql_cache, s->resource,
                                                  db ? dds__sql_dbms_from(db->value) : DDS__SQL_GENERIC, p->arena, &q);
    if (r == DDS__SQL_OOM) return false;
    if (r == DDS__SQL_NON_PARSABLE) p->sql_non_parsable++;
    p->obfuscated++;
    s->resource = q;
    dds__kv add = {DDS__SLICE_LIT("sql.query"), q};
    return kv_put(p, &s->meta, &s->nmeta, &add, 1);
}

/* redis and valkey: the resource is always quantized; the raw command tag is obfuscated when
 * enabled (all its arguments, with remove_all_args). */
static bool obfuscate_redis_span(proc *p, dds__span *s, const char *tag, size_t taglen, bool enabled,
                                 bool remove_all) {
    if (!dds__redis_quantize(s->resource, p->arena, &s->resource)) return false;
    p->obfuscated++;
    dds__kv *kv = kv_find(s->meta, s->nmeta, tag, taglen);
    if (!enabled || !kv || kv->value.len == 0) return true;
    return remove_all ? dds__redis_remove_all_args(kv->value, p->arena, &kv->value)
                      : dds__redis_obfuscate(kv->value, p->arena, &kv->value);
}

static bool replace_one(proc *p, const dds__replace_rule *r, dds__slice *v) {
    return dds__replace_apply(r, *v, p->arena, &p->re_scratch, v);
}

/* DD_APM_REPLACE_TAGS, Go Replacer semantics: "*" reaches every meta value except the internal
 * "_..." ones, and the resource; "resource.name" the resource; any other name that meta tag
 * when present. Numeric metrics and span events are not rewritten (Go formats and re-parses
 * them). */
static bool replace_tags(proc *p, dds__span *s) {
    const dds__replace_rules *rs = p->cfg->replace_rules;
    if (!rs) return true;
    for (size_t i = 0; i < rs->n; i++) {
        const dds__replace_rule *r = &rs->rule[i];
        if (r->target == DDS__REPLACE_ALL) {
            for (uint32_t k = 0; k < s->nmeta; k++)
                if (!(s->meta[k].key.len > 0 && s->meta[k].key.ptr[0] == '_') && !replace_one(p, r, &s->meta[k].value))
                    return false;
        }
        if (r->target == DDS__REPLACE_ALL || r->target == DDS__REPLACE_RESOURCE) {
            if (!replace_one(p, r, &s->resource)) return false;
        } else {
            dds__kv *kv = kv_find(s->meta, s->nmeta, r->name.ptr, r->name.len);
            if (kv && !replace_one(p, r, &kv->value)) return false;
        }
    }
    return true;
}

static bool obfuscate_span(proc *p, dds__span *s) {
    if (p->cfg->obfuscate_credit_cards) {
        for (uint32_t i = 0; i < s->nmeta; i++)
            /* The value test first: it rejects almost every tag at its first byte, while the
             * key test walks a list of 33 names. */
            if (is_card_number(s->meta[i].value) && !card_key_exempt(s->meta[i].key))
                s->meta[i].value = DDS__SLICE_LIT("?");
    }
    if (IS(s->type, "web") || IS(s->type, "http")) {
        dds__kv *kv = KV_FIND(s->meta, s->nmeta, "http.url");
        if (kv && kv->value.len > 0 && !obfuscate_url(p, &kv->value)) return false;
    } else if (IS(s->type, "sql") || IS(s->type, "cassandra")) {
        if (!obfuscate_sql_span(p, s)) return false;
    } else if (IS(s->type, "redis")) {
        if (!obfuscate_redis_span(p, s, "redis.raw_command", 17, p->cfg->redis_obfuscate, p->cfg->redis_remove_all_args))
            return false;
    } else if (IS(s->type, "valkey")) {
        if (!obfuscate_redis_span(p, s, "valkey.raw_command", 18, p->cfg->valkey_obfuscate,
                                  p->cfg->valkey_remove_all_args))
            return false;
    } else if (IS(s->type, "memcached") && p->cfg->memcached_obfuscate) {
        dds__kv *kv = KV_FIND(s->meta, s->nmeta, "memcached.command");
        if (kv && kv->value.len > 0) {
            /* Go: without keep_command the whole command goes (the tag stays, empty). */
            kv->value = p->cfg->memcached_keep_command ? dds__memcached_command(kv->value) : S_EMPTY;
            p->obfuscated++;
        }
    }
    if (p->cfg->remove_stack_traces) {
        dds__kv *kv = KV_FIND(s->meta, s->nmeta, "error.stack");
        if (kv) kv->value = DDS__SLICE_LIT("?");
    }
    return replace_tags(p, s);
}

/* ---- chunk level --------------------------------------------------------------------------- */

static bool is_top_level_marker(const dds__kvd *m) { return m && m->value == 1; }

/* Go setChunkAttributes: priority from the root's _sampling_priority_v1 (else the first span
 * that has one), origin from the root's _dd.origin, and _dd.p.dm promoted to a chunk tag from
 * the first span that has it. Only fields the tracer left unset are filled. */
static bool chunk_attributes(proc *p, dds__trace_chunk *c, dds__span *root) {
    if (c->priority == DDS__PRIORITY_NONE || c->priority == GO_PRIORITY_NONE) {
        const dds__kvd *m = KVD_FIND(root->metrics, root->nmetrics, "_sampling_priority_v1");
        for (uint32_t i = 0; !m && i < c->nspans; i++)
            m = KVD_FIND(c->spans[i].metrics, c->spans[i].nmetrics, "_sampling_priority_v1");
        /* Go converts with int32(p): clamp instead of relying on undefined conversions. */
        if (m && !isnan(m->value))
            c->priority = m->value <= INT32_MIN ? INT32_MIN + 1 : m->value >= INT32_MAX ? INT32_MAX : (int32_t)m->value;
    }
    if (c->origin.len == 0) {
        const dds__kv *o = KV_FIND(root->meta, root->nmeta, "_dd.origin");
        if (o) c->origin = o->value;
    }
    if (!KV_FIND(c->tags, c->ntags, "_dd.p.dm")) {
        for (uint32_t i = 0; i < c->nspans; i++) {
            const dds__kv *dm = KV_FIND(c->spans[i].meta, c->spans[i].nmeta, "_dd.p.dm");
            if (dm) {
                dds__kv add = {DDS__SLICE_LIT("_dd.p.dm"), dm->value};
                return kv_put(p, &c->tags, &c->ntags, &add, 1);
            }
        }
    }
    return true;
}

/* Go ComputeTopLevel: roots, spans whose parent is not in the chunk, and spans whose parent has
 * another service get _top_level = 1 (nothing is ever unmarked). With client-computed top-level,
 * Go UpdateTracerTopLevel: the tracer's _dd.top_level = 1 becomes _top_level = 1. */
static bool mark_top_level(proc *p, dds__trace_chunk *c) {
    for (uint32_t i = 0; i < c->nspans; i++) {
        dds__span *s = &c->spans[i];
        bool top;
        if (p->cfg->client_computed_top_level) {
            top = is_top_level_marker(KVD_FIND(s->metrics, s->nmetrics, "_dd.top_level"));
        } else if (s->parent_id == 0) {
            top = true;
        } else {
            int64_t parent = index_find(p, c, s->parent_id);
            top = parent < 0 || !dds__slice_eq(c->spans[parent].service, s->service);
        }
        if (top && !kvd_put(p, &s->metrics, &s->nmetrics, DDS__SLICE_LIT("_top_level"), 1)) return false;
    }
    return true;
}

/* The serverless agents' root span tags (PROTOCOL.md section 6): _dd.origin and origin set to
 * the cloud origin, functionname to the function's name. */
static bool enrich_root(proc *p, dds__span *root) {
    const char *origin = p->cfg->cloud_origin;
    if (!origin) return true;
    dds__slice o = dds__slice_cstr(origin);
    dds__kv add[3] = {{DDS__SLICE_LIT("_dd.origin"), o}, {DDS__SLICE_LIT("origin"), o}};
    uint32_t n = 2;
    if (p->cfg->function_name.len > 0) add[n++] = (dds__kv){DDS__SLICE_LIT("functionname"), p->cfg->function_name};
    return kv_put(p, &root->meta, &root->nmeta, add, n);
}

/* Every span's tags from the platform (the Rust binary's enrich_span_with_mini_agent_metadata and
 * enrich_span_with_azure_function_metadata, which run on each span of the chunk, not only the
 * root). */
static bool enrich_spans(proc *p, dds__trace_chunk *c) {
    const dds__trace_process_config *cfg = p->cfg;
    for (uint32_t i = 0; i < c->nspans; i++) {
        dds__span *s = &c->spans[i];
        if (cfg->nspan_tags && !kv_put(p, &s->meta, &s->nmeta, cfg->span_tags, cfg->nspan_tags)) return false;
        /* Rust enrich_span_with_azure_function_metadata leaves API Management's spans alone. */
        if (cfg->naas_tags && !IS(s->name, "azure.apim") &&
            !kv_put(p, &s->meta, &s->nmeta, cfg->aas_tags, cfg->naas_tags))
            return false;
    }
    return true;
}

/* Go traceutil.GetEnv (and the same search for "version"): the root's tag, else any other
 * span's. */
static const dds__kv *chunk_tag(dds__trace_chunk *c, const dds__span *root, const char *key, size_t klen) {
    const dds__kv *kv = kv_find(root->meta, root->nmeta, key, klen);
    for (uint32_t i = 0; !kv && i < c->nspans; i++)
        if (&c->spans[i] != root) kv = kv_find(c->spans[i].meta, c->spans[i].nmeta, key, klen);
    return kv;
}

/* One chunk, in the Go agent's order (Agent.Process): fix each span (normalize, obfuscate,
 * truncate), find the root, chunk attributes, top-level; then the payload fields older tracers
 * only set on spans, then our enrichment. Go reads the chunk attributes before obfuscating and
 * truncating; the keys they read start with '_' (never card-checked) and are far below the
 * truncation limits, so one pass per span gives the same result. False on allocation failure
 * (the caller drops the chunk). */
static bool process_chunk(proc *p, dds__tracer_payload *tp, dds__trace_chunk *c, uint64_t *normalized) {
    for (uint32_t i = 0; i < c->nspans; i++) {
        dds__span *s = &c->spans[i];
        bool changed = false;
        bool ok = normalize_span(p, s, &changed) && obfuscate_span(p, s) && truncate_span(p, s, &changed);
        if (changed) (*normalized)++;
        if (!ok) return false;
    }
    if (!index_build(p, c)) return false;
    dds__span *root = find_root(p, c);
    if (!chunk_attributes(p, c, root) || !mark_top_level(p, c)) return false;
    const dds__kv *kv;
    if (tp->hostname.len == 0 && (kv = KV_FIND(root->meta, root->nmeta, "_dd.hostname"))) tp->hostname = kv->value;
    if (tp->env.len == 0 && (kv = chunk_tag(c, root, "env", 3))) tp->env = kv->value;
    if (tp->app_version.len == 0 && (kv = chunk_tag(c, root, "version", 7))) tp->app_version = kv->value;
    return enrich_root(p, root) && enrich_spans(p, c);
}

/* The payload-level fields: tracer env normalized as a full tag (Go Agent.Process), DD_ENV ready
 * for the fallback, DD_TAGS as a payload tag. Done before the chunks so that their allocations
 * cannot fail halfway through. */
static bool process_payload_fields(proc *p, dds__tracer_payload *tp, dds__slice *default_env) {
    if (!normalize_tag(p, tp->env, true, &tp->env)) return false;
    if (!normalize_tag(p, p->cfg->default_env, true, default_env)) return false;
    if (p->cfg->function_tags.len == 0) return true;
    dds__kv add = {DDS__SLICE_LIT("_dd.tags.function"), p->cfg->function_tags};
    return kv_put(p, &tp->tags, &tp->ntags, &add, 1);
}

uint32_t dds__trace_process(dds__tracer_payload *tp, const dds__trace_process_config *cfg, dds__arena *arena,
                            dds__trace_process_counters *counters) {
    assert(tp && cfg && arena && counters);
    proc p = {.cfg = cfg, .arena = arena};
    uint64_t normalized = 0, kept_spans = 0, dropped_traces = 0, dropped_spans = 0;
    dds__slice default_env = S_EMPTY;
    /* Without its payload fields no chunk can be sent as the user configured it: all go. */
    bool payload_ok = process_payload_fields(&p, tp, &default_env);

    uint32_t w = 0;
    for (uint32_t r = 0; r < tp->nchunks; r++) {
        dds__trace_chunk *c = &tp->chunks[r];
        uint64_t n = 0;
        /* A failed chunk may be half processed: it goes entirely. The spans_normalized of its
         * spans still count (those fixes happened). */
        bool ok = payload_ok && chunk_valid(c) && process_chunk(&p, tp, c, &n);
        normalized += n;
        if (!ok) {
            dropped_traces++;
            dropped_spans += c->nspans;
            continue;
        }
        kept_spans += c->nspans;
        if (w != r) tp->chunks[w] = *c;
        w++;
    }
    tp->nchunks = w;
    if (tp->env.len == 0 && default_env.len > 0) tp->env = default_env;

    dds__counter_add(&counters->traces_dropped, dropped_traces);
    dds__counter_add(&counters->spans_dropped, dropped_spans);
    dds__counter_add(&counters->spans_normalized, normalized);
    dds__counter_add(&counters->spans_obfuscated, p.obfuscated);
    dds__counter_add(&counters->sql_non_parsable, p.sql_non_parsable);
    dds__buf_free(&p.re_scratch);
    return kept_spans > UINT32_MAX ? UINT32_MAX : (uint32_t)kept_spans;
}
