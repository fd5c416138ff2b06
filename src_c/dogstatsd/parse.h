/* parse.h - DogStatsD line parsing (PROTOCOL.md section 1). Zero copy: every slice points into
 * the caller's packet buffer and is valid as long as that buffer. No allocation, no logging. */
#ifndef DDS_DOGSTATSD_PARSE_H
#define DDS_DOGSTATSD_PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/slice.h"

typedef enum dds__mtype {
    DDS__MT_COUNT = 0,         /* c  */
    DDS__MT_GAUGE = 1,         /* g  */
    DDS__MT_HISTOGRAM = 2,     /* h  */
    DDS__MT_TIMING = 3,        /* ms (aggregated as a histogram, kept apart in the context key) */
    DDS__MT_DISTRIBUTION = 4,  /* d  */
    DDS__MT_SET = 5,           /* s  */
} dds__mtype;

typedef enum dds__parse_status {
    DDS__PARSE_OK = 0,
    DDS__PARSE_ERR_NAME,        /* empty name, no ':' */
    DDS__PARSE_ERR_VALUE,       /* empty value, bad number in any packed item */
    DDS__PARSE_ERR_TYPE,        /* missing or unknown type */
    DDS__PARSE_ERR_SAMPLE_RATE, /* @ that is not a number */
    DDS__PARSE_ERR_TIMESTAMP,   /* T that is not a base-10 integer >= 1 */
    DDS__PARSE_ERR_EVENT,       /* malformed event */
    DDS__PARSE_ERR_SERVICE_CHECK, /* malformed service check */
    DDS__PARSE_ERR_TOO_MANY_VALUES, /* more packed values than the caller's array holds */
} dds__parse_status;

/* Short stable text for a status ("bad metric name", ...), for log lines. */
const char *dds__parse_status_text(int status);

typedef enum dds__line_kind { DDS__LINE_METRIC, DDS__LINE_EVENT, DDS__LINE_SERVICE_CHECK } dds__line_kind;

/* Next line of a packet: split on '\n', drop one trailing '\r', skip empty lines; the last line
 * may be unterminated. Advances *cursor. Returns false when no line is left. Inline: it runs once
 * per line, and the call cost as much as its body. */
static inline bool dds__packet_next_line(const char **cursor, const char *end, dds__slice *line) {
    const char *p = *cursor;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        const char *stop = nl;
        if (stop > p && stop[-1] == '\r') stop--; /* one '\r' only: "a\r\r\n" keeps "a\r" */
        const char *start = p;
        p = nl < end ? nl + 1 : end;
        if (stop > start) {
            *cursor = p;
            *line = (dds__slice){start, (size_t)(stop - start)};
            return true;
        }
    }
    *cursor = end;
    return false;
}

/* `_e{` event, `_sc|` service check, anything else a metric. */
dds__line_kind dds__line_kind_of(dds__slice line);

/* Next tag of a raw tag list (split on ',' only; empty tags are returned as empty slices so
 * the aggregator can drop them). Advances *rest. Returns false when none is left. An empty
 * list (`#` alone) yields no tag at all. */
bool dds__tags_next(dds__slice *rest, dds__slice *tag);

typedef struct dds__metric {
    dds__slice name;          /* before the first ':' (namespace not applied) */
    dds__slice raw_value;     /* between the first ':' and the first '|'; a set's member */
    dds__mtype type;
    double sample_rate;       /* 1.0 when absent; as sent otherwise (range handled by the aggregator) */
    dds__slice tags;          /* raw list after '#' (may be empty) */
    int64_t timestamp;        /* T field, 0 when absent */
} dds__metric;

/*
 * Parse one metric line (no '\n'). For every type but sets the packed values are parsed into
 * vals[0..*nvals) (empty items skipped; NaN/Inf kept, the aggregator drops them). cap = size of
 * vals; a line of n bytes never holds more than n/2 + 1 values. For sets *nvals = 0.
 * Returns DDS__PARSE_OK or the reason the whole line is rejected.
 */
int dds__parse_metric(const char *line, size_t len, dds__metric *out, double *vals, size_t cap,
                      size_t *nvals);

/*
 * dds__parse_metric without the scan of the tag list for a further '|': when the tag field is
 * reached, *tags_open is set, out->tags runs from after the '#' to the end of the line, and the
 * line is parsed no further. When the caller can prove that those bytes hold no '|' (the
 * aggregator's alias table: a line byte-identical to a stored one), the result is exactly
 * dds__parse_metric's: the tags were the last field. Otherwise dds__parse_metric_close must finish
 * the parse (it may still reject the line). tags_open may be NULL: then this is dds__parse_metric.
 */
int dds__parse_metric_open(const char *line, size_t len, dds__metric *out, double *vals, size_t cap,
                           size_t *nvals, bool *tags_open);

/* dds__parse_metric_open with the line's first ':' or '|' already found by the caller (first =
 * dds__find2(line, line + len, ':', '|') of common/bytescan.h, line + len if none): a caller that
 * needs the name before the rest is parsed does not scan it twice. */
int dds__parse_metric_open_at(const char *line, size_t len, const char *first, dds__metric *out, double *vals,
                              size_t cap, size_t *nvals, bool *tags_open);

/* Finish a parse that dds__parse_metric_open left with *tags_open set: out and *nvals become
 * dds__parse_metric's (on an error *nvals = 0). The line's bytes must still be valid. */
int dds__parse_metric_close(dds__metric *out, size_t *nvals);

typedef enum dds__event_priority { DDS__PRIO_NORMAL = 0, DDS__PRIO_LOW = 1 } dds__event_priority;
typedef enum dds__alert_type {
    DDS__ALERT_INFO = 0, DDS__ALERT_ERROR = 1, DDS__ALERT_WARNING = 2, DDS__ALERT_SUCCESS = 3
} dds__alert_type;

typedef struct dds__event {
    dds__slice title;         /* raw: a literal "\\n" is still two bytes; see dds__unescape_newlines */
    dds__slice text;
    int64_t timestamp;        /* d: field, 0 when absent or bad (caller uses now) */
    dds__slice hostname;      /* h: */
    dds__slice aggregation_key; /* k: */
    dds__slice source_type_name; /* s: */
    dds__event_priority priority;
    dds__alert_type alert_type;
    dds__slice tags;          /* raw list after '#' */
} dds__event;

/* Parse one `_e{..}` line; hot-shots' UTF-16 lengths accepted (PROTOCOL.md). */
int dds__parse_event(const char *line, size_t len, dds__event *out);

typedef struct dds__service_check {
    dds__slice name;
    int status;               /* 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN */
    int64_t timestamp;        /* d:, 0 when absent or bad */
    dds__slice hostname;      /* h: */
    dds__slice tags;          /* raw list after '#' */
    dds__slice message;       /* m: */
} dds__service_check;

int dds__parse_service_check(const char *line, size_t len, dds__service_check *out);

/* Copy src to dst turning each two-byte "\\n" into '\n'. dst holds at least len bytes.
 * Returns the bytes written. */
size_t dds__unescape_newlines(char *dst, const char *src, size_t len);

/* Metric type letter(s) as sent ("c", "g", "h", "ms", "d", "s"). */
const char *dds__mtype_name(dds__mtype t);
#endif
