/* test_collector.c - the enhanced metrics collector: the CPU rate rules (first reading primes,
 * counter going down or no elapsed time skipped), then both timers on a real event loop reading
 * the real /sys/fs/cgroup paths (a tmpfs in a private mount namespace), with the samples the
 * aggregator would get. */
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "cloud_gcp.h"
#include "config.h"
#include "enhanced/collector.h"
#include "test.h"

TEST(cpu_rate_rules) {
    dds__cpu_rate st = {0};
    double nc = -1;
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 1000000000, 0, &nc), DDS__CPU_PRIMED);
    /* the Rust test vector: 1e9 ns more in 1 s is one core */
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 2000000000, 1000000000, &nc), DDS__CPU_RATE);
    CHECK_EQ_DBL(nc, 1e9, 1e-3);
    /* half a core over 2 s */
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 3000000000, 3000000000, &nc), DDS__CPU_RATE);
    CHECK_EQ_DBL(nc, 5e8, 1e-3);
    /* idle */
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 3000000000, 4000000000, &nc), DDS__CPU_RATE);
    CHECK_EQ_DBL(nc, 0, 0);
    /* counter went down: skipped, and the next rate is against the lower reading */
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 1000, 5000000000, &nc), DDS__CPU_SKIPPED);
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 1000 + 250000000, 6000000000, &nc), DDS__CPU_RATE);
    CHECK_EQ_DBL(nc, 2.5e8, 1e-3);
    /* no elapsed time (or a clock going back) */
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 2000000000, 6000000000, &nc), DDS__CPU_SKIPPED);
    CHECK_EQ_INT(dds__cpu_rate_step(&st, 3000000000, 5000000000, &nc), DDS__CPU_SKIPPED);
}

typedef struct sample {
    char name[64];
    bool distribution;
    double value;
    char tags[512];
} sample;

typedef struct run {
    struct event_base *base;
    sample got[32];
    int n;
    int step;
} run;

static void on_sample(void *user, const char *name, bool distribution, double value, const char *tags, size_t len) {
    run *r = user;
    if (r->n == 32) return;
    sample *s = &r->got[r->n++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->distribution = distribution;
    s->value = value;
    snprintf(s->tags, sizeof(s->tags), "%.*s", (int)len, tags);
}

static void put(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_MSG(fd >= 0, "create %s: %s", path, strerror(errno));
    if (fd < 0) return;
    CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
    close(fd);
}

/* Every 500 ms, between the collector's 1 s ticks (which start at t=1 s): the counter moves. */
static void on_script(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    run *r = arg;
    switch (++r->step) {
    case 1: put("/sys/fs/cgroup/cpu/cpuacct.usage", "1000000000\n"); break;     /* t=0.5: primed at 1 */
    case 3: put("/sys/fs/cgroup/cpu/cpuacct.usage", "3000000000\n"); break;     /* t=1.5: +2e9 at 2 */
    case 5: put("/sys/fs/cgroup/cpu/cpuacct.usage", "5\n"); break;              /* t=2.5: down at 3 */
    case 7: event_base_loopbreak(r->base); break;                              /* t=3.5 */
    }
}

static void loop_in_namespace(void *arg) {
    bool cpu_enabled = *(bool *)arg;
    CHECK_EQ_INT(mkdir("/sys/fs/cgroup/cpu", 0755), 0);
    setenv("WEBSITE_SITE_NAME", "my-func", 1);
    setenv("WEBSITE_OWNER_NAME", "sub+rg-EastUSwebspace", 1);
    setenv("COMPUTERNAME", "HOST-A", 1);
    run r = {.base = event_base_new()};
    dds__enhanced_counters ctr = {0};
    dds__logger lg = {.level = DDS_LOG_OFF};
    dds__enhanced_config cfg = {.cpu_enabled = cpu_enabled, .submit = on_sample, .user = &r, .log = &lg};
    dds__enhanced *e = dds__enhanced_new(r.base, &cfg, &ctr);
    CHECK(e != NULL);
    if (!e) return;
    CHECK_EQ_STR(dds__enhanced_tags(e), "resource_group:rg,subscription_id:sub,name:my-func");
    struct event *script = event_new(r.base, -1, EV_PERSIST, on_script, &r);
    struct timeval half = {0, 500000};
    event_add(script, &half);
    event_base_dispatch(r.base);

    int cpu = 0, inst = 0;
    for (int i = 0; i < r.n; i++) {
        if (strcmp(r.got[i].name, DDS__ENHANCED_CPU_METRIC) == 0) {
            cpu++;
            CHECK(r.got[i].distribution);
            /* 2e9 ns over about 1 s: about two cores, whatever the timer's jitter */
            CHECK_MSG(r.got[i].value > 1.5e9 && r.got[i].value < 2.6e9, "cpu %g", r.got[i].value);
            CHECK_EQ_STR(r.got[i].tags, "resource_group:rg,subscription_id:sub,name:my-func");
        } else {
            inst++;
            CHECK_EQ_STR(r.got[i].name, DDS__ENHANCED_INSTANCE_METRIC);
            CHECK(!r.got[i].distribution);
            CHECK_EQ_DBL(r.got[i].value, 1, 0);
            CHECK_EQ_STR(r.got[i].tags, "resource_group:rg,subscription_id:sub,name:my-func,instance:host-a");
        }
    }
    CHECK_EQ_INT(cpu, cpu_enabled ? 1 : 0);  /* t=1 primes, t=2 sends, t=3 goes down */
    CHECK_EQ_INT(inst, 1);                   /* t=3 */
    CHECK_EQ_INT(dds__counter_get(&ctr.samples), cpu + inst);
    CHECK_EQ_INT(dds__counter_get(&ctr.cpu_skipped), cpu_enabled ? 1 : 0);
    CHECK_EQ_INT(dds__counter_get(&ctr.cpu_unavailable), 0);
    dds__enhanced_stop(e);
    dds__enhanced_free(e);
    event_free(script);
    event_base_free(r.base);
}

TEST(timers_on_a_loop) {
    static const char *const dirs[] = {"/sys/fs/cgroup", NULL};
    bool on = true, off = false;
    if (!test_with_tmpfs_over(dirs, loop_in_namespace, &on)) fprintf(stderr, "  (skipped)\n");
    if (!test_with_tmpfs_over(dirs, loop_in_namespace, &off)) fprintf(stderr, "  (skipped)\n");
}

/* Nothing readable: each tick is counted, nothing is sent, nothing breaks. */
static void no_cgroup(void *arg) {
    (void)arg;
    unsetenv("COMPUTERNAME");
    unsetenv("WEBSITE_POD_NAME");
    unsetenv("CONTAINER_NAME");
    run r = {.base = event_base_new()};
    dds__enhanced_counters ctr = {0};
    dds__logger lg = {.level = DDS_LOG_OFF};
    dds__enhanced_config cfg = {.cpu_enabled = true, .submit = on_sample, .user = &r, .log = &lg};
    dds__enhanced *e = dds__enhanced_new(r.base, &cfg, &ctr);
    CHECK(e != NULL);
    struct timeval t = {2, 300000};
    event_base_loopexit(r.base, &t);
    event_base_dispatch(r.base);
    CHECK_EQ_INT(r.n, 0);
    CHECK_EQ_INT(dds__counter_get(&ctr.cpu_unavailable), 2);
    dds__enhanced_free(e);
    event_base_free(r.base);
}

TEST(no_cgroup_counter) {
    static const char *const dirs[] = {"/sys/fs/cgroup", NULL};
    if (!test_with_tmpfs_over(dirs, no_cgroup, NULL)) fprintf(stderr, "  (skipped)\n");
}

/* ---- allocation failures: every allocation of the start-time constructors fails once --------
 * Needs to replace malloc, which ASan/TSan own: only in builds without them (glibc). */
#include "alloc_hook.h"
#ifdef ALLOC_HOOK

static void nop_done(void *user, dds__gcp_result r, const dds__gcp_metadata *md, const char *why) {
    (void)user, (void)r, (void)md, (void)why;
}

/* One constructor run: 1 when it gave an object (then freed), 0 when it failed cleanly. */
static int construct(int which, struct event_base *base) {
    switch (which) {
    case 0: {
        dds__enhanced_counters ctr = {0};
        dds__logger lg = {.level = DDS_LOG_OFF};
        run r = {.base = base};
        dds__enhanced_config cfg = {.cpu_enabled = true, .submit = on_sample, .user = &r, .log = &lg};
        dds__enhanced *e = dds__enhanced_new(base, &cfg, &ctr);
        dds__enhanced_free(e);
        return e != NULL;
    }
    case 1: {
        char *t = dds__config_function_tags("b:2 a:1,c:3:3,a:0");
        int ok = t != NULL && strcmp(t, "a:0,b:2") == 0;
        CHECK(t == NULL || ok);
        free(t);
        return ok;
    }
    default: {
        dds__gcp_check *c = dds__gcp_check_start(base, "127.0.0.1", 9, "/", 100, nop_done, NULL);
        dds__gcp_check_free(c);
        /* libevent releases some of a cancelled connection's parts from the loop */
        event_base_loop(base, EVLOOP_NONBLOCK);
        return c != NULL;
    }
    }
}

typedef struct cons_arg {
    int which;
    struct event_base *base;
} cons_arg;
static void cons_step(void *p) {
    cons_arg *a = p;
    construct(a->which, a->base);
}

TEST(allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    setenv("COMPUTERNAME", "host", 1);
    struct event_base *base = event_base_new();
    for (int which = 0; which < 3; which++) {
        construct(which, base);  /* the base grows its own tables (timer heap) once */
        long live_before = alloc_live;
        CHECK_EQ_INT(construct(which, base), 1);
        CHECK_EQ_INT(alloc_live, live_before);
        /* The Google check: only the balance above. libevent 2.1's evhttp_connection_base_new
         * crashes in its own cleanup when one of its allocations fails (evhttp_connection_free
         * on the half-built connection), before our code can do anything. */
        if (which == 2) continue;
        cons_arg a = {.which = which, .base = base};
        char what[32];
        snprintf(what, sizeof(what), "constructor %d", which);
        long total = alloc_fail_each(cons_step, &a, 10000, what);
        CHECK(total == 0 || total >= 1);
    }
    event_base_free(base);
    unsetenv("COMPUTERNAME");
}
#else
TEST(allocation_failures) {}
#endif

int main(void) {
    RUN(cpu_rate_rules);
    RUN(allocation_failures);
    RUN(timers_on_a_loop);
    RUN(no_cgroup_counter);
    return TEST_REPORT();
}
