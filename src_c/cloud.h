/* cloud.h - serverless environment detection, origin tags and the platform facts spans carry
 * (PROTOCOL.md section 6, PARITY.md sections 5 and 6). */
#ifndef DDS_CLOUD_H
#define DDS_CLOUD_H
#include <stddef.h>

typedef enum dds__cloud_kind {
    DDS__CLOUD_NONE = 0,
    DDS__CLOUD_AWS_LAMBDA,
    DDS__CLOUD_AZURE_FUNCTION,
    DDS__CLOUD_GCP_FUNCTION,
    DDS__CLOUD_AZURE_SPRING_APP,
} dds__cloud_kind;

#define DDS__CLOUD_AZURE_ROOT "/home/site/wwwroot"
#define DDS__CLOUD_AAS_TAGS 12
#define DDS__CLOUD_AAS_VALUE_MAX 512

/* One span tag of the Azure App Service metadata: key static, value owned here. */
typedef struct dds__cloud_tag {
    const char *key;
    char value[DDS__CLOUD_AAS_VALUE_MAX];
} dds__cloud_tag;

typedef struct dds__cloud {
    dds__cloud_kind kind;
    const char *origin;          /* "lambda", "azurefunction", "cloudfunction", "azurespringapp"; NULL when none */
    const char *display_name;    /* "AWS Lambda", ... or "no serverless environment" */
    char function_name[256];     /* from the platform's variables, "" when unknown */
    /* Set when more than one platform's signal is present (nothing is then detected, as in the
     * Rust binary): their names, for the log line. Or when Azure Functions' variables are set
     * without WEBSITE_SITE_NAME (Azure is then not a match; another platform may be). "" otherwise. */
    char conflict[160];
    /* Span tags (every span, as the Rust binary's enrich_span_with_mini_agent_metadata):
     * _dd.serverless_compat_version from DD_SERVERLESS_COMPAT_VERSION (set by the wrappers that
     * start the binary), and on Azure Spring Apps asa.hostname (HOSTNAME) and asa.name. "" = none. */
    char compat_version[64];
    char asa_hostname[256];
    char asa_name[256];
    /* Azure Functions: the aas.* tags of every span not named azure.apim (libdd-common
     * AAS_METADATA_FUNCTION get_function_tags, "unknown" where a value is missing). Filled by the
     * caller after detection (services.c, from enhanced/azure_tags.c); naas = 0 elsewhere. */
    dds__cloud_tag aas[DDS__CLOUD_AAS_TAGS];
    size_t naas;
} dds__cloud;

/* Read the environment. Never fails: no signal, or the signals of several platforms, mean
 * DDS__CLOUD_NONE. Caller's thread (at start). */
void dds__cloud_detect(dds__cloud *out);

/* The Rust binary's runtime check of Azure Functions (env_verifier.rs), whose failure makes it
 * exit; here it is reported and everything keeps running. root is the function app's directory
 * (DDS__CLOUD_AZURE_ROOT; tests pass it too): it must hold host.json or function.json, itself
 * or in a subdirectory one level down (node_modules skipped). Then a Flex Consumption plan
 * (WEBSITE_SKU=FlexConsumption) needs DD_AZURE_RESOURCE_GROUP. 0 when both hold; else -1 and
 * msg says what is wrong and what to do. A few directory reads; caller's thread. */
int dds__cloud_verify_azure(const char *root, char *msg, size_t cap);
#endif
