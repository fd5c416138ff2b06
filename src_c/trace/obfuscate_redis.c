/* obfuscate_redis.c - redis/valkey/memcached span text. In: a resource or a raw command tag
 * (any bytes). Out: the quantized resource or the command with its data replaced by '?', in
 * the request arena. One pass over the input, no per-argument storage: every rule is decided
 * from the argument's index and what came before it. */
#include "trace/obfuscate_redis.h"

#include <strings.h>
#include <sys/types.h>

#define TRUNCATION_MARK "..."
#define MAX_QUANTIZED_COMMANDS 3

typedef struct outbuf {
    dds__arena *arena;
    char *p;
    size_t len, cap;
    bool oom;
} outbuf;

static void put(outbuf *o, const char *p, size_t n) {
    if (o->oom) return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n + 64;
        char *np = dds__arena_alloc(o->arena, cap);
        if (!np) {
            o->oom = true;
            return;
        }
        if (o->len) memcpy(np, o->p, o->len);
        o->p = np;
        o->cap = cap;
    }
    if (n) memcpy(o->p + o->len, p, n);
    o->len += n;
}
#define PUT_LIT(o, lit) put((o), lit, sizeof(lit) - 1)

static bool out_init(outbuf *o, dds__arena *arena, size_t cap) {
    *o = (outbuf){.arena = arena, .cap = cap + 16};
    o->p = dds__arena_alloc(arena, o->cap);
    return o->p != NULL;
}

static bool out_done(outbuf *o, dds__slice *out) {
    if (o->oom) return false;
    *out = dds__slice_make(o->p, o->len);
    return true;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static bool ieq(dds__slice s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.ptr, lit, n) == 0;
}

static bool ends_with_mark(dds__slice s) {
    return s.len >= 3 && memcmp(s.ptr + s.len - 3, TRUNCATION_MARK, 3) == 0;
}

static void put_upper(outbuf *o, dds__slice s) {
    size_t at = o->len;
    put(o, s.ptr, s.len);
    if (o->oom) return;
    for (size_t i = at; i < o->len; i++)
        if (o->p[i] >= 'a' && o->p[i] <= 'z') o->p[i] = (char)(o->p[i] - 'a' + 'A');
}

/* The next whitespace-separated field of [*i, end), or an empty slice. */
static dds__slice field(const char *s, size_t *i, size_t end) {
    while (*i < end && is_ws(s[*i])) (*i)++;
    size_t b = *i;
    while (*i < end && !is_ws(s[*i])) (*i)++;
    return dds__slice_make(s + b, *i - b);
}

/* ---- quantize ------------------------------------------------------------------------------ */

bool dds__redis_quantize(dds__slice in, dds__arena *arena, dds__slice *out) {
    outbuf o;
    if (!out_init(&o, arena, in.len)) return false;
    size_t ncmds = 0, i = 0;
    bool truncated = false;
    while (i < in.len && ncmds < MAX_QUANTIZED_COMMANDS) {
        const char *nl = memchr(in.ptr + i, '\n', in.len - i);
        size_t end = nl ? (size_t)(nl - in.ptr) : in.len;
        size_t j = i;
        i = nl ? end + 1 : in.len;
        dds__slice cmd = field(in.ptr, &j, end);
        if (cmd.len == 0) continue;
        if (ends_with_mark(cmd)) {
            truncated = true;
            continue;
        }
        dds__slice sub = {0};
        if (ieq(cmd, "CLIENT") || ieq(cmd, "CLUSTER") || ieq(cmd, "COMMAND") || ieq(cmd, "CONFIG") ||
            ieq(cmd, "DEBUG") || ieq(cmd, "SCRIPT")) {
            sub = field(in.ptr, &j, end);
            if (ends_with_mark(sub)) {
                truncated = true;
                continue;
            }
        }
        if (ncmds > 0) PUT_LIT(&o, " ");
        put_upper(&o, cmd);
        if (sub.len) {
            PUT_LIT(&o, " ");
            put_upper(&o, sub);
        }
        ncmds++;
        truncated = false;
    }
    if (ncmds == MAX_QUANTIZED_COMMANDS || truncated) {
        if (ncmds > 0) PUT_LIT(&o, " ");
        PUT_LIT(&o, TRUNCATION_MARK);
    }
    return out_done(&o, out);
}

/* ---- obfuscate ----------------------------------------------------------------------------- */

/* Go's redisTokenizer over offsets. Its tokens are always contiguous runs of the input (quotes
 * and backslashes are kept), so a token is a slice: [tb, te). */
typedef struct rtok {
    const char *d;
    ssize_t n, off;
    char ch;
    bool done, arg_state;
    ssize_t tb, te;
} rtok;

static void rnext(rtok *t) {
    t->off++;
    if (t->off <= t->n - 1) t->ch = t->d[t->off];
    else t->done = true;
}

static void runread(rtok *t) {
    if (t->off < 1) return;
    t->off--;
    t->ch = t->d[t->off];
}

static void rkeep(rtok *t) {
    if (t->tb < 0) t->tb = t->off;
    t->te = t->off + 1;
}

static void rskip_space(rtok *t) {
    while (!t->done && (t->ch == ' ' || t->ch == '\t' || t->ch == '\r')) rnext(t);
    if (t->ch == '\n') t->arg_state = false;
    else runread(t);
}

/* One token: true when it is a command (false: an argument); *last when it was the last one. */
static bool rscan(rtok *t, bool *last) {
    t->tb = t->te = -1;
    if (!t->arg_state) {
        bool started = false;
        for (;;) {
            rnext(t);
            if (t->done) break;
            if (t->ch == ' ') {
                if (!started) {
                    rskip_space(t);
                    started = true;
                    continue;
                }
                t->arg_state = true;
                rskip_space(t);
                break;
            }
            if (t->ch == '\n') break;
            rkeep(t);
            started = true;
        }
        *last = t->done;
        return true;
    }
    bool quoted = false, escape = false;
    for (;;) {
        rnext(t);
        if (t->done) break;
        char c = t->ch;
        if (c == '\\') {
            rkeep(t);
            if (!escape) {
                escape = true;
                continue;
            }
        } else if (c == '\n') {
            if (!quoted) {
                t->arg_state = false;
                break;
            }
            rkeep(t);
        } else if (c == '"') {
            rkeep(t);
            if (!escape) quoted = !quoted;
        } else if (c == ' ') {
            if (!quoted) {
                rskip_space(t);
                break;
            }
            rkeep(t);
        } else {
            rkeep(t);
        }
        escape = false;
    }
    *last = t->done;
    return false;
}

typedef enum {
    RULE_NONE,
    RULE_ALL,         /* AUTH, MIGRATE, HELLO: every argument, as one '?' */
    RULE_AFTER_FIRST, /* ACL, GEOHASH, ...: the arguments after the first, as one '?' */
    RULE_NTH,         /* the n-th argument */
    RULE_STEP,        /* every step-th argument from start */
    RULE_CONFIG,      /* CONFIG SET parameter value */
    RULE_BITFIELD,    /* the value of SET type offset value */
    RULE_ZADD,        /* the members after the flags */
} rule_kind;

typedef struct rule {
    rule_kind kind;
    int n, start, step;
} rule;

static rule rule_for(dds__slice cmd) {
    static const char *const all[] = {"AUTH", "MIGRATE", "HELLO"};
    static const char *const after_first[] = {"ACL", "GEOHASH", "GEOPOS", "GEODIST", "LPUSH", "RPUSH", "SREM", "ZREM", "SADD"};
    static const char *const second[] = {"APPEND", "GETSET", "LPUSHX", "GEORADIUSBYMEMBER", "RPUSHX", "SET",
                                         "SETNX", "SISMEMBER", "ZRANK", "ZREVRANK", "ZSCORE"};
    static const char *const third[] = {"HSETNX", "LREM", "LSET", "SETBIT", "SETEX", "PSETEX", "SETRANGE",
                                        "ZINCRBY", "SMOVE", "RESTORE"};
#define IN(list) for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) if (ieq(cmd, list[i]))
    IN(all) return (rule){.kind = RULE_ALL};
    IN(after_first) return (rule){.kind = RULE_AFTER_FIRST};
    IN(second) return (rule){.kind = RULE_NTH, .n = 1};
    IN(third) return (rule){.kind = RULE_NTH, .n = 2};
#undef IN
    if (ieq(cmd, "LINSERT")) return (rule){.kind = RULE_NTH, .n = 3};
    if (ieq(cmd, "GEOADD")) return (rule){.kind = RULE_STEP, .start = 1, .step = 3};
    if (ieq(cmd, "HMSET") || ieq(cmd, "HSET")) return (rule){.kind = RULE_STEP, .start = 1, .step = 2};
    if (ieq(cmd, "MSET") || ieq(cmd, "MSETNX")) return (rule){.kind = RULE_STEP, .start = 0, .step = 2};
    if (ieq(cmd, "CONFIG")) return (rule){.kind = RULE_CONFIG};
    if (ieq(cmd, "BITFIELD")) return (rule){.kind = RULE_BITFIELD};
    if (ieq(cmd, "ZADD")) return (rule){.kind = RULE_ZADD};
    return (rule){.kind = RULE_NONE};
}

/* Per-command state of the streaming rules. */
typedef struct cmd_state {
    rule r;
    int i;            /* index of the next argument */
    bool config_set;  /* CONFIG: the first argument was SET */
    int bitfield_set; /* BITFIELD: index of the last SET (0 = none yet) */
    bool bitfield_done;
    int zadd_first;   /* ZADD: index of the first score, -1 until found */
} cmd_state;

/* What argument i becomes: itself, '?' or nothing (dropped, with its separator). */
typedef enum { ARG_KEEP, ARG_MASK, ARG_DROP } arg_fate;

static arg_fate fate(cmd_state *c, dds__slice arg) {
    int i = c->i++;
    switch (c->r.kind) {
    case RULE_ALL:
        return i == 0 ? ARG_MASK : ARG_DROP;
    case RULE_AFTER_FIRST:
        return i == 0 ? ARG_KEEP : i == 1 ? ARG_MASK : ARG_DROP;
    case RULE_NTH:
        return i == c->r.n ? ARG_MASK : ARG_KEEP;
    case RULE_STEP: {
        int first = c->r.start + c->r.step - 1;
        return i >= first && (i - first) % c->r.step == 0 ? ARG_MASK : ARG_KEEP;
    }
    case RULE_CONFIG:
        if (i == 0) c->config_set = ieq(arg, "SET");
        return c->config_set && i == 2 ? ARG_MASK : ARG_KEEP;
    case RULE_BITFIELD:
        if (c->bitfield_done) return ARG_KEEP;
        if (ieq(arg, "SET")) c->bitfield_set = i;
        if (c->bitfield_set > 0 && i - c->bitfield_set == 3) {
            c->bitfield_done = true;
            return ARG_MASK;
        }
        return ARG_KEEP;
    case RULE_ZADD:
        if (i == 0) return ARG_KEEP;
        if (c->zadd_first < 0) {
            if (!(ieq(arg, "NX") || ieq(arg, "XX") || ieq(arg, "CH") || ieq(arg, "INCR"))) c->zadd_first = i;
            return ARG_KEEP;
        }
        return (i - c->zadd_first - 1) % 2 == 0 ? ARG_MASK : ARG_KEEP;
    default:
        return ARG_KEEP;
    }
}

bool dds__redis_obfuscate(dds__slice in, dds__arena *arena, dds__slice *out) {
    /* Go trims the command first (bytes.TrimSpace). */
    size_t b = 0, e = in.len;
    while (b < e && is_ws(in.ptr[b])) b++;
    while (e > b && is_ws(in.ptr[e - 1])) e--;
    outbuf o;
    if (!out_init(&o, arena, in.len)) return false;
    rtok t = {.d = in.ptr + b, .n = (ssize_t)(e - b), .off = -1};
    bool have_cmd = false, last = false;
    cmd_state c = {0};
    do {
        bool is_cmd = rscan(&t, &last);
        dds__slice tok = t.tb < 0 ? dds__slice_make(t.d, 0) : dds__slice_make(t.d + t.tb, (size_t)(t.te - t.tb));
        if (is_cmd) {
            if (have_cmd) PUT_LIT(&o, "\n");
            put(&o, tok.ptr, tok.len);
            have_cmd = tok.len > 0;
            c = (cmd_state){.r = rule_for(tok), .zadd_first = -1};
            continue;
        }
        switch (fate(&c, tok)) {
        case ARG_KEEP:
            PUT_LIT(&o, " ");
            put(&o, tok.ptr, tok.len);
            break;
        case ARG_MASK:
            PUT_LIT(&o, " ?");
            break;
        case ARG_DROP:
            break;
        }
    } while (!last);
    return out_done(&o, out);
}

bool dds__redis_remove_all_args(dds__slice in, dds__arena *arena, dds__slice *out) {
    outbuf o;
    if (!out_init(&o, arena, in.len)) return false;
    size_t i = 0;
    dds__slice cmd = field(in.ptr, &i, in.len);
    put(&o, cmd.ptr, cmd.len);
    dds__slice arg = field(in.ptr, &i, in.len);
    if (cmd.len == 0 || arg.len == 0) return out_done(&o, out);
    PUT_LIT(&o, " ");
    if (ieq(cmd, "BITFIELD")) {
        PUT_LIT(&o, "?");
        for (; arg.len; arg = field(in.ptr, &i, in.len)) {
            if (ieq(arg, "SET") || ieq(arg, "GET") || ieq(arg, "INCRBY")) {
                PUT_LIT(&o, " ");
                put(&o, arg.ptr, arg.len);
                PUT_LIT(&o, " ?");
            }
        }
    } else if (ieq(cmd, "CONFIG") &&
               (ieq(arg, "GET") || ieq(arg, "SET") || ieq(arg, "RESETSTAT") || ieq(arg, "REWRITE"))) {
        put(&o, arg.ptr, arg.len);
        PUT_LIT(&o, " ?");
    } else {
        PUT_LIT(&o, "?");
    }
    return out_done(&o, out);
}

dds__slice dds__memcached_command(dds__slice in) {
    size_t end = in.len;
    for (size_t i = 0; i + 1 < in.len; i++)
        if (in.ptr[i] == '\r' && in.ptr[i + 1] == '\n') {
            end = i;
            break;
        }
    size_t b = 0;
    while (b < end && is_ws(in.ptr[b])) b++;
    while (end > b && is_ws(in.ptr[end - 1])) end--;
    return dds__slice_make(in.ptr + b, end - b);
}
