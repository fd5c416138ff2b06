/* cgroup_cpu.h - the cumulative CPU time of this container, read from its cgroup files: the
 * source of azure.functions.enhanced.cpu.usage (PARITY.md section 4). */
#ifndef DDS_ENHANCED_CGROUP_CPU_H
#define DDS_ENHANCED_CGROUP_CPU_H
#include <stddef.h>
#include <stdint.h>

typedef enum dds__cgroup_source {
    DDS__CGROUP_NONE = 0,  /* no readable counter */
    DDS__CGROUP_V1 = 1,    /* cpuacct.usage, nanoseconds */
    DDS__CGROUP_V2 = 2,    /* cpu.stat usage_usec, microseconds */
} dds__cgroup_source;

/* cgroup v1: the whole file is one decimal count of nanoseconds, surrounding whitespace allowed.
 * 0, or -1 for anything else (empty, signs, other bytes, past UINT64_MAX). */
int dds__cgroup_parse_cpuacct_usage(const char *buf, size_t len, uint64_t *ns_out);

/* cgroup v2: the "usage_usec <n>" line of cpu.stat, converted to nanoseconds. 0, or -1 when the
 * line is missing or its value is not a decimal count (or overflows once in nanoseconds). */
int dds__cgroup_parse_cpu_stat(const char *buf, size_t len, uint64_t *ns_out);

/* Read the counter from the first of /sys/fs/cgroup/cpu/cpuacct.usage,
 * /sys/fs/cgroup/cpuacct/cpuacct.usage, /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage (v1) and
 * /sys/fs/cgroup/cpu.stat (v2) that exists. Returns the source it read (*ns_out set), or
 * DDS__CGROUP_NONE when no file exists or the first one that exists holds garbage (a counter
 * from another file would not be comparable with the previous sample). A few small reads; no
 * allocation. Any thread. */
dds__cgroup_source dds__cgroup_cpu_read(uint64_t *ns_out);
#endif
