/* log.c - formats log lines, filters them by the instance's level, strips the API key, and hands
 * them to the process-wide sink (default: stderr). Never allocates for a line under 1 KiB and
 * never fails loudly: a line that cannot be formatted is dropped. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one process-wide sink (header: dds_set_log_fn). A mutex rather than an atomic pair so
 * fn and user always change together; logging is rare enough for it not to matter. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static dds_log_fn sink_fn;
static void *sink_user;

/* fork() while a loop thread holds sink_lock would leave the child's copy locked forever: the
 * lock is taken around fork and released on both sides. Registered once, process-wide. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void sink_lock_acquire(void) { pthread_mutex_lock(&sink_lock); }
static void sink_lock_release(void) { pthread_mutex_unlock(&sink_lock); }
static void register_atfork(void) { pthread_atfork(sink_lock_acquire, sink_lock_release, sink_lock_release); }

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

const char *dds_log_level_name(dds_log_level level) {
    if ((unsigned)level > DDS_LOG_OFF) return "off";
    return level_names[level];
}

void dds_set_log_fn(dds_log_fn fn, void *user) {
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&sink_lock);
    sink_fn = fn;
    sink_user = user;
    pthread_mutex_unlock(&sink_lock);
}

static void default_sink(dds_log_level level, const char *line) {
    static const char *const upper[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    char out[1200];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s datadog-serverless: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, upper[level > DDS_LOG_OFF ? DDS_LOG_OFF : level], line);
    if (n < 0) return;
    if ((size_t)n >= sizeof(out)) {
        n = sizeof(out) - 1;
        out[n - 1] = '\n';
    }
    /* One write per line so lines of concurrent instances never interleave mid-line. */
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
}

/* Replace every occurrence of secret in line (in place, shrinking or growing within cap). */
static void redact(char *line, size_t cap, const char *secret) {
    static const char mask[] = "***redacted***";
    size_t slen = strlen(secret);
    if (slen == 0) return;
    char *hit;
    char *from = line;
    while ((hit = strstr(from, secret)) != NULL) {
        size_t tail = strlen(hit + slen);
        size_t mlen = sizeof(mask) - 1;
        size_t head = (size_t)(hit - line);
        if (head + mlen + tail + 1 > cap) tail = cap > head + mlen + 1 ? cap - head - mlen - 1 : 0;
        if (head + mlen + 1 > cap) { *hit = '\0'; return; }
        memmove(hit + mlen, hit + slen, tail);
        memcpy(hit, mask, mlen);
        hit[mlen + tail] = '\0';
        from = hit + mlen;
    }
}

void dds__log(const dds__logger *lg, dds_log_level level, const char *fmt, ...) {
    if (!DDS__LOG_ENABLED(lg, level)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (lg->secret && lg->secret[0]) redact(line, sizeof(line), lg->secret);

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&sink_lock);
    dds_log_fn fn = sink_fn;
    void *user = sink_user;
    pthread_mutex_unlock(&sink_lock);
    if (fn)
        fn(level, line, user);
    else
        default_sink(level, line);
}

int dds__ratelimit_allow(dds__ratelimit *rl, int64_t now_ms, uint64_t *skipped_out) {
    uint32_t interval = rl->interval_ms ? rl->interval_ms : 10000;
    if (now_ms < rl->next_ms) {
        rl->skipped++;
        return 0;
    }
    if (skipped_out) *skipped_out = rl->skipped;
    rl->skipped = 0;
    rl->next_ms = now_ms + interval;
    return 1;
}
