/* test_azure_tags.c - the enhanced metrics' tags (Rust azure_tags.rs and libdd-common
 * azure_app_services.rs rules): the WEBSITE_OWNER_NAME resource group, precedence, Flex
 * Consumption, skipped values, the instance name. */
#include <stdlib.h>

#include "enhanced/azure_tags.h"
#include "test.h"

static const char *const vars[] = {
    "DD_AZURE_RESOURCE_GROUP", "WEBSITE_RESOURCE_GROUP", "WEBSITE_OWNER_NAME", "WEBSITE_SKU", "WEBSITE_SITE_NAME",
    "REGION_NAME", "DD_SERVICE", "DD_ENV", "DD_VERSION", "DD_SERVERLESS_COMPAT_VERSION", "COMPUTERNAME",
    "WEBSITE_POD_NAME", "CONTAINER_NAME", "WEBSITE_INSTANCE_ID", "WEBSITE_OS", "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION", "FUNCTIONS_EXTENSION_VERSION",
};

static void clear(void) {
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) unsetenv(vars[i]);
}

TEST(owner_resource_group_table) {
    static const struct { const char *owner, *want; } rows[] = {
        {"8c56d827-5f07-45ce-8f2b-6c5001db5c6f+apm-dotnet-EastUSwebspace", "apm-dotnet"},
        {"00000000-0000-0000-0000-000000000000+test-rg-EastUSwebspace-Linux", "test-rg"},
        {"sub+my-rg-francecentralwebspace", "my-rg"},
        {"sub+a+b-cwebspace", "b"},           /* the last '+' that fits */
        {"sub+rg-region", NULL},              /* no webspace */
        {"sub+rgwebspace", NULL},             /* no '-' before it */
        {"sub+rg-webspace", NULL},            /* nothing between '-' and webspace */
        {"+rg-xwebspace", NULL},              /* nothing before '+' */
        {"sub", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        char got[64] = "";
        bool ok = dds__azure_owner_resource_group(rows[i].owner, got, sizeof(got));
        if (rows[i].want)
            CHECK_MSG(ok && strcmp(got, rows[i].want) == 0, "row %zu: %s -> %s", i, rows[i].owner, ok ? got : "(none)");
        else
            CHECK_MSG(!ok, "row %zu: %s -> %s, want none", i, rows[i].owner, got);
    }
    char small[4];
    CHECK(!dds__azure_owner_resource_group("sub+toolong-xwebspace", small, sizeof(small)));
}

TEST(resource_group_precedence_and_flex) {
    clear();
    char rg[64];
    setenv("WEBSITE_OWNER_NAME", "sub+owner-rg-EastUSwebspace", 1);
    dds__azure_resource_group(rg, sizeof(rg));
    CHECK_EQ_STR(rg, "owner-rg");
    setenv("WEBSITE_SKU", "FlexConsumption", 1);  /* the owner name is not trusted there */
    dds__azure_resource_group(rg, sizeof(rg));
    CHECK_EQ_STR(rg, "");
    setenv("WEBSITE_RESOURCE_GROUP", " site-rg ", 1);
    dds__azure_resource_group(rg, sizeof(rg));
    CHECK_EQ_STR(rg, "site-rg");
    setenv("DD_AZURE_RESOURCE_GROUP", "dd-rg", 1);
    dds__azure_resource_group(rg, sizeof(rg));
    CHECK_EQ_STR(rg, "dd-rg");
    clear();
}

TEST(tags_in_order_skipping_empty_unknown_and_invalid) {
    clear();
    char tags[DDS__AZURE_TAGS_MAX], skipped[256];
    CHECK_EQ_INT(dds__azure_enhanced_tags(tags, sizeof(tags), skipped, sizeof(skipped)), 0);
    CHECK_EQ_STR(tags, "");
    CHECK_EQ_STR(skipped, "");

    setenv("WEBSITE_OWNER_NAME", "sub-123+my-rg-EastUSwebspace-Linux", 1);
    setenv("WEBSITE_SITE_NAME", "my-func", 1);
    setenv("REGION_NAME", "East US", 1);
    setenv("WEBSITE_SKU", "Dynamic", 1);
    setenv("DD_SERVICE", "svc", 1);           /* the configuration's, as base tags: not here */
    setenv("DD_SERVERLESS_COMPAT_VERSION", "1.2.3", 1);
    CHECK_EQ_INT(dds__azure_enhanced_tags(tags, sizeof(tags), skipped, sizeof(skipped)), 6);
    CHECK_EQ_STR(tags, "resource_group:my-rg,subscription_id:sub-123,name:my-func,region:East US,"
                       "plan_tier:Dynamic,serverless_compat_version:1.2.3");
    CHECK_EQ_STR(skipped, "");

    setenv("WEBSITE_SITE_NAME", "unknown", 1);        /* the App Service "unknown" placeholder */
    setenv("REGION_NAME", "a,b", 1);                  /* would split the tag list */
    setenv("DD_SERVERLESS_COMPAT_VERSION", "bad:", 1); /* ends with ':' */
    setenv("WEBSITE_SKU", "", 1);                     /* empty: left out */
    setenv("WEBSITE_OWNER_NAME", "no-plus", 1);
    dds__azure_enhanced_tags(tags, sizeof(tags), skipped, sizeof(skipped));
    CHECK_EQ_STR(tags, "subscription_id:no-plus");
    CHECK_EQ_STR(skipped, "region,serverless_compat_version");
    clear();
}

TEST(instance_name) {
    clear();
    char name[64];
    CHECK(!dds__azure_instance_name(name, sizeof(name)));
    setenv("CONTAINER_NAME", "Container-1", 1);
    CHECK(dds__azure_instance_name(name, sizeof(name)));
    CHECK_EQ_STR(name, "container-1");
    setenv("WEBSITE_POD_NAME", "Pod-2", 1);
    CHECK(dds__azure_instance_name(name, sizeof(name)));
    CHECK_EQ_STR(name, "pod-2");
    setenv("COMPUTERNAME", " LW1SDLWK000ABC ", 1);
    CHECK(dds__azure_instance_name(name, sizeof(name)));
    CHECK_EQ_STR(name, "lw1sdlwk000abc");
    clear();
}

static const char *aas(const dds__cloud *c, const char *key) {
    for (size_t i = 0; i < c->naas; i++)
        if (strcmp(c->aas[i].key, key) == 0) return c->aas[i].value;
    return NULL;
}

TEST(function_span_tags) {
    clear();
    dds__cloud c;
    memset(&c, 0, sizeof(c));
    dds__azure_function_span_tags(&c);
    CHECK_EQ_INT(c.naas, 12);
    CHECK_EQ_STR(aas(&c, "aas.environment.instance_id"), "unknown");
    CHECK_EQ_STR(aas(&c, "aas.environment.os"), "linux");
    CHECK_EQ_STR(aas(&c, "aas.resource.id"), "unknown");
    CHECK_EQ_STR(aas(&c, "aas.site.kind"), "functionapp");
    CHECK_EQ_STR(aas(&c, "aas.site.type"), "function");
    CHECK_EQ_STR(aas(&c, "aas.subscription.id"), "unknown");

    setenv("WEBSITE_INSTANCE_ID", "inst-1", 1);
    setenv("COMPUTERNAME", "Host-A", 1);
    setenv("WEBSITE_OS", "windows", 1);
    setenv("FUNCTIONS_WORKER_RUNTIME", "node", 1);
    setenv("FUNCTIONS_WORKER_RUNTIME_VERSION", "20", 1);
    setenv("FUNCTIONS_EXTENSION_VERSION", "~4", 1);
    setenv("WEBSITE_OWNER_NAME", "8C56D827-5F07+My-RG-EastUSwebspace", 1);
    setenv("WEBSITE_SITE_NAME", "My-Func", 1);
    dds__azure_function_span_tags(&c);
    CHECK_EQ_INT(c.naas, 12);
    CHECK_EQ_STR(aas(&c, "aas.environment.instance_id"), "inst-1");
    CHECK_EQ_STR(aas(&c, "aas.environment.instance_name"), "Host-A");  /* as set, unlike the metric tag */
    CHECK_EQ_STR(aas(&c, "aas.environment.os"), "windows");
    CHECK_EQ_STR(aas(&c, "aas.environment.runtime"), "node");
    CHECK_EQ_STR(aas(&c, "aas.environment.runtime_version"), "20");
    CHECK_EQ_STR(aas(&c, "aas.environment.function_runtime"), "~4");
    CHECK_EQ_STR(aas(&c, "aas.resource.group"), "My-RG");
    CHECK_EQ_STR(aas(&c, "aas.resource.id"),
                 "/subscriptions/8c56d827-5f07/resourcegroups/my-rg/providers/microsoft.web/sites/my-func");
    CHECK_EQ_STR(aas(&c, "aas.site.name"), "My-Func");
    CHECK_EQ_STR(aas(&c, "aas.subscription.id"), "8C56D827-5F07");
    clear();
}

int main(void) {
    RUN(owner_resource_group_table);
    RUN(resource_group_precedence_and_flex);
    RUN(tags_in_order_skipping_empty_unknown_and_invalid);
    RUN(instance_name);
    RUN(function_span_tags);
    return TEST_REPORT();
}
