/* agent.c - trace agent glue. In: request bodies from the receiver. Out: AgentPayloads and
 * StatsPayloads (the tracers' and, when enabled, our own from the concentrator) submitted to the
 * intake (every 3 s, at ~3.2 MB, or on flush/stop).
 *
 * Threads: decoding, processing and the concentrator run on the loop, so each request is answered
 * with its real status as soon as its spans are accepted. Encoding into the pending AgentPayload
 * (protobuf + gzip, about half the CPU of a large body) runs on one encode thread (`dds-trace-enc`,
 * started with the first large body) when the body is large (OFFLOAD_MIN_BYTES) or the encoder is
 * busy: the request's body and its arena of span records go to the thread in a job, and the loop
 * goes on with the next request. The queue is bounded (QUEUE_JOBS jobs, QUEUE_BYTES): when full,
 * the loop encodes the body itself, into an encoder of its own (encoder_loop: its own pending
 * AgentPayload, taken with the other at every flush) instead of waiting for a slot, so both
 * threads encode while encoding is the slower stage; nothing is dropped. Whoever encodes
 * holds the encoder (`busy`); small bodies are encoded on the loop when the encoder is idle, as
 * before. A flush (the 3 s timer, dds_flush, the stop) first waits until every queued job is
 * encoded, so it sends everything accepted. Payloads the thread completes at ~3.2 MB are handed
 * back to the loop (out list + out_ev), which submits them. */
#include "trace/agent.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/clock.h"
#include "config.h"
#include "error.h"
#include "trace/decode.h"
#include "trace/encode.h"
#include "trace/obfuscate_stats.h"

#define TRACE_FLUSH_INTERVAL_MS 3000  /* also the concentrator's flush period (the Rust agent's 3 s) */
#define SPAN_TAGS_MAX 6
/* Bodies from this size go to the encode thread; smaller ones are encoded on the loop when the
 * encoder is idle (a hand-off costs a wake-up, more than encoding a few KB). */
#define OFFLOAD_MIN_BYTES (64u * 1024)
/* Jobs waiting for the encode thread (besides the one it encodes), and their bytes (bodies and
 * span records); one job is always accepted into an empty queue, whatever its size. */
#define QUEUE_JOBS 4
#define QUEUE_BYTES (32u * 1024 * 1024)
/* Bytes of cached SQL results (queries and their obfuscated forms); the Go Agent's cache holds
 * up to 5 MB by default. */

/* One request's spans on their way to the encoder: its arena holds the records, body (kept from
 * the receiver) the strings they point to. */
typedef struct trace_job {
    struct trace_job *next;
    dds__arena arena;
    dds__kept_body *body;
    dds__tracer_payload tp;
    size_t bytes;
} trace_job;

struct dds__trace_agent {
    dds__receiver *receiver;
    dds__trace_encoder *encoder;
    /* The loop's own encoder (its own pending AgentPayload, loop only): a large body that finds the
     * queue full is encoded here, so that both threads encode when encoding is the slower stage. */
    dds__trace_encoder *encoder_loop;
    dds__concentrator *concentrator;  /* NULL unless DD_AGENT_STATS_COMPUTATION_ENABLED */
    dds__intake *intake;
    dds__trace_agent_counters *counters;
    const dds__logger *log;
    struct event *flush_ev;
    dds__arena arena;              /* a stats request's scratch; reset before each */
    trace_job *cur;                /* the loop's job for the next trace request (its arena) */
    size_t arena_limit;
    /* The encode thread. Everything below mu is guarded by it. */
    struct event *out_ev;          /* the thread activates it when out has payloads */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;        /* the thread waits for a job (or stop) */
    pthread_cond_t idle_cv;        /* the loop waits for room in the queue, or for the encoder idle */
    pthread_t thread;
    bool thread_started, thread_failed, stop;
    bool busy;                     /* the encoder is in use (by the thread or the loop) */
    trace_job *q_head, *q_tail;    /* queued jobs, oldest first */
    uint32_t q_jobs;
    size_t q_bytes;
    trace_job *free_jobs;          /* encoded jobs, their arenas reset, for reuse */
    dds__payload *out_head, *out_tail;  /* payloads the thread completed, for the loop to submit */
    dds__ratelimit decode_rl;
    bool dry_run;
    dds__trace_process_config obfuscation;  /* the obfuscation fields of every request's config */
    dds__replace_rules *replace_rules;      /* owned; obfuscation.replace_rules points here */
    dds__sql_cache *sql_cache;     /* owned; SQL results across requests (NULL: none), the loop's */
    const char *cloud_origin;      /* static string from cloud.c, or NULL */
    char *function_name, *function_tags, *env;
    /* Every span's platform tags: _dd.serverless_compat_version, asa.hostname, asa.name, and the
     * three gcrfx.* once the Google metadata is known. Values owned (span_values). */
    dds__kv span_tags[SPAN_TAGS_MAX];
    char *span_values[SPAN_TAGS_MAX];
    uint32_t nspan_tags;
    dds__kv aas_tags[DDS__CLOUD_AAS_TAGS];  /* pointing into aas_values */
    uint32_t naas_tags;
    char *aas_values;
    char *traces_url, *stats_url, *profiling_url, *pipeline_stats_url, *telemetry_url, *evp_url;
    void (*dsd_fn)(void *user, const char *body, size_t len);  /* /dogstatsd/v2/proxy sink */
    void *dsd_user;
};

static char *join(const char *base, const char *path) {
    char *out = NULL;
    if (!base || asprintf(&out, "%s%s", base, path) < 0) return NULL;
    return out;
}

static void submit(dds__trace_agent *a, dds__payload *p) {
    if (p) dds__intake_submit(a->intake, p);
}

/* The encoder counts in a plain field; readers on other threads see this copy. Called by
 * whoever holds the encoder (busy), so the single writer rule of the counters holds. */
static void sync_encoder_counter(dds__trace_agent *a) {
    dds__counter_set(&a->counters->spans_dropped_encoding, dds__trace_encoder_spans_dropped(a->encoder));
}

/* Payloads the thread completed, submitted in order. Loop thread. */
static void submit_out(dds__trace_agent *a) {
    pthread_mutex_lock(&a->mu);
    dds__payload *p = a->out_head;
    a->out_head = a->out_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    while (p) {
        dds__payload *next = p->next;
        p->next = NULL;
        submit(a, p);
        p = next;
    }
}

static void on_out(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    submit_out(arg);
}

/* Loop thread: wait until no job is queued and nobody encodes, then hold the encoder. */
static void encoder_acquire(dds__trace_agent *a) {
    pthread_mutex_lock(&a->mu);
    while (a->busy || a->q_head) pthread_cond_wait(&a->idle_cv, &a->mu);
    a->busy = true;
    pthread_mutex_unlock(&a->mu);
}

static void encoder_release(dds__trace_agent *a) {
    pthread_mutex_lock(&a->mu);
    a->busy = false;
    pthread_cond_broadcast(&a->idle_cv);
    pthread_mutex_unlock(&a->mu);
}

/* Everything accepted so far goes out: the thread's completed payloads, then what is pending. */
static void flush_traces(dds__trace_agent *a) {
    encoder_acquire(a);
    submit_out(a);
    submit(a, dds__trace_encoder_take(a->encoder));
    sync_encoder_counter(a);
    encoder_release(a);
    submit(a, dds__trace_encoder_take(a->encoder_loop));
    dds__counter_set(&a->counters->spans_dropped_encoding_loop, dds__trace_encoder_spans_dropped(a->encoder_loop));
}

/* The concentrator's done buckets (all of them when force) as one StatsPayload. */
static void flush_stats(dds__trace_agent *a, bool force) {
    if (!a->concentrator) return;
    dds__buf items;
    dds__buf_init(&items);
    uint32_t n = dds__concentrator_flush(a->concentrator, dds__wall_ns(), force, &items);
    if (n) {
        dds__payload *p = dds__trace_stats_payload_computed(items.data, items.len, n, a->stats_url, "",
                                                            a->env ? a->env : "", dds_version(), a->dry_run);
        if (p) submit(a, p);
        else dds__log_warn(a->log, "trace agent: computed stats of %u tracer(s) lost: out of memory", n);
    } else if (items.oom) {
        dds__log_warn(a->log, "trace agent: computed stats lost: out of memory");  /* counted by the concentrator */
    }
    dds__buf_free(&items);
}

void dds__trace_agent_flush(dds__trace_agent *a) {
    flush_traces(a);
    flush_stats(a, true);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    flush_traces(arg);
    flush_stats(arg, false);
}

/* A header's value, copied into the arena: the headers go with the request, the spans may be
 * encoded after it. Empty when out of memory. */
static dds__slice header_copy(dds__arena *arena, dds__slice v) {
    if (!v.len) return v;
    char *c = dds__arena_memdup(arena, v.ptr, v.len);
    return c ? dds__slice_make(c, v.len) : dds__slice_make(NULL, 0);
}

/* Tracer headers fill what the payload itself does not say (v0.4 and v0.5 carry none of it). */
static void apply_headers(dds__tracer_payload *tp, const dds__trace_headers *h, dds__arena *arena) {
    if (!tp->language_name.len) tp->language_name = header_copy(arena, h->lang);
    if (!tp->language_version.len) tp->language_version = header_copy(arena, h->lang_version);
    if (!tp->tracer_version.len) tp->tracer_version = header_copy(arena, h->tracer_version);
    if (!tp->container_id.len) tp->container_id = header_copy(arena, h->container_id);
}

static uint64_t header_count(dds__slice v) {
    uint64_t n = 0;
    for (size_t i = 0; i < v.len && i < 12; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return 1;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    return n ? n : 1;
}

/* ---- the encode thread -------------------------------------------------------------------- */

static void job_free(trace_job *j) {
    if (!j) return;
    dds__receiver_kept_body_free(j->body);
    dds__arena_free(&j->arena);
    free(j);
}

static void *encode_main(void *arg) {
    dds__trace_agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stop && (!a->q_head || a->busy)) pthread_cond_wait(&a->work_cv, &a->mu);
        if (!a->q_head || a->busy) break;  /* stopping, and nothing left to encode */
        trace_job *j = a->q_head;
        a->q_head = j->next;
        if (!a->q_head) a->q_tail = NULL;
        a->q_jobs--;
        a->q_bytes -= j->bytes;
        a->busy = true;
        pthread_cond_broadcast(&a->idle_cv);  /* a slot is free */
        pthread_mutex_unlock(&a->mu);

        dds__payload *p = NULL;
        if (dds__trace_encoder_add(a->encoder, &j->tp)) p = dds__trace_encoder_take(a->encoder);
        sync_encoder_counter(a);
        dds__receiver_kept_body_free(j->body);
        j->body = NULL;
        dds__arena_reset(&j->arena);

        pthread_mutex_lock(&a->mu);
        a->busy = false;
        j->next = a->free_jobs;
        a->free_jobs = j;
        if (p) {
            if (a->out_tail) a->out_tail->next = p;
            else a->out_head = p;
            a->out_tail = p;
        }
        pthread_cond_broadcast(&a->idle_cv);
        if (p) {
            /* The loop never holds mu while it waits for libevent's lock. */
            pthread_mutex_unlock(&a->mu);
            event_active(a->out_ev, EV_READ, 0);
            pthread_mutex_lock(&a->mu);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Started by the loop thread, with every signal blocked (the loop's own mask, made sure of):
 * signals are the host's. false when it cannot start: the loop then encodes everything itself. */
static bool thread_start(dds__trace_agent *a) {
    if (a->thread_started) return true;
    if (a->thread_failed) return false;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&a->thread, NULL, encode_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        a->thread_failed = true;
        dds__log_warn(a->log, "trace agent: cannot start the encode thread (error %d): the loop encodes", rc);
        return false;
    }
    pthread_setname_np(a->thread, "dds-trace-enc");
    a->thread_started = true;
    return true;
}

/* The loop's job for the next request: a reused one, or a new one (NULL out of memory). At most
 * QUEUE_JOBS + 2 exist: the queued ones, the one being encoded, the loop's. */
static trace_job *job_get(dds__trace_agent *a) {
    if (a->cur) return a->cur;
    pthread_mutex_lock(&a->mu);
    trace_job *j = a->free_jobs;
    if (j) a->free_jobs = j->next;
    pthread_mutex_unlock(&a->mu);
    if (!j) {
        j = calloc(1, sizeof(*j));
        if (!j) return NULL;
        dds__arena_init(&j->arena, 256 * 1024, a->arena_limit);
    }
    j->next = NULL;
    a->cur = j;
    return j;
}

/* Queue the loop's job for the thread, waiting for room when the queue is full. */
static void job_enqueue(dds__trace_agent *a, trace_job *j) {
    a->cur = NULL;
    pthread_mutex_lock(&a->mu);
    while (a->q_head && (a->q_jobs >= QUEUE_JOBS || a->q_bytes + j->bytes > QUEUE_BYTES))
        pthread_cond_wait(&a->idle_cv, &a->mu);
    if (a->q_tail) a->q_tail->next = j;
    else a->q_head = j;
    a->q_tail = j;
    a->q_jobs++;
    a->q_bytes += j->bytes;
    pthread_cond_signal(&a->work_cv);
    pthread_mutex_unlock(&a->mu);
}

/* Encode on the loop, the encoder held: when the thread is idle, or missing. */
static void encode_here(dds__trace_agent *a, const dds__tracer_payload *tp) {
    if (dds__trace_encoder_add(a->encoder, tp)) {
        submit_out(a);
        submit(a, dds__trace_encoder_take(a->encoder));
    }
    sync_encoder_counter(a);
}

/* Whether a job of this many bytes would have to wait for room in the queue (job_enqueue). Only
 * the loop adds jobs: room seen here is still there when it enqueues. */
static bool queue_full(dds__trace_agent *a, size_t bytes) {
    pthread_mutex_lock(&a->mu);
    bool full = a->q_head && (a->q_jobs >= QUEUE_JOBS || a->q_bytes + bytes > QUEUE_BYTES);
    pthread_mutex_unlock(&a->mu);
    return full;
}

/* Hand tp (in the loop's job) to the encoder: to the thread when its body is kept and the thread
 * runs, else here (waiting for the thread to finish what is queued). Rather than wait for the
 * thread to free a slot of a full queue, the loop encodes the body itself, into its own encoder:
 * both threads then encode while encoding is the slower stage. */
static void encode(dds__trace_agent *a, trace_job *j, dds__kept_body *kept, const dds__tracer_payload *tp,
                   size_t len) {
    if (kept && thread_start(a) && queue_full(a, len + j->arena.total)) {
        if (dds__trace_encoder_add(a->encoder_loop, tp)) submit(a, dds__trace_encoder_take(a->encoder_loop));
        dds__counter_set(&a->counters->spans_dropped_encoding_loop, dds__trace_encoder_spans_dropped(a->encoder_loop));
        dds__receiver_kept_body_free(kept);
        return;
    }
    if (kept && thread_start(a)) {
        j->body = kept;
        j->tp = *tp;
        j->bytes = len + j->arena.total;
        job_enqueue(a, j);
        return;
    }
    encoder_acquire(a);
    encode_here(a, tp);
    encoder_release(a);
    dds__receiver_kept_body_free(kept);
}

/* A small body while the encoder is idle is encoded here, as a hand-off costs more than encoding
 * a few KB: the loop holds the encoder from now on (only the loop queues jobs, so it stays idle). */
static bool encoder_claim_if_idle(dds__trace_agent *a) {
    pthread_mutex_lock(&a->mu);
    bool idle = !a->busy && !a->q_head;
    if (idle) a->busy = true;
    pthread_mutex_unlock(&a->mu);
    return idle;
}

static int on_traces(void *user, dds__trace_format fmt, const uint8_t *body, size_t len, const dds__trace_headers *h) {
    dds__trace_agent *a = user;
    trace_job *j = job_get(a);
    dds__arena *arena = j ? &j->arena : &a->arena;
    dds__arena_reset(arena);
    bool here = (len < OFFLOAD_MIN_BYTES || a->thread_failed || !j) && encoder_claim_if_idle(a);
    /* Otherwise the body is kept, so that its spans can be encoded after the answer. */
    dds__kept_body *kept = here || !j ? NULL : dds__receiver_keep_body(h, &body);
    dds__tracer_payload tp;
    char err[160];
    if (dds__trace_decode(fmt, body, len, arena, &tp, err, sizeof(err)) != 0) {
        dds__receiver_kept_body_free(kept);
        if (here) encoder_release(a);
        /* Out of arena: the body is legitimate but bigger than we hold, which is a 413. */
        int status = arena->oom ? 413 : 400;
        dds__arena_reset(arena);
        dds__counter_add(&a->counters->decode_errors, 1);
        dds__counter_add(&a->counters->traces_rejected, header_count(h->trace_count));
        uint64_t skipped = 0;
        if (dds__ratelimit_allow(&a->decode_rl, dds__mono_ms(), &skipped))
            dds__log_warn(a->log, "trace agent: rejected a v0.%d payload of %zu bytes (%.*s): %s (%llu more since the last message)",
                          (int)fmt, len, (int)h->lang.len, h->lang.ptr ? h->lang.ptr : "", err,
                          (unsigned long long)skipped);
        return status;
    }
    apply_headers(&tp, h, arena);
    /* The configured obfuscation, plus what this request says. */
    dds__trace_process_config pc = a->obfuscation;
    pc.lang = h->lang;
    pc.client_computed_top_level = h->client_computed_top_level;
    pc.default_env = dds__slice_cstr(a->env);
    pc.cloud_origin = a->cloud_origin;
    pc.function_name = dds__slice_cstr(a->function_name);
    pc.function_tags = dds__slice_cstr(a->function_tags);
    pc.now_ns = dds__wall_ns();
    pc.span_tags = a->span_tags;
    pc.nspan_tags = a->nspan_tags;
    pc.aas_tags = a->aas_tags;
    pc.naas_tags = a->naas_tags;
    pc.sql_cache = a->sql_cache;
    /* Chunks that processing could not finish (out of arena memory) are already dropped and
     * counted by it; the ones kept are complete and go on. */
    uint32_t kept_spans = dds__trace_process(&tp, &pc, arena, &a->counters->process);
    dds__counter_add(&a->counters->spans, kept_spans);
    dds__counter_add(&a->counters->requests_ok, 1);
    /* Stats see the spans as they are forwarded (normalized, top level marked, obfuscated), and
     * only when the tracer did not compute its own (PARITY.md section 2). */
    if (kept_spans && a->concentrator && !h->client_computed_stats) dds__concentrator_add(a->concentrator, &tp);
    /* What tp points to now outlives the request: the body (kept), the arena, the agent's own
     * strings (set_gcp waits for the encoder before it replaces any) and static ones. */
    if (here) {
        if (kept_spans) encode_here(a, &tp);
        encoder_release(a);
    } else if (kept_spans) {
        encode(a, j, kept, &tp, len);
    } else {
        dds__receiver_kept_body_free(kept);
    }
    return 200;
}

static void on_dogstatsd(void *user, const char *body, size_t len) {
    dds__trace_agent *a = user;
    a->dsd_fn(a->dsd_user, body, len);
}

static int on_stats(void *user, const uint8_t *body, size_t len, const dds__trace_headers *h) {
    (void)h;
    dds__trace_agent *a = user;
    char err[160];
    /* Stats groups get the resources their spans get (Go obfuscateStatsGroup). */
    dds__arena_reset(&a->arena);
    const uint8_t *sbody = body;
    size_t slen = len;
    long rc = dds__trace_stats_obfuscate(body, len, &a->obfuscation, &a->arena, &sbody, &slen, err, sizeof(err));
    if (rc < 0) {
        if (rc == -2) snprintf(err, sizeof(err), "out of memory obfuscating its resources");
        dds__log_warn(a->log, "trace agent: rejected a stats payload of %zu bytes: %s", len, err);
        return rc == -2 ? 413 : 400;
    }
    dds__payload *p = dds__trace_stats_payload(sbody, slen, a->stats_url, "", a->env ? a->env : "", dds_version(),
                                               a->dry_run, err, sizeof(err));
    if (!p) {
        dds__log_warn(a->log, "trace agent: rejected a stats payload of %zu bytes: %s", len, err);
        return 400;
    }
    dds__counter_add(&a->counters->stats_payloads, 1);
    submit(a, p);
    return 200;
}

/* Set (or replace) one of every span's platform tags; an empty value sets nothing. false on
 * allocation failure. key is static. */
static bool span_tag_set(dds__trace_agent *a, const char *key, const char *value) {
    if (!value || !value[0]) return true;
    char *v = strdup(value);
    if (!v) return false;
    uint32_t i = 0;
    while (i < a->nspan_tags && strcmp(a->span_tags[i].key.ptr, key) != 0) i++;
    if (i == SPAN_TAGS_MAX) {
        free(v);
        return false;
    }
    if (i < a->nspan_tags) free(a->span_values[i]);
    else a->nspan_tags++;
    a->span_values[i] = v;
    a->span_tags[i] = (dds__kv){dds__slice_cstr(key), dds__slice_cstr(v)};
    return true;
}

void dds__trace_agent_set_gcp(dds__trace_agent *a, const char *project_id, const char *region) {
    /* Rust enrich_span_with_google_cloud_function_metadata: only with both values ("unknown"
     * counts as one) and a function name. */
    if (!a || !project_id[0] || !region[0] || !a->function_name[0]) return;
    char resource[640];
    int n = snprintf(resource, sizeof(resource), "projects/%s/locations/%s/functions/%s", project_id, region,
                     a->function_name);
    if (n < 0 || (size_t)n >= sizeof(resource)) return;
    /* Queued spans may point to the values replaced here: they are encoded first. */
    encoder_acquire(a);
    if (!span_tag_set(a, "gcrfx.location", region) || !span_tag_set(a, "gcrfx.project_id", project_id) ||
        !span_tag_set(a, "gcrfx.resource_name", resource))
        dds__log_warn(a->log, "trace agent: out of memory: the gcrfx.* span tags are incomplete");
    encoder_release(a);
}

dds__trace_agent *dds__trace_agent_new(struct event_base *base, const dds_config *cfg, const dds__cloud *cloud,
                                       dds__intake *intake, bool dry_run, uint16_t statsd_port,
                                       void (*dogstatsd)(void *user, const char *body, size_t len), void *dsd_user,
                                       dds__trace_agent_counters *counters, const dds__logger *log, dds_error *err) {
    dds__trace_agent *a = calloc(1, sizeof(*a));
    if (!a) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->work_cv, NULL);
    pthread_cond_init(&a->idle_cv, NULL);
    a->intake = intake;
    a->counters = counters;
    a->log = log;
    a->dry_run = dry_run;
    /* Validation already compiled these rules once: failing now is out of memory. */
    char why[200];
    if (dds__replace_rules_parse(cfg->apm_replace_tags, &a->replace_rules, why, sizeof(why)) != 0) {
        dds__error_set(err, DDS_ERR_RUNTIME, "apm_replace_tags: %s", why);
        dds__trace_agent_free(a);
        return NULL;
    }
    a->obfuscation = (dds__trace_process_config){
        .remove_query_string = cfg->apm_remove_query_string,
        .remove_paths_with_digits = cfg->apm_remove_paths_with_digits,
        .obfuscate_credit_cards = cfg->apm_obfuscate_credit_cards,
        .redis_obfuscate = cfg->apm_obfuscate_redis,
        .redis_remove_all_args = cfg->apm_redis_remove_all_args,
        .valkey_obfuscate = cfg->apm_obfuscate_valkey,
        .valkey_remove_all_args = cfg->apm_valkey_remove_all_args,
        .memcached_obfuscate = cfg->apm_obfuscate_memcached,
        .memcached_keep_command = cfg->apm_memcached_keep_command,
        .remove_stack_traces = cfg->apm_remove_stack_traces,
        .replace_rules = a->replace_rules,
    };
    /* The cache is an optimization: without memory for it, queries are obfuscated each time. */
    if (cfg->apm_obfuscation_cache_enabled) a->sql_cache = dds__sql_cache_new(cfg->apm_obfuscation_cache_max_size);
    a->cloud_origin = cloud->origin;
    a->decode_rl.interval_ms = 10000;
    /* Decoded records take up to ~7x the body (v0.5: a 32-byte record per 2-3 byte string
     * index pair); the bound keeps a hostile body from taking unbounded memory (the arena then
     * fails, and the request gets 413). */
    a->arena_limit = (size_t)cfg->apm_max_request_bytes * 8 + (1u << 20);
    dds__arena_init(&a->arena, 256 * 1024, a->arena_limit);
    a->function_name = strdup(cloud->function_name);
    a->function_tags = dds__config_function_tags(cfg->tags);
    bool tags_ok = span_tag_set(a, "_dd.serverless_compat_version", cloud->compat_version) &&
                   span_tag_set(a, "asa.hostname", cloud->asa_hostname) && span_tag_set(a, "asa.name", cloud->asa_name);
    size_t aas_bytes = 1;
    for (size_t i = 0; i < cloud->naas && i < DDS__CLOUD_AAS_TAGS; i++) aas_bytes += strlen(cloud->aas[i].value);
    if ((a->aas_values = malloc(aas_bytes)) != NULL) {
        char *p = a->aas_values;
        for (size_t i = 0; i < cloud->naas && i < DDS__CLOUD_AAS_TAGS; i++) {
            size_t n = strlen(cloud->aas[i].value);
            memcpy(p, cloud->aas[i].value, n);
            a->aas_tags[a->naas_tags++] = (dds__kv){dds__slice_cstr(cloud->aas[i].key), dds__slice_make(p, n)};
            p += n;
        }
    }
    a->env = strdup(cfg->env ? cfg->env : "");
    char *apm = dds__config_base_url(cfg->apm_dd_url, "https://trace.agent.%s", cfg->site);
    a->traces_url = join(apm, "/api/v0.2/traces");
    a->stats_url = join(apm, "/api/v0.2/stats");
    a->pipeline_stats_url = join(apm, "/api/v0.1/pipeline_stats");
    free(apm);
    a->profiling_url = dds__config_profiling_url(cfg);
    a->telemetry_url = dds__config_base_url(cfg->apm_telemetry_dd_url, "https://instrumentation-telemetry-intake.%s", cfg->site);
    if (cfg->evp_proxy_dd_url && cfg->evp_proxy_dd_url[0]) a->evp_url = dds__config_base_url(cfg->evp_proxy_dd_url, "%s", "");
    if (!a->function_name || !a->function_tags || !a->env || !tags_ok || !a->aas_values || !a->traces_url ||
        !a->stats_url ||
        !a->pipeline_stats_url || !a->profiling_url || !a->telemetry_url ||
        (cfg->evp_proxy_dd_url && cfg->evp_proxy_dd_url[0] && !a->evp_url)) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    dds__trace_encoder_config ec = {
        .traces_url = a->traces_url,
        .hostname = "",
        .env = a->env,
        .agent_version = dds_version(),
        .dry_run = dry_run,
    };
    a->encoder = dds__trace_encoder_new(&ec);
    a->encoder_loop = dds__trace_encoder_new(&ec);
    a->flush_ev = event_new(base, -1, EV_PERSIST, on_flush_timer, a);
    a->out_ev = event_new(base, -1, 0, on_out, a);
    if (cfg->agent_stats_computation_enabled) {
        dds__concentrator_config cc = {.default_env = cfg->env, .now_ns = dds__wall_ns()};
        a->concentrator = dds__concentrator_new(&cc, &counters->stats);
    }
    if (!a->encoder || !a->encoder_loop || !a->flush_ev || !a->out_ev ||
        (cfg->agent_stats_computation_enabled && !a->concentrator)) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    dds__receiver_config rc = {
        .port = cfg->apm_receiver_port,
        .non_local = cfg->apm_non_local_traffic,
        .unix_path = (cfg->apm_receiver_socket && cfg->apm_receiver_socket[0]) ? cfg->apm_receiver_socket : NULL,
        .max_body_bytes = cfg->apm_max_request_bytes,
        .statsd_port = statsd_port,
        .default_env = (cfg->env && cfg->env[0]) ? cfg->env : "none",
        .stats_forwarded = true,
        .stats_computed = cfg->agent_stats_computation_enabled,
        .agent_version = dds_version(),
        .profiling_url = a->profiling_url,
        .pipeline_stats_url = a->pipeline_stats_url,
        .telemetry_base_url = a->telemetry_url,
        .evp_base_url = a->evp_url,
        .site = cfg->site,
        .intake = intake,
        .log = log,
    };
    /* The DogStatsD proxy feeds the DogStatsD pipeline, which this directory must not know:
     * the caller's function gets the body. */
    a->dsd_fn = dogstatsd;
    a->dsd_user = dsd_user;
    dds__receiver_handlers hs = {
        .user = a, .traces = on_traces, .stats = on_stats, .dogstatsd = dogstatsd ? on_dogstatsd : NULL};
    a->receiver = dds__receiver_new(base, &rc, &hs, &counters->receiver, err);
    if (!a->receiver) goto fail;
    struct timeval every = {.tv_sec = TRACE_FLUSH_INTERVAL_MS / 1000, .tv_usec = (TRACE_FLUSH_INTERVAL_MS % 1000) * 1000};
    event_add(a->flush_ev, &every);
    return a;
fail:
    dds__trace_agent_free(a);
    return NULL;
}

uint16_t dds__trace_agent_port(const dds__trace_agent *a) { return a ? dds__receiver_port(a->receiver) : 0; }


void dds__trace_agent_close(dds__trace_agent *a) {
    if (!a) return;
    if (a->flush_ev) event_del(a->flush_ev);
    dds__receiver_close(a->receiver);
}

/* The encode thread finishes what is queued, then ends; its completed payloads are dropped
 * (the stop flushed before: there are none then). */
static void thread_stop(dds__trace_agent *a) {
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->work_cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        a->thread_started = false;
    }
    while (a->out_head) {
        dds__payload *p = a->out_head;
        a->out_head = p->next;
        dds__payload_free(p);
    }
    a->out_tail = NULL;
    while (a->free_jobs) {
        trace_job *j = a->free_jobs;
        a->free_jobs = j->next;
        job_free(j);
    }
    job_free(a->cur);
    a->cur = NULL;
}

void dds__trace_agent_free(dds__trace_agent *a) {
    if (!a) return;
    thread_stop(a);
    dds__receiver_free(a->receiver);
    dds__trace_encoder_free(a->encoder);
    dds__trace_encoder_free(a->encoder_loop);
    dds__concentrator_free(a->concentrator);
    if (a->flush_ev) event_free(a->flush_ev);
    if (a->out_ev) event_free(a->out_ev);
    dds__arena_free(&a->arena);
    free(a->function_name);
    free(a->function_tags);
    for (uint32_t i = 0; i < a->nspan_tags; i++) free(a->span_values[i]);
    free(a->aas_values);
    free(a->env);
    free(a->traces_url);
    free(a->stats_url);
    free(a->profiling_url);
    free(a->pipeline_stats_url);
    free(a->telemetry_url);
    free(a->evp_url);
    dds__replace_rules_free(a->replace_rules);
    dds__sql_cache_free(a->sql_cache);
    pthread_cond_destroy(&a->idle_cv);
    pthread_cond_destroy(&a->work_cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
