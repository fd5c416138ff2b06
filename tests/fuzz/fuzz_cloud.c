/* fuzz_cloud.c - the parsers of platform facts read from outside: the Google metadata document
 * (the network), the cgroup CPU files, WEBSITE_OWNER_NAME and DD_TAGS (the environment). The
 * first byte picks the parser; each must stay within its input and give a clean answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_gcp.h"
#include "config.h"
#include "enhanced/azure_tags.h"
#include "enhanced/cgroup_cpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t which = data[0] % 5;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    /* An exact-size copy: reading one byte past it is an ASan error. */
    char *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, in, n);
    char *cstr = malloc(n + 1);
    if (!cstr) {
        free(buf);
        return 0;
    }
    memcpy(cstr, in, n);
    cstr[n] = '\0';
    switch (which) {
    case 0: {
        dds__gcp_metadata md;
        if (dds__gcp_parse_metadata(buf, n, &md) != 0 && (strcmp(md.project_id, "unknown") || strcmp(md.region, "unknown")))
            abort();
        if (strlen(md.project_id) >= sizeof(md.project_id) || strlen(md.region) >= sizeof(md.region)) abort();
        break;
    }
    case 1: {
        uint64_t ns;
        (void)dds__cgroup_parse_cpuacct_usage(buf, n, &ns);
        (void)dds__cgroup_parse_cpu_stat(buf, n, &ns);
        break;
    }
    case 2: {
        char rg[64], region[64];
        if (dds__azure_owner_resource_group(cstr, rg, sizeof(rg)) && (!rg[0] || strlen(rg) >= sizeof(rg))) abort();
        dds__gcp_region_of(cstr, region, sizeof(region));
        break;
    }
    default: {
        char *tags = dds__config_function_tags(cstr);
        if (tags && strlen(tags) > n) abort();
        free(tags);
        break;
    }
    }
    free(cstr);
    free(buf);
    return 0;
}
