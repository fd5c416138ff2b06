/* replace_rules.h - DD_APM_REPLACE_TAGS: a JSON list of {"name", "pattern", "repl"} rules,
 * compiled once with POSIX regcomp (libc, no new dependency) and applied to strings with Go's
 * Regexp.ReplaceAllString semantics ($1 / ${1} expansion, $$ for a dollar, empty matches
 * advance one character). The trace processor decides which span fields a rule's name reaches.
 * Compiled rules are read-only and may be shared by threads. */
#ifndef DDS_COMMON_REPLACE_RULES_H
#define DDS_COMMON_REPLACE_RULES_H
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/slice.h"

/* More rules than this is a configuration mistake, not a use case (each costs a regexec per
 * tag of every span); the bound keeps a hostile value from compiling without end. */
#define DDS__REPLACE_RULES_MAX 64

typedef enum dds__replace_target {
    DDS__REPLACE_TAG = 0,        /* the meta tag called name */
    DDS__REPLACE_ALL = 1,        /* "*": every meta tag (but "_..." internal ones) and the resource */
    DDS__REPLACE_RESOURCE = 2,   /* "resource.name": the resource */
} dds__replace_target;

typedef struct dds__replace_rule {
    dds__replace_target target;
    dds__slice name;             /* the tag (owned, NUL-terminated) */
    char *repl;                  /* owned */
    regex_t re;
    size_t nsub;                 /* capture groups of re */
} dds__replace_rule;

typedef struct dds__replace_rules {
    size_t n;
    dds__replace_rule rule[];
} dds__replace_rules;

/*
 * Parse and compile json (NUL-terminated). NULL or "" gives *out = NULL (no rules) and 0.
 * Returns 0, or -1 with why (NUL-terminated, truncated to why_cap) naming the rule and what is
 * wrong: not a JSON list of objects, a missing or non-string field, too many rules, or a
 * pattern regcomp refuses or that uses RE2 syntax POSIX does not have ((?flags), lazy
 * quantifiers, \p, \Q, \z, \A; \d \D \w \W \s \S are translated). Free with
 * dds__replace_rules_free (accepts NULL). Any thread.
 */
int dds__replace_rules_parse(const char *json, dds__replace_rules **out, char *why, size_t why_cap);
void dds__replace_rules_free(dds__replace_rules *r);

/*
 * Apply one rule to in: every non-overlapping match replaced by repl (expanded). *out is in
 * itself when nothing matched, else a new string in the arena. regexec needs a C string: the
 * value is copied, NUL-terminated, into scratch (a caller's buffer reused from call to call, so
 * that values no rule matches cost no arena memory) or, when scratch is NULL, into the arena.
 * False only when memory runs out (*out untouched). A NUL byte inside in splits it: each part
 * is matched alone.
 */
bool dds__replace_apply(const dds__replace_rule *r, dds__slice in, dds__arena *arena, dds__buf *scratch,
                        dds__slice *out);
#endif
