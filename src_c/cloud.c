/* cloud.c - which serverless platform runs us, from its environment variables (PROTOCOL.md
 * section 6). In: the environment. Out: the origin used for tags and spans. Never fails: local
 * development (nothing detected) is a real use and runs the same. */
#include "cloud.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *set(const char *name) {
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

void dds__cloud_detect(dds__cloud *out) {
    memset(out, 0, sizeof(*out));
    const char *name = NULL;
    if (set("AWS_LAMBDA_FUNCTION_NAME")) {
        out->kind = DDS__CLOUD_AWS_LAMBDA;
        out->origin = "lambda";
        out->display_name = "AWS Lambda";
        name = set("AWS_LAMBDA_FUNCTION_NAME");
    } else if (set("FUNCTIONS_EXTENSION_VERSION") && set("FUNCTIONS_WORKER_RUNTIME")) {
        out->kind = DDS__CLOUD_AZURE_FUNCTION;
        out->origin = "azurefunction";
        out->display_name = "Azure Functions";
        name = set("WEBSITE_SITE_NAME");
    } else if ((set("K_SERVICE") && set("FUNCTION_TARGET")) || (set("FUNCTION_NAME") && set("GCP_PROJECT"))) {
        out->kind = DDS__CLOUD_GCP_FUNCTION;
        out->origin = "cloudfunction";
        out->display_name = "Google Cloud Functions";
        name = set("K_SERVICE") ? set("K_SERVICE") : set("FUNCTION_NAME");
    } else if (set("ASCSVCRT_SPRING__APPLICATION__NAME")) {
        out->kind = DDS__CLOUD_AZURE_SPRING_APP;
        out->origin = "azurespringapp";
        out->display_name = "Azure Spring Apps";
        name = set("ASCSVCRT_SPRING__APPLICATION__NAME");
    } else {
        out->display_name = "no serverless environment";
    }
    if (name) snprintf(out->function_name, sizeof(out->function_name), "%s", name);
}
