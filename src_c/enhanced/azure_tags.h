/* azure_tags.h - the tags of the Azure Functions enhanced metrics and the App Service facts they
 * come from (PARITY.md section 4, libdd-common azure_app_services.rs). */
#ifndef DDS_ENHANCED_AZURE_TAGS_H
#define DDS_ENHANCED_AZURE_TAGS_H
#include <stdbool.h>
#include <stddef.h>

#include "cloud.h"

/* Enough for every tag at its longest useful length; a longer tag is skipped, not cut. */
#define DDS__AZURE_TAGS_MAX 2048
#define DDS__AZURE_VALUE_MAX 256

/* The resource group in WEBSITE_OWNER_NAME ("<subscription>+<group>-<region>webspace[-Linux]"),
 * as the regex .+\+(.+)-.+webspace(-Linux)? captures it (greedy, unanchored). true and out set,
 * or false when the value does not have that shape (or the group does not fit cap). */
bool dds__azure_owner_resource_group(const char *owner, char *out, size_t cap);

/* The resource group: DD_AZURE_RESOURCE_GROUP, else WEBSITE_RESOURCE_GROUP, else the one in
 * WEBSITE_OWNER_NAME unless WEBSITE_SKU is FlexConsumption (whose owner name does not carry
 * it). Values trimmed; "" when unknown. Reads the environment: caller's thread, at start. */
void dds__azure_resource_group(char *out, size_t cap);

/* The instance name, lower-cased: COMPUTERNAME, else WEBSITE_POD_NAME, else CONTAINER_NAME
 * (trimmed). false when none is set. Reads the environment. */
bool dds__azure_instance_name(char *out, size_t cap);

/* The common tags of every enhanced metric, comma-joined into out (NUL-terminated): resource_group,
 * subscription_id (WEBSITE_OWNER_NAME up to the first '+'), name (WEBSITE_SITE_NAME), region
 * (REGION_NAME), plan_tier (WEBSITE_SKU) and serverless_compat_version
 * (DD_SERVERLESS_COMPAT_VERSION). Empty values and "unknown" are left out; a value that would
 * make an invalid tag (ending with ':', holding a ',' or a control byte, or too long) is left out
 * and its tag name appended to skipped (comma-joined, for a warning). service, env, version and
 * the origin tags are the aggregator's base tags (from the configuration, as on every metric).
 * Returns the number of tags. Reads the environment: caller's thread, at start. */
size_t dds__azure_enhanced_tags(char *out, size_t cap, char *skipped, size_t skipped_cap);

/* The Azure Functions span tags into cloud->aas (cloud->naas = 12), in libdd-common's order:
 * aas.environment.instance_id (WEBSITE_INSTANCE_ID), .instance_name (COMPUTERNAME), .os
 * (WEBSITE_OS, else "linux"), .runtime (FUNCTIONS_WORKER_RUNTIME), .runtime_version
 * (FUNCTIONS_WORKER_RUNTIME_VERSION), .function_runtime (FUNCTIONS_EXTENSION_VERSION),
 * aas.resource.group, aas.resource.id (/subscriptions/<sub>/resourcegroups/<group>/providers/
 * microsoft.web/sites/<site>, lower-cased, when all three are known), aas.site.kind
 * "functionapp", aas.site.name, aas.site.type "function", aas.subscription.id; "unknown" for a
 * missing value, as the Rust binary sends it. Reads the environment: caller's thread, at start. */
void dds__azure_function_span_tags(dds__cloud *cloud);
#endif
