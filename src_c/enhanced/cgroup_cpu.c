/* cgroup_cpu.c - cumulative CPU nanoseconds of this container from cgroup v1 (cpuacct.usage) or
 * v2 (cpu.stat usage_usec). In: the files under /sys/fs/cgroup. Out: one counter. Never trusts
 * the content: anything but a decimal count is "no sample", never a crash or a wrapped value. */
#include "enhanced/cgroup_cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* cpu.stat is a dozen short lines; cpuacct.usage one number. A file longer than this is read up
 * to the bound: usage_usec is the first line of cpu.stat. */
#define CGROUP_READ_MAX 4096

static const char *const v1_paths[] = {
    "/sys/fs/cgroup/cpu/cpuacct.usage",          /* the Rust binary's only source */
    "/sys/fs/cgroup/cpuacct/cpuacct.usage",      /* cpu and cpuacct mounted apart */
    "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage",  /* co-mounted without the usual symlinks */
};
static const char v2_path[] = "/sys/fs/cgroup/cpu.stat";

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Digits only, at least one, no overflow. */
static int parse_u64(const char *p, const char *end, uint64_t *out) {
    if (p == end) return -1;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int dds__cgroup_parse_cpuacct_usage(const char *buf, size_t len, uint64_t *ns_out) {
    const char *p = buf, *end = buf + len;
    while (p < end && is_space(*p)) p++;
    while (end > p && is_space(end[-1])) end--;
    return parse_u64(p, end, ns_out);
}

int dds__cgroup_parse_cpu_stat(const char *buf, size_t len, uint64_t *ns_out) {
    static const char key[] = "usage_usec";
    const size_t klen = sizeof(key) - 1;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0 && (p[klen] == ' ' || p[klen] == '\t')) {
            const char *v = p + klen;
            const char *ve = eol;
            while (v < ve && is_space(*v)) v++;
            while (ve > v && is_space(ve[-1])) ve--;
            uint64_t us;
            if (parse_u64(v, ve, &us) != 0 || us > UINT64_MAX / 1000) return -1;
            *ns_out = us * 1000;
            return 0;
        }
        p = nl ? nl + 1 : end;
    }
    return -1;
}

/* 1 read into buf (NUL not added), 0 no such file, -1 it exists but cannot be read. */
static int read_file(const char *path, char *buf, size_t cap, size_t *len) {
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return 1;
}

dds__cgroup_source dds__cgroup_cpu_read(uint64_t *ns_out) {
    char buf[CGROUP_READ_MAX];
    size_t len = 0;
    for (size_t i = 0; i < sizeof(v1_paths) / sizeof(*v1_paths); i++) {
        int r = read_file(v1_paths[i], buf, sizeof(buf), &len);
        if (r == 0) continue;
        if (r < 0 || dds__cgroup_parse_cpuacct_usage(buf, len, ns_out) != 0) return DDS__CGROUP_NONE;
        return DDS__CGROUP_V1;
    }
    int r = read_file(v2_path, buf, sizeof(buf), &len);
    if (r <= 0 || dds__cgroup_parse_cpu_stat(buf, len, ns_out) != 0) return DDS__CGROUP_NONE;
    return DDS__CGROUP_V2;
}
