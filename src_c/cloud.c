/* cloud.c - which serverless platform runs us, from its environment variables (PROTOCOL.md
 * section 6, PARITY.md section 6). In: the environment. Out: the origin used for tags and spans.
 * Never fails: local development (nothing detected) is a real use and runs the same. */
#include "cloud.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *set(const char *name) {
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

typedef struct match {
    dds__cloud_kind kind;
    const char *origin, *display_name, *name;
} match;

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

void dds__cloud_detect(dds__cloud *out) {
    memset(out, 0, sizeof(*out));
    match m[4];
    size_t n = 0;
    /* Every platform is checked and exactly one must match: two platforms' variables at once
     * (a copied environment, a test harness) say nothing reliable about where we run. */
    if (set("AWS_LAMBDA_FUNCTION_NAME"))
        m[n++] = (match){DDS__CLOUD_AWS_LAMBDA, "lambda", "AWS Lambda", set("AWS_LAMBDA_FUNCTION_NAME")};
    if (set("FUNCTIONS_EXTENSION_VERSION") && set("FUNCTIONS_WORKER_RUNTIME")) {
        if (set("WEBSITE_SITE_NAME"))
            m[n++] = (match){DDS__CLOUD_AZURE_FUNCTION, "azurefunction", "Azure Functions", set("WEBSITE_SITE_NAME")};
        else
            copy(out->conflict, sizeof(out->conflict),
                 "Azure Functions variables are set but WEBSITE_SITE_NAME is not");
    }
    if ((set("K_SERVICE") && set("FUNCTION_TARGET")) || (set("FUNCTION_NAME") && set("GCP_PROJECT")))
        m[n++] = (match){DDS__CLOUD_GCP_FUNCTION, "cloudfunction", "Google Cloud Functions",
                         set("K_SERVICE") ? set("K_SERVICE") : set("FUNCTION_NAME")};
    if (set("ASCSVCRT_SPRING__APPLICATION__NAME"))
        m[n++] = (match){DDS__CLOUD_AZURE_SPRING_APP, "azurespringapp", "Azure Spring Apps",
                         set("ASCSVCRT_SPRING__APPLICATION__NAME")};
    copy(out->compat_version, sizeof(out->compat_version), set("DD_SERVERLESS_COMPAT_VERSION"));
    if (n != 1) {
        out->display_name = "no serverless environment";
        if (n > 1) {
            size_t len =
                (size_t)snprintf(out->conflict, sizeof(out->conflict), "the variables of several platforms are set:");
            for (size_t i = 0; i < n && len < sizeof(out->conflict); i++)
                len += (size_t)snprintf(out->conflict + len, sizeof(out->conflict) - len, "%s %s", i ? "," : "",
                                        m[i].display_name);
        }
        return;
    }
    out->kind = m[0].kind;
    out->origin = m[0].origin;
    out->display_name = m[0].display_name;
    copy(out->function_name, sizeof(out->function_name), m[0].name);
    if (out->kind == DDS__CLOUD_AZURE_SPRING_APP) {
        copy(out->asa_hostname, sizeof(out->asa_hostname), set("HOSTNAME"));
        copy(out->asa_name, sizeof(out->asa_name), m[0].name);
    }
}

static bool is_marker(const char *name) { return strcmp(name, "host.json") == 0 || strcmp(name, "function.json") == 0; }

/* 1 found, 0 not found, -errno when root cannot be listed. Subdirectories that cannot be
 * listed are passed over (the Rust binary fails on them; a marker elsewhere is still proof). */
static int find_marker(const char *root) {
    DIR *d = opendir(root);
    if (!d) return -errno;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "node_modules") == 0)
            continue;
        if (is_marker(e->d_name)) {
            found = 1;
            break;
        }
        if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", root, e->d_name) >= sizeof(sub)) continue;
        DIR *sd = opendir(sub);
        if (!sd) continue;
        struct dirent *se;
        while ((se = readdir(sd)) != NULL)
            if (is_marker(se->d_name)) {
                found = 1;
                break;
            }
        closedir(sd);
    }
    closedir(d);
    return found;
}

int dds__cloud_verify_azure(const char *root, char *msg, size_t cap) {
    int r = find_marker(root);
    if (r < 0) {
        snprintf(msg, cap, "Azure Functions detected, but %s cannot be listed (%s): this does not look like a "
                           "function app; running anyway", root, strerror(-r));
        return -1;
    }
    if (r == 0) {
        snprintf(msg, cap, "Azure Functions detected, but %s holds no host.json or function.json: this does not "
                           "look like a function app; running anyway", root);
        return -1;
    }
    const char *sku = set("WEBSITE_SKU");
    if (sku && strcmp(sku, "FlexConsumption") == 0 && !getenv("DD_AZURE_RESOURCE_GROUP")) {
        snprintf(msg, cap, "Azure Flex Consumption plan without DD_AZURE_RESOURCE_GROUP: add your resource group "
                           "name as the app setting DD_AZURE_RESOURCE_GROUP (the resource_group tag is missing "
                           "until then); running anyway");
        return -1;
    }
    return 0;
}
