/* test_cgroup_cpu.c - the cgroup CPU counter: parser tables (each input ends at a guard page), then
 * the real paths under /sys/fs/cgroup laid out in a tmpfs of a private mount namespace: v1 (the
 * usual cpu/ and the split cpuacct/), v2, v1 before v2, garbage, missing files. */
#include <fcntl.h>
#include <sys/stat.h>

#include "enhanced/cgroup_cpu.h"
#include "test.h"

static int parse_v1(const char *s, uint64_t *out) {
    size_t n = strlen(s);
    char *g = test_guarded_copy(s, n);
    int rc = dds__cgroup_parse_cpuacct_usage(g, n, out);
    test_guarded_free(g, n);
    return rc;
}

static int parse_v2(const char *s, uint64_t *out) {
    size_t n = strlen(s);
    char *g = test_guarded_copy(s, n);
    int rc = dds__cgroup_parse_cpu_stat(g, n, out);
    test_guarded_free(g, n);
    return rc;
}

TEST(cpuacct_usage_table) {
    static const struct { const char *in; int rc; uint64_t want; } rows[] = {
        {"12345678\n", 0, 12345678},
        {"  99999  \n", 0, 99999},                           /* the Rust fixture "whitespace" */
        {"0", 0, 0},
        {"18446744073709551615\n", 0, UINT64_MAX},
        {"18446744073709551616\n", -1, 0},                   /* one past UINT64_MAX */
        {"", -1, 0},
        {"\n", -1, 0},
        {"abc\n", -1, 0},                                    /* the Rust fixture "invalid_content" */
        {"-5\n", -1, 0},
        {"+5\n", -1, 0},
        {"12 34\n", -1, 0},
        {"12345678\n0\n", -1, 0},
        {"1.5\n", -1, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        uint64_t got = 0;
        int rc = parse_v1(rows[i].in, &got);
        CHECK_MSG(rc == rows[i].rc, "row %zu: rc %d, want %d", i, rc, rows[i].rc);
        if (rc == 0) CHECK_MSG(got == rows[i].want, "row %zu: %llu", i, (unsigned long long)got);
    }
}

TEST(cpu_stat_table) {
    static const struct { const char *in; int rc; uint64_t want; } rows[] = {
        {"usage_usec 8296673022\nuser_usec 6459474421\nsystem_usec 1837198600\n", 0, 8296673022000ULL},
        {"nr_periods 0\nusage_usec 5\n", 0, 5000},           /* not the first line */
        {"usage_usec 7", 0, 7000},                           /* no final newline */
        {"usage_usec\t7\n", 0, 7000},
        {"user_usec 6\nsystem_usec 1\n", -1, 0},             /* no usage_usec */
        {"usage_usecs 7\n", -1, 0},                          /* another key */
        {"usage_usec\n", -1, 0},
        {"usage_usec x\n", -1, 0},
        {"usage_usec 18446744073709552\n", -1, 0},           /* overflows once in ns */
        {"usage_usec 18446744073709551\n", 0, 18446744073709551000ULL},
        {"", -1, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        uint64_t got = 0;
        int rc = parse_v2(rows[i].in, &got);
        CHECK_MSG(rc == rows[i].rc, "row %zu: rc %d, want %d", i, rc, rows[i].rc);
        if (rc == 0) CHECK_MSG(got == rows[i].want, "row %zu: %llu", i, (unsigned long long)got);
    }
}

static void put(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_MSG(fd >= 0, "create %s: %s", path, strerror(errno));
    if (fd < 0) return;
    CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
    close(fd);
}

static void layouts(void *arg) {
    (void)arg;
    uint64_t ns = 0;
    /* nothing at all (an empty /sys/fs/cgroup) */
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_NONE);
    /* v2 alone */
    put("/sys/fs/cgroup/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_V2);
    CHECK_EQ_INT(ns, 1500000);
    /* v2 garbage */
    put("/sys/fs/cgroup/cpu.stat", "usage_usec lots\n");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_NONE);
    /* v1 split layout (cpu and cpuacct mounted apart, as on this kind of host) wins over v2 */
    put("/sys/fs/cgroup/cpu.stat", "usage_usec 1500\n");
    CHECK_EQ_INT(mkdir("/sys/fs/cgroup/cpuacct", 0755), 0);
    put("/sys/fs/cgroup/cpuacct/cpuacct.usage", "777\n");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_V1);
    CHECK_EQ_INT(ns, 777);
    /* the Rust binary's path first */
    CHECK_EQ_INT(mkdir("/sys/fs/cgroup/cpu", 0755), 0);
    put("/sys/fs/cgroup/cpu/cpuacct.usage", "12345678\n");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_V1);
    CHECK_EQ_INT(ns, 12345678);
    /* garbage in the first file present: no sample (another file's counter is not comparable) */
    put("/sys/fs/cgroup/cpu/cpuacct.usage", "garbage\n");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_NONE);
    /* an empty file */
    put("/sys/fs/cgroup/cpu/cpuacct.usage", "");
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_NONE);
    /* a directory where the file should be is not readable: no sample, no crash */
    CHECK_EQ_INT(unlink("/sys/fs/cgroup/cpu/cpuacct.usage"), 0);
    CHECK_EQ_INT(mkdir("/sys/fs/cgroup/cpu/cpuacct.usage", 0755), 0);
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_NONE);
    /* removed: the next source (cpuacct/) again */
    CHECK_EQ_INT(rmdir("/sys/fs/cgroup/cpu/cpuacct.usage"), 0);
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_V1);
    CHECK_EQ_INT(ns, 777);
    /* a huge cpu.stat is read up to the bound: usage_usec comes first anyway */
    CHECK_EQ_INT(unlink("/sys/fs/cgroup/cpuacct/cpuacct.usage"), 0);
    char big[10000];
    memset(big, 'x', sizeof(big));
    memcpy(big, "usage_usec 42\n", 14);
    big[sizeof(big) - 1] = '\0';
    put("/sys/fs/cgroup/cpu.stat", big);
    CHECK_EQ_INT(dds__cgroup_cpu_read(&ns), DDS__CGROUP_V2);
    CHECK_EQ_INT(ns, 42000);
}

TEST(real_paths_in_a_private_mount_namespace) {
    static const char *const dirs[] = {"/sys/fs/cgroup", NULL};
    if (!test_with_tmpfs_over(dirs, layouts, NULL)) fprintf(stderr, "  (real paths skipped)\n");
}

int main(void) {
    RUN(cpuacct_usage_table);
    RUN(cpu_stat_table);
    RUN(real_paths_in_a_private_mount_namespace);
    return TEST_REPORT();
}
