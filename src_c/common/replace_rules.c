/* replace_rules.c - tag replacement rules. In: the DD_APM_REPLACE_TAGS JSON text (once, at
 * configuration) and then tag values. Out: compiled rules, and rewritten values in the caller's
 * arena. Parsing is bounded (nesting depth, rule count); applying never allocates outside the
 * arena and never reads past a value. */
#include "common/replace_rules.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SKIP_DEPTH 32

/* ---- a small JSON reader for [{"name": "...", "pattern": "...", "repl": "..."}, ...] ------------ */

typedef struct jr {
    const char *p, *end;
    char *why;
    size_t why_cap;
    bool failed;
} jr;

__attribute__((format(printf, 2, 3))) static void fail(jr *j, const char *fmt, ...) {
    if (j->failed) return;
    j->failed = true;
    va_list ap;
    va_start(ap, fmt);
    if (j->why && j->why_cap) vsnprintf(j->why, j->why_cap, fmt, ap);
    va_end(ap);
}

static void ws(jr *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool eat(jr *j, char c) {
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

static bool hex4(jr *j, uint32_t *v) {
    if (j->end - j->p < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0) return false;
        *v = *v * 16 + (uint32_t)h;
    }
    j->p += 4;
    return true;
}

/* A JSON string, decoded into a malloc'd NUL-terminated copy (NULL after fail). An embedded
 * \u0000 ends the C string early: patterns and replacements are C strings for regcomp. */
static char *jstring(jr *j) {
    ws(j);
    if (j->p >= j->end || *j->p != '"') {
        fail(j, "expected a string at byte %zu", (size_t)(j->end - j->p));
        return NULL;
    }
    j->p++;
    char *out = malloc((size_t)(j->end - j->p) + 1);
    if (!out) {
        fail(j, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) goto bad;
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        if (j->p >= j->end) goto bad;
        char e = *j->p++;
        uint32_t cp;
        switch (e) {
        case '"': case '\\': case '/': out[n++] = e; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u':
            if (!hex4(j, &cp)) goto bad;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                    j->p += 2;
                    if (!hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto bad;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            /* Six escape bytes always cover the (at most 4) UTF-8 bytes written. */
            if (cp < 0x80) {
                out[n++] = (char)cp;
            } else if (cp < 0x800) {
                out[n++] = (char)(0xC0 | (cp >> 6));
                out[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[n++] = (char)(0xE0 | (cp >> 12));
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[n++] = (char)(0xF0 | (cp >> 18));
                out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[n++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        default:
            goto bad;
        }
    }
    if (j->p >= j->end) goto bad;
    j->p++;
    out[n] = '\0';
    return out;
bad:
    free(out);
    fail(j, "invalid JSON string");
    return NULL;
}

/* Skip any JSON value (fields Go would ignore). */
static void skip_value(jr *j, int depth) {
    ws(j);
    if (j->p >= j->end) return fail(j, "unexpected end of JSON");
    if (depth > MAX_SKIP_DEPTH) return fail(j, "JSON nested too deeply");
    char c = *j->p;
    if (c == '"') {
        free(jstring(j));
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (eat(j, close)) return;
        do {
            if (c == '{') {
                free(jstring(j));
                if (!eat(j, ':')) return fail(j, "expected ':' in JSON object");
            }
            skip_value(j, depth + 1);
            if (j->failed) return;
        } while (eat(j, ','));
        if (!eat(j, close)) fail(j, "expected '%c' in JSON", close);
    } else {
        const char *b = j->p;
        while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') ||
                                 (*j->p >= 'a' && *j->p <= 'z')))
            j->p++;
        size_t n = (size_t)(j->p - b);
        bool ok = (n == 4 && (!memcmp(b, "true", 4) || !memcmp(b, "null", 4))) || (n == 5 && !memcmp(b, "false", 5)) ||
                  (n > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')));
        if (!ok) fail(j, "invalid JSON value");
    }
}

/* ---- RE2 syntax to POSIX ERE ---------------------------------------------------------------- */

/* Translate the Go (RE2) pattern into POSIX extended syntax: \d \D \w \W \s \S become bracket
 * expressions (musl and glibc alike), other escapes pass through. What POSIX cannot express is
 * refused rather than silently matched differently. Returns a malloc'd string or NULL (why set). */
static char *to_posix(const char *re, char *why, size_t why_cap) {
    size_t n = strlen(re);
    char *out = malloc(n * 20 + 1);  /* "\W" -> "[^[:alnum:]_]" is the largest growth */
    if (!out) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char e = re[++i];
            const char *rep = NULL, *rep_in = NULL;
            switch (e) {
            case 'd': rep = "[0-9]"; rep_in = "0-9"; break;
            case 'D': rep = "[^0-9]"; break;
            case 'w': rep = "[[:alnum:]_]"; rep_in = "[:alnum:]_"; break;
            case 'W': rep = "[^[:alnum:]_]"; break;
            case 's': rep = "[[:space:]]"; rep_in = "[:space:]"; break;
            case 'S': rep = "[^[:space:]]"; break;
            case 'p': case 'P': case 'Q': case 'E': case 'z': case 'A': case 'C':
                snprintf(why, why_cap, "\\%c is RE2 syntax POSIX regex does not support", e);
                free(out);
                return NULL;
            default: break;
            }
            if (in_class) {
                if (e == 'D' || e == 'W' || e == 'S' || e == ']' || e == '-' || e == '^') {
                    snprintf(why, why_cap, "\\%c inside [...] is not supported by POSIX regex", e);
                    free(out);
                    return NULL;
                }
                if (rep_in) {
                    memcpy(out + o, rep_in, strlen(rep_in));
                    o += strlen(rep_in);
                } else {
                    out[o++] = e;  /* a backslash is literal inside a POSIX bracket expression */
                }
                continue;
            }
            if (rep) {
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                out[o++] = '\\';
                out[o++] = e;
            }
            continue;
        }
        if (!in_class) {
            if (c == '(' && i + 1 < n && re[i + 1] == '?') {
                snprintf(why, why_cap, "(?...) groups and flags are RE2 syntax POSIX regex does not support");
                free(out);
                return NULL;
            }
            if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < n && re[i + 1] == '?') {
                snprintf(why, why_cap, "lazy quantifiers (%c?) are not supported by POSIX regex", c);
                free(out);
                return NULL;
            }
            if (c == '[') {
                in_class = true;
                out[o++] = c;
                if (i + 1 < n && re[i + 1] == '^') out[o++] = re[++i];
                if (i + 1 < n && re[i + 1] == ']') out[o++] = re[++i];  /* a leading ']' is literal */
                continue;
            }
        } else if (c == '[' && i + 1 < n && re[i + 1] == ':') {
            const char *close = strstr(re + i + 2, ":]");
            if (close) {
                size_t k = (size_t)(close + 2 - (re + i));
                memcpy(out + o, re + i, k);
                o += k;
                i += k - 1;
                continue;
            }
        } else if (c == ']') {
            in_class = false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* ---- parse ------------------------------------------------------------------------------------ */

void dds__replace_rules_free(dds__replace_rules *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        regfree(&r->rule[i].re);
        free((char *)r->rule[i].name.ptr);
        free(r->rule[i].repl);
    }
    free(r);
}

int dds__replace_rules_parse(const char *json, dds__replace_rules **out, char *why, size_t why_cap) {
    *out = NULL;
    if (!json || !json[0]) return 0;
    jr j = {.p = json, .end = json + strlen(json), .why = why, .why_cap = why_cap};
    dds__replace_rules *rs = calloc(1, sizeof(*rs) + DDS__REPLACE_RULES_MAX * sizeof(dds__replace_rule));
    if (!rs) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    char *name = NULL, *pattern = NULL, *repl = NULL;
    if (!eat(&j, '[')) {
        fail(&j, "must be a JSON list of {\"name\", \"pattern\", \"repl\"} objects");
        goto fail;
    }
    if (!eat(&j, ']')) {
        do {
            if (rs->n == DDS__REPLACE_RULES_MAX) {
                fail(&j, "at most %d rules are allowed", DDS__REPLACE_RULES_MAX);
                goto fail;
            }
            if (!eat(&j, '{')) {
                fail(&j, "rule %zu must be a JSON object", rs->n);
                goto fail;
            }
            if (!eat(&j, '}')) {
                do {
                    char *key = jstring(&j);
                    if (!key || !eat(&j, ':')) {
                        free(key);
                        fail(&j, "rule %zu is not a valid JSON object", rs->n);
                        goto fail;
                    }
                    /* encoding/json matches field names case-insensitively; the last one wins. */
                    char **slot = !strcasecmp(key, "name") ? &name : !strcasecmp(key, "pattern") ? &pattern
                                : !strcasecmp(key, "repl") ? &repl : NULL;
                    free(key);
                    if (slot) {
                        ws(&j);
                        if (j.p < j.end && *j.p != '"') {
                            fail(&j, "rule %zu: name, pattern and repl must be strings", rs->n);
                            goto fail;
                        }
                        free(*slot);
                        *slot = jstring(&j);
                    } else {
                        skip_value(&j, 0);
                    }
                    if (j.failed) goto fail;
                } while (eat(&j, ','));
                if (!eat(&j, '}')) {
                    fail(&j, "rule %zu is not a valid JSON object", rs->n);
                    goto fail;
                }
            }
            if (!name || !name[0] || !pattern) {
                fail(&j, "rule %zu needs a non-empty \"name\" and a \"pattern\"", rs->n);
                goto fail;
            }
            dds__replace_rule *r = &rs->rule[rs->n];
            char rwhy[160] = "";
            char *posix = to_posix(pattern, rwhy, sizeof(rwhy));
            if (!posix) {
                fail(&j, "rule %zu pattern '%.64s': %s", rs->n, pattern, rwhy);
                goto fail;
            }
            int rc = regcomp(&r->re, posix, REG_EXTENDED);
            free(posix);
            if (rc != 0) {
                regerror(rc, NULL, rwhy, sizeof(rwhy));
                fail(&j, "rule %zu pattern '%.64s' is not a valid POSIX extended regex: %s", rs->n, pattern, rwhy);
                goto fail;
            }
            r->nsub = r->re.re_nsub;
            r->target = !strcmp(name, "*") ? DDS__REPLACE_ALL
                      : !strcmp(name, "resource.name") ? DDS__REPLACE_RESOURCE : DDS__REPLACE_TAG;
            r->name = dds__slice_cstr(name);
            r->repl = repl ? repl : strdup("");
            name = repl = NULL;
            free(pattern);
            pattern = NULL;
            rs->n++;
            if (!r->repl) {
                fail(&j, "out of memory");
                goto fail;
            }
        } while (eat(&j, ','));
        if (!eat(&j, ']')) {
            fail(&j, "must be a JSON list of {\"name\", \"pattern\", \"repl\"} objects");
            goto fail;
        }
    }
    ws(&j);
    if (j.p != j.end) {
        fail(&j, "unexpected text after the JSON list");
        goto fail;
    }
    if (rs->n == 0) {
        free(rs);
        return 0;
    }
    *out = rs;
    return 0;
fail:
    free(name);
    free(pattern);
    free(repl);
    dds__replace_rules_free(rs);
    return -1;
}

/* ---- apply ------------------------------------------------------------------------------------ */

typedef struct abuf {
    dds__arena *arena;
    char *p;
    size_t len, cap;
    bool oom;
} abuf;

static void aput(abuf *b, const char *p, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 64;
        char *np = dds__arena_alloc(b->arena, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        if (b->len) memcpy(np, b->p, b->len);
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

static bool name_char(char c) {
    return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Go Regexp.Expand: $name or ${name}; a name of digits is a group number, any other name (POSIX
 * has no named groups) and an unmatched group give nothing; $$ is a dollar; a '$' starting
 * nothing valid is kept as is. */
static void expand(abuf *b, const char *repl, const char *s, const regmatch_t *m, size_t nsub) {
    for (const char *p = repl; *p;) {
        const char *d = strchr(p, '$');
        if (!d) {
            aput(b, p, strlen(p));
            return;
        }
        aput(b, p, (size_t)(d - p));
        p = d + 1;
        if (*p == '$') {
            aput(b, "$", 1);
            p++;
            continue;
        }
        const char *nb = p, *ne;
        bool brace = *p == '{';
        if (brace) nb = ++p;
        ne = nb;
        while (name_char(*ne)) ne++;
        if (ne == nb || (brace && *ne != '}')) {
            aput(b, "$", 1);
            p = d + 1;
            continue;
        }
        p = brace ? ne + 1 : ne;
        size_t group = 0;
        bool num = true;
        for (const char *q = nb; q < ne && num; q++) {
            if (*q < '0' || *q > '9') num = false;
            else if (group < 1000000) group = group * 10 + (size_t)(*q - '0');
        }
        if (num && group <= nsub && m[group].rm_so >= 0)
            aput(b, s + m[group].rm_so, (size_t)(m[group].rm_eo - m[group].rm_so));
    }
}

static size_t utf8_width(const char *s) {
    unsigned char c = (unsigned char)s[0];
    if (c >= 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) return 4;
    if (c >= 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) return 3;
    if (c >= 0xC0 && (s[1] & 0xC0) == 0x80) return 2;
    return 1;
}

/* Go ReplaceAllString over one NUL-free, NUL-terminated segment s[0..n). */
static bool replace_segment(const dds__replace_rule *r, const char *s, size_t n, abuf *b, bool *matched) {
    regmatch_t m[10];
    size_t nm = r->nsub + 1 < 10 ? r->nsub + 1 : 10;
    size_t search = 0, last_end = 0;
    while (search <= n) {
        if (regexec(&r->re, s + search, nm, m, search > 0 ? REG_NOTBOL : 0) != 0) break;
        for (size_t k = 0; k < nm; k++)
            if (m[k].rm_so >= 0) {
                m[k].rm_so += (regoff_t)search;
                m[k].rm_eo += (regoff_t)search;
            }
        size_t a0 = (size_t)m[0].rm_so, a1 = (size_t)m[0].rm_eo;
        *matched = true;
        aput(b, s + last_end, a0 - last_end);
        /* No replacement for an empty match right after another match (Go). */
        if (a1 > last_end || a0 == 0) expand(b, r->repl, s, m, nm - 1);
        last_end = a1;
        size_t w = search < n ? utf8_width(s + search) : 0;
        if (search + w > a1) search += w;
        else if (search + 1 > a1) search++;
        else search = a1;
    }
    aput(b, s + last_end, n - last_end);
    return !b->oom;
}

bool dds__replace_apply(const dds__replace_rule *r, dds__slice in, dds__arena *arena, dds__buf *scratch,
                        dds__slice *out) {
    char *s;
    if (scratch) {
        dds__buf_reset(scratch);
        dds__buf_append(scratch, in.ptr ? in.ptr : "", in.len);
        dds__buf_putc(scratch, 0);
        if (scratch->oom) return false;
        s = (char *)scratch->data;
    } else if (!(s = dds__arena_memdup(arena, in.ptr ? in.ptr : "", in.len))) {
        return false;
    }
    /* Most values match no rule: find out first (one regexec per NUL-separated part, usually
     * one), and only then build the result in the arena. */
    bool any = false;
    for (size_t i = 0; !any;) {
        size_t seg = strlen(s + i);
        if (i + seg > in.len) seg = in.len - i;
        any = regexec(&r->re, s + i, 0, NULL, 0) == 0;
        i += seg + 1;
        if (i > in.len) break;
    }
    if (!any) {
        *out = in;
        return true;
    }
    abuf b = {.arena = arena, .cap = in.len + 16};
    if (!(b.p = dds__arena_alloc(arena, b.cap))) return false;
    bool matched = false;
    for (size_t i = 0;;) {
        size_t seg = strlen(s + i);  /* up to the next embedded NUL, or the end */
        if (i + seg > in.len) seg = in.len - i;
        if (!replace_segment(r, s + i, seg, &b, &matched)) return false;
        i += seg;
        if (i >= in.len) break;
        aput(&b, "", 1);  /* the NUL itself */
        i++;
    }
    if (b.oom) return false;
    *out = dds__slice_make(b.p, b.len);
    return true;
}
