/* collector.c - Azure Functions enhanced metrics on two loop timers. In: the cgroup CPU counter
 * (every 1 s) and the instance name. Out: samples handed to the aggregator's callback. A missing
 * or garbled counter is a skipped tick (counted, logged at a bounded rate), never an error. */
#include "enhanced/collector.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "enhanced/azure_tags.h"
#include "enhanced/cgroup_cpu.h"

struct dds__enhanced {
    dds__enhanced_config cfg;
    dds__enhanced_counters *counters;
    struct event *cpu_ev, *instance_ev;
    dds__cpu_rate cpu;
    dds__cgroup_source last_source;
    dds__ratelimit cpu_rl;
    bool told_unavailable;          /* the first tick without a counter is a warning, later ones debug */
    char tags[DDS__AZURE_TAGS_MAX];
    size_t tags_len;
    char instance_tags[DDS__AZURE_TAGS_MAX + DDS__AZURE_VALUE_MAX + 16];
    size_t instance_tags_len;
};

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

dds__cpu_step dds__cpu_rate_step(dds__cpu_rate *st, uint64_t usage_ns, int64_t now_ns, double *nanocores) {
    bool primed = st->primed;
    uint64_t last = st->last_ns;
    int64_t elapsed_ns = now_ns - st->last_mono_ns;
    st->primed = true;
    st->last_ns = usage_ns;
    st->last_mono_ns = now_ns;
    if (!primed) return DDS__CPU_PRIMED;
    if (usage_ns < last || elapsed_ns <= 0) return DDS__CPU_SKIPPED;
    *nanocores = (double)(usage_ns - last) / ((double)elapsed_ns / 1e9);
    return DDS__CPU_RATE;
}

static const char *source_name(dds__cgroup_source s) {
    return s == DDS__CGROUP_V1 ? "cgroup v1 cpuacct.usage" : s == DDS__CGROUP_V2 ? "cgroup v2 cpu.stat" : "none";
}

static void on_cpu(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__enhanced *e = arg;
    uint64_t usage = 0;
    dds__cgroup_source src = dds__cgroup_cpu_read(&usage);
    if (src == DDS__CGROUP_NONE) {
        dds__counter_add(&e->counters->cpu_unavailable, 1);
        if (!e->told_unavailable) {
            e->told_unavailable = true;
            dds__log_warn(e->cfg.log, "enhanced metrics: no readable cgroup CPU counter (cgroup v1 cpuacct.usage or v2 "
                                      "cpu.stat under /sys/fs/cgroup): %s is not sent while there is none",
                          DDS__ENHANCED_CPU_METRIC);
            return;
        }
        uint64_t skipped = 0;
        if (dds__ratelimit_allow(&e->cpu_rl, dds__mono_ms(), &skipped))
            dds__log_debug(e->cfg.log,
                           "enhanced metrics: no readable cgroup CPU counter (/sys/fs/cgroup/cpu/cpuacct.usage, "
                           "/sys/fs/cgroup/cpu.stat): %s skipped (%llu more since the last message)",
                           DDS__ENHANCED_CPU_METRIC, (unsigned long long)skipped);
        return;
    }
    /* Counters of two files are not comparable: a change of source starts over. */
    if (src != e->last_source) {
        dds__log_debug(e->cfg.log, "enhanced metrics: CPU from %s", source_name(src));
        e->cpu.primed = false;
        e->last_source = src;
    }
    double nc = 0;
    switch (dds__cpu_rate_step(&e->cpu, usage, mono_ns(), &nc)) {
    case DDS__CPU_RATE:
        dds__counter_add(&e->counters->samples, 1);
        e->cfg.submit(e->cfg.user, DDS__ENHANCED_CPU_METRIC, true, nc, e->tags, e->tags_len);
        break;
    case DDS__CPU_SKIPPED:
        dds__counter_add(&e->counters->cpu_skipped, 1);
        break;
    case DDS__CPU_PRIMED:
        break;
    }
}

static void on_instance(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__enhanced *e = arg;
    dds__counter_add(&e->counters->samples, 1);
    e->cfg.submit(e->cfg.user, DDS__ENHANCED_INSTANCE_METRIC, false, 1.0, e->instance_tags, e->instance_tags_len);
}

static struct event *arm(struct event_base *base, uint32_t every_ms, event_callback_fn fn, void *arg) {
    struct event *ev = event_new(base, -1, EV_PERSIST, fn, arg);
    if (!ev) return NULL;
    struct timeval tv = {.tv_sec = every_ms / 1000, .tv_usec = (every_ms % 1000) * 1000};
    if (event_add(ev, &tv) != 0) {
        event_free(ev);
        return NULL;
    }
    return ev;
}

dds__enhanced *dds__enhanced_new(struct event_base *base, const dds__enhanced_config *cfg,
                                 dds__enhanced_counters *counters) {
    dds__enhanced *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->cfg = *cfg;
    e->counters = counters;
    e->cpu_rl.interval_ms = 60000;
    char skipped[256];
    dds__azure_enhanced_tags(e->tags, sizeof(e->tags), skipped, sizeof(skipped));
    e->tags_len = strlen(e->tags);
    if (skipped[0])
        dds__log_warn(cfg->log, "enhanced metrics: tags left out (invalid value): %s", skipped);
    char instance[DDS__AZURE_VALUE_MAX];
    bool have_instance = dds__azure_instance_name(instance, sizeof(instance));
    if (have_instance) {
        int w = snprintf(e->instance_tags, sizeof(e->instance_tags), "%s%sinstance:%s", e->tags,
                         e->tags_len ? "," : "", instance);
        e->instance_tags_len = w > 0 && (size_t)w < sizeof(e->instance_tags) ? (size_t)w : 0;
    }
    if (cfg->cpu_enabled && !(e->cpu_ev = arm(base, DDS__ENHANCED_CPU_INTERVAL_MS, on_cpu, e))) goto fail;
    if (have_instance && !(e->instance_ev = arm(base, DDS__ENHANCED_INSTANCE_INTERVAL_MS, on_instance, e))) goto fail;
    if (!have_instance)
        dds__log_warn(cfg->log, "enhanced metrics: none of COMPUTERNAME, WEBSITE_POD_NAME, CONTAINER_NAME is set: "
                                "%s is not sent", DDS__ENHANCED_INSTANCE_METRIC);
    return e;
fail:
    dds__enhanced_free(e);
    return NULL;
}

const char *dds__enhanced_tags(const dds__enhanced *e) { return e->tags; }

void dds__enhanced_stop(dds__enhanced *e) {
    if (!e) return;
    if (e->cpu_ev) event_del(e->cpu_ev);
    if (e->instance_ev) event_del(e->instance_ev);
}

void dds__enhanced_free(dds__enhanced *e) {
    if (!e) return;
    if (e->cpu_ev) event_free(e->cpu_ev);
    if (e->instance_ev) event_free(e->instance_ev);
    free(e);
}
