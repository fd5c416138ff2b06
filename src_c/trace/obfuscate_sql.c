/* obfuscate_sql.c - SQL resource obfuscation. In: a span resource (any bytes) and a dialect.
 * Out: the query with literals replaced by '?', comments and aliases removed, tokens re-joined
 * with single spaces, in the request arena. Reproduces the Go Agent's legacy tokenizer
 * (pkg/obfuscate/sql_tokenizer.go) and its filters token for token, quirks included, so that
 * resources group as they do behind the Agent. Never reads past the input, never recurses, and
 * runs in linear time. */
#include "trace/obfuscate_sql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"

/* Token kinds: an ASCII punctuation token is its own byte value (as Go's TokenKind(ch)); the
 * others sit above the Unicode range. */
enum {
    T_NONE = 0,
    T_END = 0x110000,  /* Go EndChar; also lastChar at the end of the input */
    T_LEXERR,
    T_ID,
    T_LIMIT,
    T_NULL,
    T_STRING,
    T_DQSTRING,
    T_DOLLARSTR,
    T_NUMBER,
    T_BOOL,
    T_VALUEARG,
    T_LISTARG,
    T_COMMENT,
    T_VARIABLE,
    T_SAVEPOINT,
    T_PREPARED,
    T_ESCAPESEQ,
    T_NULLSAFEEQ,
    T_LE,
    T_GE,
    T_NE,
    T_NOT,
    T_AS,
    T_ALTER,
    T_DROP,
    T_CREATE,
    T_GRANT,
    T_REVOKE,
    T_COMMIT,
    T_BEGIN,
    T_TRUNCATE,
    T_SELECT,
    T_FROM,
    T_UPDATE,
    T_DELETE,
    T_INSERT,
    T_INTO,
    T_JOIN,
    T_COLONCAST,
    T_JSON_SELECT,
    T_JSON_SELECT_TEXT,
    T_JSON_SELECT_PATH,
    T_JSON_SELECT_PATH_TEXT,
    T_JSON_CONTAINS,
    T_JSON_CONTAINS_LEFT,
    T_JSON_KEY_EXISTS,
    T_JSON_ANY_KEYS_EXIST,
    T_JSON_ALL_KEYS_EXIST,
    T_JSON_DELETE,
    T_FG,        /* FilteredGroupable */
    T_FGP,       /* FilteredGroupableParenthesis */
    T_FILTERED,
    T_FBI,       /* FilteredBracketedIdentifier */
};

#define CH_END ((int32_t)T_END)

/* ---- characters ------------------------------------------------------------------------ */

/* Go unicode.IsSpace. */
static bool is_space(int32_t c) {
    switch (c) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ': case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

/* An approximation of Go's unicode.IsLetter outside ASCII: every code point is a letter except
 * the punctuation, symbol, digit, mark and space blocks listed here. A non-letter Go rejects
 * (the whole query then becomes "Non-parsable SQL query") may be part of an identifier here;
 * literals are recognised by their delimiters, so nothing more is kept than Go keeps. */
static bool is_unicode_letter(int32_t c) {
    static const struct { int32_t lo, hi; } not_letters[] = {
        {0x80, 0xA9},     {0xAB, 0xB4},     {0xB6, 0xB9},     {0xBB, 0xBF},     {0xD7, 0xD7},
        {0xF7, 0xF7},     {0x2C2, 0x2C5},   {0x2D2, 0x2DF},   {0x300, 0x36F},   {0x660, 0x669},
        {0x6F0, 0x6F9},   {0x2000, 0x206F}, {0x20A0, 0x20FF}, {0x2190, 0x2BFF}, {0x3000, 0x3004},
        {0x3008, 0x3020}, {0xD800, 0xF8FF}, {0xFE00, 0xFE0F}, {0xFE30, 0xFE4F}, {0xFF01, 0xFF20},
        {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0xFFF0, 0xFFFF}, {0x1F000, 0x1FAFF},
    };
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    if (c >= CH_END) return false;
    for (size_t i = 0; i < sizeof(not_letters) / sizeof(not_letters[0]); i++)
        if (c >= not_letters[i].lo && c <= not_letters[i].hi) return false;
    return true;
}

static bool is_leading_letter(int32_t c) { return is_unicode_letter(c) || c == '_' || c == '@'; }
static bool is_letter(int32_t c) { return is_leading_letter(c) || c == '#'; }
static bool is_digit(int32_t c) { return c >= '0' && c <= '9'; }

static int digit_val(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
}

static bool valid_after_operator(int32_t c) {
    return c == '(' || c == '`' || c == '\'' || c == '"' || c == '+' || c == '-' || is_space(c) || is_letter(c) ||
           is_digit(c);
}

/* Go utf8.DecodeRune on p[0..n), n >= 1: the width, or 0 for an ill-formed sequence. */
static size_t utf8_decode(const uint8_t *p, size_t n, int32_t *cp) {
    uint32_t v;
    size_t w = dds__utf8_decode(p, n, &v);
    if (w) *cp = (int32_t)v;
    return w;
}

static size_t utf8_encode(uint8_t *p, int32_t cp) { return dds__utf8_encode(p, (uint32_t)cp); }

/* ---- tokenizer --------------------------------------------------------------------------- */

/* Go's SQLTokenizer over offsets: ch is lastChar, the code point at cur; off is just past it
 * (cur == off at the end). start is where the bytes of the token being scanned begin. */
typedef struct tok {
    const uint8_t *s;
    size_t n, start, cur, off;
    size_t pos;              /* Go's pos, kept only for its "'{' is the first byte" test */
    int32_t ch;
    uint32_t curlys;         /* open '{' of a top-level escape sequence ({call ...}) */
    bool err;                /* invalid UTF-8 met (Go's sticky tkn.err) */
    bool literal_escapes;    /* backslashes in strings are plain characters */
    bool seen_escape;
    dds__sql_dbms dbms;
    uint8_t *scratch;        /* unescaped contents of the current quoted token (<= n bytes) */
    const uint8_t *tb;       /* bytes of the token just scanned */
    size_t tn;
} tok;

static void advance(tok *t) {
    if (t->off >= t->n) {
        t->pos++;
        t->cur = t->off;
        t->ch = CH_END;
        return;
    }
    int32_t c;
    size_t w;
    if (t->s[t->off] < 0x80) {  /* the common case: no decoding */
        c = t->s[t->off];
        w = 1;
    } else {
        w = utf8_decode(t->s + t->off, t->n - t->off, &c);
    }
    if (w == 0) {
        t->pos++;
        t->cur = t->off;
        t->ch = CH_END;
        t->err = true;
        return;
    }
    if (t->ch != 0 || t->pos > 0) t->pos += w;
    t->cur = t->off;
    t->off += w;
    t->ch = c;
}

/* Go bytes(): everything advanced over since the last call, lastChar excluded. */
static void take(tok *t) {
    size_t end = t->ch == CH_END ? t->off : t->cur;
    t->tb = t->s + t->start;
    t->tn = end - t->start;
    t->start = end;
}

static uint32_t token(tok *t, uint32_t kind) {
    take(t);
    return kind;
}

static uint32_t token_lit(tok *t, uint32_t kind, const char *lit) {
    take(t);
    t->tb = (const uint8_t *)lit;
    t->tn = strlen(lit);
    return kind;
}

/* Go's keywords map, looked up by length and first letter before comparing. */
static uint32_t keyword(const uint8_t *p, size_t n) {
    static const struct { const char *kw; uint8_t len; uint32_t kind; } kws[] = {
        {"NULL", 4, T_NULL},     {"TRUE", 4, T_BOOL},       {"FALSE", 5, T_BOOL},     {"SAVEPOINT", 9, T_SAVEPOINT},
        {"LIMIT", 5, T_LIMIT},   {"AS", 2, T_AS},           {"ALTER", 5, T_ALTER},    {"CREATE", 6, T_CREATE},
        {"GRANT", 5, T_GRANT},   {"REVOKE", 6, T_REVOKE},   {"COMMIT", 6, T_COMMIT},  {"BEGIN", 5, T_BEGIN},
        {"TRUNCATE", 8, T_TRUNCATE}, {"DROP", 4, T_DROP},   {"SELECT", 6, T_SELECT},  {"FROM", 4, T_FROM},
        {"UPDATE", 6, T_UPDATE}, {"DELETE", 6, T_DELETE},   {"INSERT", 6, T_INSERT},  {"INTO", 4, T_INTO},
        {"JOIN", 4, T_JOIN},
    };
    if (n < 2 || n > 9) return T_ID;
    uint8_t first = (uint8_t)(p[0] & ~0x20);
    for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
        if (kws[i].len == n && (uint8_t)kws[i].kw[0] == first && strncasecmp((const char *)p, kws[i].kw, n) == 0)
            return kws[i].kind;
    return T_ID;
}

/* Go scanIdentifier: letters, digits and ". * $" after the first character (the Agent's suite
 * keeps "some$dollar$filled_thing$$" whole). */
static uint32_t scan_identifier(tok *t) {
    advance(t);
    while (is_letter(t->ch) || is_digit(t->ch) || t->ch == '.' || t->ch == '*' || t->ch == '$') advance(t);
    take(t);
    return keyword(t->tb, t->tn);
}

static void scan_mantissa(tok *t, int base) {
    while (digit_val(t->ch) < base) advance(t);
}

/* Go scanNumber, except that a decimal digit after a leading 0 ("09") is a number rather than
 * Go's unreported error: the Rust obfuscator and the Agent's own tests make it '?'. */
static uint32_t scan_number(tok *t, bool seen_decimal_point) {
    if (seen_decimal_point) {
        scan_mantissa(t, 10);
        goto exponent;
    }
    if (t->ch == '0') {
        advance(t);
        if (t->ch == 'x' || t->ch == 'X') {
            advance(t);
            scan_mantissa(t, 16);
        } else {
            scan_mantissa(t, 8);
            if (t->ch == '8' || t->ch == '9') scan_mantissa(t, 10);
            if (t->ch == '.' || t->ch == 'e' || t->ch == 'E') goto fraction;
        }
        goto done;
    }
    scan_mantissa(t, 10);
fraction:
    if (t->ch == '.') {
        advance(t);
        scan_mantissa(t, 10);
    }
exponent:
    if (t->ch == 'e' || t->ch == 'E') {
        advance(t);
        if (t->ch == '+' || t->ch == '-') advance(t);
        scan_mantissa(t, 10);
    }
done:
    take(t);
    return t->tn == 0 ? T_LEXERR : T_NUMBER;
}

static bool all_space(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t c;
        size_t w = utf8_decode(p + i, n - i, &c);
        if (w == 0) return false;
        if (!is_space(c)) return false;
        i += w;
    }
    return true;
}

/* Go scanString: the contents between delimiters, a doubled delimiter and (unless
 * literal_escapes) a backslash escaping the next character; written to dst (at most the input
 * length). An empty or blank identifier or string keeps its two delimiters. */
static uint32_t scan_string(tok *t, int32_t delim, uint32_t kind, uint8_t *dst) {
    size_t n = 0;
    for (;;) {
        int32_t c = t->ch;
        advance(t);
        if (c == delim) {
            if (t->ch == delim) advance(t);
            else break;
        } else if (c == '\\') {
            t->seen_escape = true;
            if (!t->literal_escapes) {
                c = t->ch;
                advance(t);
            }
        }
        if (c == CH_END) {
            take(t);
            return T_LEXERR;
        }
        n += utf8_encode(dst + n, c);
    }
    take(t);
    if ((kind == T_ID && n == 0) || all_space(dst, n)) {
        dst[0] = dst[1] = (uint8_t)delim;  /* delimiters are ASCII ('$' included) */
        n = 2;
    }
    t->tb = dst;
    t->tn = n;
    return kind;
}

/* Go scanDollarQuotedString: $tag$ ... $tag$ (or $$ ... $$), matched byte by byte with Go's
 * restart-without-recheck; the contents are not kept (they become '?'). */
static uint32_t scan_dollar_quoted(tok *t) {
    uint8_t *delim = t->scratch;
    if (scan_string(t, '$', T_STRING, delim + 1) == T_LEXERR) return T_LEXERR;
    size_t dn;
    if (t->tn == 2 && delim[1] == '$' && delim[2] == '$') {
        delim[0] = '$';
        dn = 2;
    } else {
        delim[0] = '$';
        delim[t->tn + 1] = '$';
        dn = t->tn + 2;
    }
    size_t got = 0;
    for (;;) {
        int32_t c = t->ch;
        advance(t);
        if (c == CH_END) {
            take(t);
            return T_LEXERR;
        }
        if ((uint8_t)(c & 0xFF) == delim[got]) {
            if (++got == dn) break;
            continue;
        }
        got = 0;
    }
    take(t);
    return T_DOLLARSTR;
}

/* An MSSQL [bracketed identifier]: its contents as an identifier ("]]" is one ']'). */
static uint32_t scan_bracketed(tok *t) {
    size_t n = 0;
    for (;;) {
        int32_t c = t->ch;
        advance(t);
        if (c == CH_END) return token(t, T_LEXERR);
        if (c == ']') {
            if (t->ch != ']') break;
            advance(t);
        }
        n += utf8_encode(t->scratch + n, c);
    }
    take(t);
    if (n == 0) {
        t->scratch[0] = '[';
        t->scratch[1] = ']';
        n = 2;
    }
    t->tb = t->scratch;
    t->tn = n;
    return T_ID;
}

static uint32_t scan_escape_sequence(tok *t) {
    while (t->ch != '}' && t->ch != CH_END) advance(t);
    if (t->ch == CH_END) return token(t, T_LEXERR);
    advance(t);
    return token(t, T_ESCAPESEQ);
}

static uint32_t scan_bind_var(tok *t) {
    uint32_t kind = T_VALUEARG;
    if (t->ch == ':') {
        kind = T_LISTARG;
        advance(t);
    }
    if (!is_letter(t->ch) && !is_digit(t->ch)) return token(t, T_LEXERR);
    while (is_letter(t->ch) || is_digit(t->ch) || t->ch == '.') advance(t);
    return token(t, kind);
}

static uint32_t scan_variable_identifier(tok *t) {
    for (advance(t); t->ch != ')' && t->ch != CH_END; advance(t)) {
    }
    advance(t);
    if (!is_letter(t->ch)) return token(t, T_LEXERR);
    advance(t);
    return token(t, T_VARIABLE);
}

static uint32_t scan_comment_line(tok *t) {
    while (t->ch != CH_END) {
        if (t->ch == '\n') {
            advance(t);
            break;
        }
        advance(t);
    }
    return token(t, T_COMMENT);
}

static uint32_t scan_comment_block(tok *t) {
    for (;;) {
        if (t->ch == '*') {
            advance(t);
            if (t->ch == '/') {
                advance(t);
                break;
            }
            continue;
        }
        if (t->ch == CH_END) return token(t, T_LEXERR);
        advance(t);
    }
    return token(t, T_COMMENT);
}

static uint32_t scan(tok *t) {
    if (t->ch == 0) advance(t);
    while (is_space(t->ch)) advance(t);
    take(t);
    int32_t c = t->ch;
    bool pg = t->dbms == DDS__SQL_POSTGRESQL;
    if ((c == 'x' || c == 'X') && t->off < t->n && t->s[t->off] == '\'') {
        /* A hex literal X'ff' is one '?' (as in the Rust obfuscator); Go's tokenizer keeps
         * the X as an identifier before the string ("X ?"). */
        advance(t);
        advance(t);
        return scan_string(t, '\'', T_STRING, t->scratch);
    }
    if (is_leading_letter(c) && !(pg && c == '@')) return scan_identifier(t);
    if (is_digit(c)) return scan_number(t, false);
    advance(t);
    if (t->ch == CH_END && t->err) return T_LEXERR;
    switch (c) {
    case CH_END:
        return t->err ? T_LEXERR : T_END;
    case ':':
        if (t->ch == ':') {
            advance(t);
            return token_lit(t, T_COLONCAST, "::");
        }
        if (is_space(t->ch)) return token(t, ':');
        if (t->ch != '=') return scan_bind_var(t);
        return token(t, ':');
    case '~':
        if (t->ch == '*') {
            advance(t);
            return token_lit(t, '~', "~*");
        }
        return token(t, '~');
    case '?':
        if (pg) {
            if (t->ch == '|') {
                advance(t);
                return token_lit(t, T_JSON_ANY_KEYS_EXIST, "?|");
            }
            if (t->ch == '&') {
                advance(t);
                return token_lit(t, T_JSON_ALL_KEYS_EXIST, "?&");
            }
            return token(t, T_JSON_KEY_EXISTS);
        }
        return token(t, '?');
    case '[':
        if (t->dbms == DDS__SQL_MSSQL) return scan_bracketed(t);
        return token(t, '[');
    case '=': case ',': case ';': case '(': case ')': case '+': case '*': case '&': case '|': case '^': case ']':
        return token(t, (uint32_t)c);
    case '.':
        if (is_digit(t->ch)) return scan_number(t, true);
        return token(t, '.');
    case '/':
        if (t->ch == '/') {
            advance(t);
            return scan_comment_line(t);
        }
        if (t->ch == '*') {
            advance(t);
            return scan_comment_block(t);
        }
        return token(t, '/');
    case '-':
        if (t->ch == '-') {
            advance(t);
            return scan_comment_line(t);
        }
        if (t->ch == '>' && pg) {
            advance(t);
            if (t->ch == '>') {
                advance(t);
                return token_lit(t, T_JSON_SELECT_TEXT, "->>");
            }
            return token_lit(t, T_JSON_SELECT, "->");
        }
        if (t->ch == '>' || is_digit(t->ch)) return scan_number(t, false);  /* "->" outside postgres: Go's "-" number */
        if (t->ch == '.') {
            advance(t);
            if (is_digit(t->ch)) return scan_number(t, true);
            /* Go resets lastChar to '.' without moving back: the token ends one byte before
             * the character after the dot, which then starts the next token. */
            t->ch = '.';
            t->cur = t->off - 1;
            t->pos--;
        }
        return token(t, '-');
    case '#':
        if (t->dbms == DDS__SQL_MSSQL) return scan_identifier(t);
        if (pg) {
            if (t->ch == '>') {
                advance(t);
                if (t->ch == '>') {
                    advance(t);
                    return token_lit(t, T_JSON_SELECT_PATH_TEXT, "#>>");
                }
                return token_lit(t, T_JSON_SELECT_PATH, "#>");
            }
            if (t->ch == '-') {
                advance(t);
                return token_lit(t, T_JSON_DELETE, "#-");
            }
            return token(t, '#');
        }
        advance(t);
        return scan_comment_line(t);
    case '<':
        if (t->ch == '>') {
            advance(t);
            return token_lit(t, T_NE, "<>");
        }
        if (t->ch == '=') {
            advance(t);
            if (t->ch == '>') {
                advance(t);
                return token_lit(t, T_NULLSAFEEQ, "<=>");
            }
            return token_lit(t, T_LE, "<=");
        }
        if (t->ch == '@' && pg) {
            advance(t);
            return token_lit(t, T_JSON_CONTAINS_LEFT, "<@");
        }
        return token(t, '<');
    case '>':
        if (t->ch == '=') {
            advance(t);
            return token_lit(t, T_GE, ">=");
        }
        return token(t, '>');
    case '!':
        if (t->ch == '=') {
            advance(t);
            return token_lit(t, T_NE, "!=");
        }
        if (t->ch == '~') {
            advance(t);
            if (t->ch == '*') {
                advance(t);
                return token_lit(t, T_NE, "!~*");
            }
            return token_lit(t, T_NE, "!~");
        }
        if (valid_after_operator(t->ch)) return token(t, T_NOT);
        return token(t, T_LEXERR);
    case '\'':
        return scan_string(t, '\'', T_STRING, t->scratch);
    case '"':
        return scan_string(t, '"', T_DQSTRING, t->scratch);
    case '`':
        return scan_string(t, '`', T_ID, t->scratch);
    case '%':
        if (t->ch == '(') return scan_variable_identifier(t);
        if (is_letter(t->ch)) {
            advance(t);
            return token(t, T_VARIABLE);
        }
        return token(t, '%');
    case '$':
        if (t->dbms == DDS__SQL_MSSQL && is_letter(t->ch)) return scan_identifier(t);  /* OUTPUT $action */
        if (is_digit(t->ch)) {
            uint32_t k = scan_number(t, false);
            return k == T_LEXERR ? T_LEXERR : T_PREPARED;
        }
        if (t->ch == '?') {  /* "$?" placeholders (the suite's sql_quantizer_0) */
            advance(t);
            return token(t, T_PREPARED);
        }
        return scan_dollar_quoted(t);
    case '@':
        /* Only reached for postgres: elsewhere '@' starts an identifier. */
        if (t->ch == '>') {
            advance(t);
            return token_lit(t, T_JSON_CONTAINS, "@>");
        }
        return token(t, '@');
    case '{':
        if (t->pos == 1 || t->curlys > 0) {
            /* A top-level escape sequence ({call proc(...)}) keeps its context. */
            t->curlys++;
            return token(t, '{');
        }
        return scan_escape_sequence(t);
    case '}':
        if (t->curlys == 0) return token(t, T_LEXERR);
        t->curlys--;
        return token(t, '}');
    default:
        return token(t, T_LEXERR);
    }
}

/* ---- filters and output ------------------------------------------------------------------ */

typedef struct outbuf {
    dds__arena *arena;
    uint8_t *p;
    size_t len, cap;
} outbuf;

static bool out_put(outbuf *o, const uint8_t *p, size_t n) {
    if (o->len + n > o->cap) {
        size_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n + 64;
        uint8_t *np = dds__arena_alloc(o->arena, cap);
        if (!np) return false;
        if (o->len) memcpy(np, o->p, o->len);
        o->p = np;
        o->cap = cap;
    }
    if (n) memcpy(o->p + o->len, p, n);
    o->len += n;
    return true;
}

static bool is_fg(uint32_t k) { return k == T_FG || k == T_FGP; }
static uint32_t mark_fg(uint32_t k) { return k == '(' ? T_FGP : T_FG; }

typedef enum { ATTEMPT_OK, ATTEMPT_FAIL, ATTEMPT_OOM } attempt_result;

/* Go attemptObfuscation: scan, then discardFilter, replaceFilter and groupingFilter (KeepSQLAlias,
 * ReplaceDigits and DollarQuotedFunc off, as in both agents' defaults), then join. */
static attempt_result attempt(tok *t, outbuf *o) {
    uint32_t last = T_NONE;
    int group_filter = 0, group_multi = 0;
    static const uint8_t QMARK[] = "?";
    for (;;) {
        uint32_t k = scan(t);
        if (k == T_END) break;
        if (k == T_LEXERR) return ATTEMPT_FAIL;
        const uint8_t *b = t->tb;
        size_t bn = t->tn;
        bool has = true;

        /* discardFilter */
        bool after_as = last == T_AS;
        if (last == T_FBI) {
            if (k != ']') {
                if (k != T_ID) return ATTEMPT_FAIL;  /* Go: "expected identifier in bracketed filter" */
                k = T_FBI;
                has = false;
                goto replace;
            }
            after_as = true;
        }
        if (after_as) {
            k = k == '[' ? T_FBI : T_FILTERED;
            has = false;
        } else if (k == T_COMMENT) {
            k = T_FILTERED;
            has = false;
        } else if (k == ';') {
            k = T_FG;
            has = false;
        } else if (k == T_AS) {
            has = false;
        }
    replace:
        /* replaceFilter */
        if (last == T_SAVEPOINT || (last == '=' && k == T_DQSTRING) || k == T_DOLLARSTR || k == T_STRING ||
            k == T_NUMBER || k == T_NULL || k == T_VARIABLE || k == T_PREPARED || k == T_BOOL || k == T_ESCAPESEQ ||
            k == '?') {
            k = mark_fg(k);
            b = QMARK;
            bn = 1;
            has = true;
        }

        /* groupingFilter */
        bool prefix_paren = false;
        if ((last == '(' && is_fg(k)) || (k == '(' && group_multi > 0)) group_multi++;
        bool subquery_start = k == T_SELECT || k == T_DELETE || k == T_UPDATE || k == T_ID;
        if (group_multi > 0 && last == T_FGP && subquery_start) {
            /* A value group that turns out to be a nested query: cancel the grouping and put
             * back the '(' it swallowed. */
            group_filter = group_multi = 0;
            prefix_paren = true;
        } else if (is_fg(k)) {
            if (++group_filter > 1) {
                k = mark_fg(k);
                has = false;
            }
        } else if (group_filter > 0 && (k == ',' || k == '?')) {
            k = mark_fg(k);
            has = false;
        } else if (group_multi > 1) {
            k = mark_fg(k);
            has = false;
        } else if (k != ',' && k != '(' && k != ')') {
            group_filter = group_multi = 0;
        }

        if (has) {
            bool space = o->len != 0 && k != ',' && !(k == '=' && last == ':');
            if ((space && !out_put(o, (const uint8_t *)" ", 1)) ||
                (prefix_paren && !out_put(o, (const uint8_t *)"( ", 2)) || !out_put(o, b, bn))
                return ATTEMPT_OOM;
        }
        last = k;
    }
    return o->len == 0 ? ATTEMPT_FAIL : ATTEMPT_OK;
}

dds__sql_dbms dds__sql_dbms_from(dds__slice v) {
    if (v.len == 5 && strncasecmp(v.ptr, "mssql", 5) == 0) return DDS__SQL_MSSQL;
    if (v.len == 5 && strncasecmp(v.ptr, "mysql", 5) == 0) return DDS__SQL_MYSQL;
    if (v.len == 10 && strncasecmp(v.ptr, "postgresql", 10) == 0) return DDS__SQL_POSTGRESQL;
    if (v.len == 6 && strncasecmp(v.ptr, "oracle", 6) == 0) return DDS__SQL_ORACLE;
    return DDS__SQL_GENERIC;
}

static attempt_result run(dds__slice in, dds__sql_dbms dbms, bool literal_escapes, uint8_t *scratch, outbuf *o,
                          bool *seen_escape) {
    tok t = {
        .s = (const uint8_t *)in.ptr,
        .n = in.len,
        .literal_escapes = literal_escapes,
        .dbms = dbms,
        .scratch = scratch,
    };
    o->len = 0;
    attempt_result r = attempt(&t, o);
    *seen_escape = t.seen_escape;
    return r;
}

dds__sql_result dds__obfuscate_sql(dds__slice in, dds__sql_dbms dbms, dds__arena *arena, dds__slice *out) {
    /* The scratch holds one token's unescaped contents, or a dollar-quote tag with its two '$'. */
    uint8_t *scratch = dds__arena_alloc(arena, in.len + 8);
    if (!scratch) return DDS__SQL_OOM;
    outbuf o = {.arena = arena, .cap = in.len + 16};
    if (!(o.p = dds__arena_alloc(arena, o.cap))) return DDS__SQL_OOM;
    bool seen_escape = false;
    /* Go keeps whichever backslash mode last worked in a process-wide flag; starting from the
     * default every time keeps the result a function of the query alone. */
    attempt_result r = run(in, dbms, false, scratch, &o, &seen_escape);
    if (r == ATTEMPT_FAIL && seen_escape) r = run(in, dbms, true, scratch, &o, &seen_escape);
    if (r == ATTEMPT_OOM) return DDS__SQL_OOM;
    if (r == ATTEMPT_FAIL) {
        *out = DDS__SLICE_LIT(DDS__SQL_NON_PARSABLE_TEXT);
        return DDS__SQL_NON_PARSABLE;
    }
    *out = dds__slice_make((const char *)o.p, o.len);
    return DDS__SQL_OK;
}

/* ---- the cache ------------------------------------------------------------------------------ */

typedef struct sql_entry {
    uint64_t hash;
    uint32_t qlen, olen;     /* the query, then the OK result, in data */
    uint8_t dbms;
    uint8_t result;          /* DDS__SQL_OK or DDS__SQL_NON_PARSABLE (olen 0) */
    char data[];
} sql_entry;

struct dds__sql_cache {
    size_t budget, bytes;
    sql_entry *slot[DDS__SQL_CACHE_SLOTS];
};

dds__sql_cache *dds__sql_cache_new(size_t budget) {
    dds__sql_cache *c = calloc(1, sizeof(*c));
    if (c) c->budget = budget;
    return c;
}

void dds__sql_cache_free(dds__sql_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < DDS__SQL_CACHE_SLOTS; i++) free(c->slot[i]);
    free(c);
}

size_t dds__sql_cache_bytes(const dds__sql_cache *c) { return c ? c->bytes : 0; }

static size_t entry_bytes(const sql_entry *e) { return sizeof(*e) + e->qlen + e->olen; }

/* A word at a time: queries are short, and the slot's bytes are compared on a match anyway. */
static uint64_t query_hash(const uint8_t *p, size_t n, dds__sql_dbms dbms) {
    const uint64_t m = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t h = (uint64_t)n * m ^ (uint64_t)dbms;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k++) w |= (uint64_t)p[i] << (8 * k);
    h = (h ^ w) * m;
    return h ^ (h >> 32);
}

dds__sql_result dds__obfuscate_sql_cached(dds__sql_cache *c, dds__slice in, dds__sql_dbms dbms, dds__arena *arena,
                                          dds__slice *out) {
    if (!c || in.len > DDS__SQL_CACHE_MAX_QUERY) return dds__obfuscate_sql(in, dbms, arena, out);
    uint64_t h = query_hash((const uint8_t *)in.ptr, in.len, dbms);
    sql_entry **slot = &c->slot[h & (DDS__SQL_CACHE_SLOTS - 1)];
    sql_entry *e = *slot;
    if (e && e->hash == h && e->dbms == (uint8_t)dbms && e->qlen == in.len && memcmp(e->data, in.ptr, in.len) == 0) {
        if (e->result == DDS__SQL_NON_PARSABLE) {
            *out = DDS__SLICE_LIT(DDS__SQL_NON_PARSABLE_TEXT);
            return DDS__SQL_NON_PARSABLE;
        }
        char *d = dds__arena_memdup(arena, e->data + e->qlen, e->olen);
        if (!d) return DDS__SQL_OOM;
        *out = dds__slice_make(d, e->olen);
        return DDS__SQL_OK;
    }
    dds__sql_result r = dds__obfuscate_sql(in, dbms, arena, out);
    if (r == DDS__SQL_OOM) return r;
    size_t olen = r == DDS__SQL_OK ? out->len : 0;
    size_t need = sizeof(sql_entry) + in.len + olen;
    size_t held = c->bytes - (e ? entry_bytes(e) : 0);
    if (olen > UINT32_MAX || held > c->budget || need > c->budget - held) return r;
    sql_entry *n = malloc(need);
    if (!n) return r;  /* the result stands; only the cache goes without */
    n->hash = h;
    n->qlen = (uint32_t)in.len;
    n->olen = (uint32_t)olen;
    n->dbms = (uint8_t)dbms;
    n->result = (uint8_t)r;
    if (in.len) memcpy(n->data, in.ptr, in.len);
    if (olen) memcpy(n->data + in.len, out->ptr, olen);
    free(e);
    *slot = n;
    c->bytes = held + need;
    return r;
}
