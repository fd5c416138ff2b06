/* Tests of src_c/cloud.c: each platform's signal (PROTOCOL.md section 6), nothing detected,
 * exactly one platform (PARITY.md section 6), the span facts, and the Azure Functions runtime
 * check against the real /home/site/wwwroot (a tmpfs over /home in a private mount namespace). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cloud.h"
#include "test.h"

static const char *const vars[] = {
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_SITE_NAME", "K_SERVICE", "FUNCTION_TARGET", "FUNCTION_NAME",
    "GCP_PROJECT", "ASCSVCRT_SPRING__APPLICATION__NAME", "DD_SERVERLESS_COMPAT_VERSION", "HOSTNAME",
    "WEBSITE_SKU", "DD_AZURE_RESOURCE_GROUP",
};

static void clear(void) {
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) unsetenv(vars[i]);
}

TEST(nothing_detected) {
    clear();
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_NONE);
    CHECK(c.origin == NULL);
    CHECK_EQ_STR(c.function_name, "");
}

TEST(aws_lambda) {
    clear();
    setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout", 1);
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_AWS_LAMBDA);
    CHECK_EQ_STR(c.origin, "lambda");
    CHECK_EQ_STR(c.function_name, "checkout");
}

TEST(azure_functions_needs_both_variables) {
    clear();
    setenv("FUNCTIONS_EXTENSION_VERSION", "~4", 1);
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_NONE);
    setenv("FUNCTIONS_WORKER_RUNTIME", "node", 1);
    setenv("WEBSITE_SITE_NAME", "my-site", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_AZURE_FUNCTION);
    CHECK_EQ_STR(c.origin, "azurefunction");
    CHECK_EQ_STR(c.function_name, "my-site");
}

TEST(google_cloud_functions_both_generations) {
    clear();
    dds__cloud c;
    setenv("K_SERVICE", "svc", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_NONE); /* K_SERVICE alone is Cloud Run, not a function */
    setenv("FUNCTION_TARGET", "handler", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_GCP_FUNCTION);
    CHECK_EQ_STR(c.origin, "cloudfunction");
    CHECK_EQ_STR(c.function_name, "svc");
    clear();
    setenv("FUNCTION_NAME", "legacy", 1);
    setenv("GCP_PROJECT", "proj", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_GCP_FUNCTION);
    CHECK_EQ_STR(c.function_name, "legacy");
}

TEST(azure_spring_apps) {
    clear();
    setenv("ASCSVCRT_SPRING__APPLICATION__NAME", "spring-app", 1);
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_AZURE_SPRING_APP);
    CHECK_EQ_STR(c.origin, "azurespringapp");
    CHECK_EQ_STR(c.function_name, "spring-app");
    clear();
}

TEST(exactly_one_platform) {
    clear();
    dds__cloud c;
    setenv("AWS_LAMBDA_FUNCTION_NAME", "fn", 1);
    setenv("ASCSVCRT_SPRING__APPLICATION__NAME", "spring-app", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_NONE);
    CHECK(c.origin == NULL);
    CHECK_EQ_STR(c.function_name, "");
    CHECK(strstr(c.conflict, "AWS Lambda") && strstr(c.conflict, "Azure Spring Apps"));
    unsetenv("AWS_LAMBDA_FUNCTION_NAME");
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_AZURE_SPRING_APP);
    CHECK_EQ_STR(c.conflict, "");
    clear();
}

TEST(azure_functions_without_site_name_is_not_detected) {
    clear();
    setenv("FUNCTIONS_EXTENSION_VERSION", "~4", 1);
    setenv("FUNCTIONS_WORKER_RUNTIME", "python", 1);
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_NONE);
    CHECK(strstr(c.conflict, "WEBSITE_SITE_NAME") != NULL);
    /* not a match, so not a conflict with another platform (the Rust binary's read_cloud_env) */
    setenv("AWS_LAMBDA_FUNCTION_NAME", "fn", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_INT(c.kind, DDS__CLOUD_AWS_LAMBDA);
    CHECK(strstr(c.conflict, "WEBSITE_SITE_NAME") != NULL);
    clear();
}

TEST(span_facts) {
    clear();
    setenv("DD_SERVERLESS_COMPAT_VERSION", "1.2.3", 1);
    setenv("HOSTNAME", "pod-1", 1);
    dds__cloud c;
    dds__cloud_detect(&c);
    CHECK_EQ_STR(c.compat_version, "1.2.3");  /* whatever the platform, none included */
    CHECK_EQ_STR(c.asa_hostname, "");         /* Spring Apps only */
    setenv("ASCSVCRT_SPRING__APPLICATION__NAME", "spring-app", 1);
    dds__cloud_detect(&c);
    CHECK_EQ_STR(c.asa_hostname, "pod-1");
    CHECK_EQ_STR(c.asa_name, "spring-app");
    clear();
}

static void write_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_MSG(fd >= 0, "create %s", path);
    if (fd >= 0) close(fd);
}

static void azure_root_layouts(void *arg) {
    (void)arg;
    char msg[512];
    const char *root = DDS__CLOUD_AZURE_ROOT;
    /* no directory at all */
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), -1);
    CHECK(strstr(msg, "cannot be listed") != NULL);
    CHECK_EQ_INT(mkdir("/home/site", 0755), 0);
    CHECK_EQ_INT(mkdir(root, 0755), 0);
    /* empty; then the marker only inside node_modules, which is skipped */
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), -1);
    CHECK(strstr(msg, "host.json or function.json") != NULL);
    CHECK_EQ_INT(mkdir("/home/site/wwwroot/node_modules", 0755), 0);
    write_file("/home/site/wwwroot/node_modules/function.json");
    write_file("/home/site/wwwroot/app.py");
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), -1);
    /* depth 2 is too deep */
    CHECK_EQ_INT(mkdir("/home/site/wwwroot/a", 0755), 0);
    CHECK_EQ_INT(mkdir("/home/site/wwwroot/a/b", 0755), 0);
    write_file("/home/site/wwwroot/a/b/function.json");
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), -1);
    /* depth 1: a function's own function.json */
    CHECK_EQ_INT(mkdir("/home/site/wwwroot/HttpTrigger", 0755), 0);
    write_file("/home/site/wwwroot/HttpTrigger/function.json");
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), 0);
    /* Flex Consumption needs DD_AZURE_RESOURCE_GROUP (set, even empty, is enough) */
    setenv("WEBSITE_SKU", "FlexConsumption", 1);
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), -1);
    CHECK(strstr(msg, "DD_AZURE_RESOURCE_GROUP") != NULL);
    setenv("DD_AZURE_RESOURCE_GROUP", "", 1);
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), 0);
    unsetenv("WEBSITE_SKU");
    unsetenv("DD_AZURE_RESOURCE_GROUP");
    /* host.json at the top */
    CHECK_EQ_INT(unlink("/home/site/wwwroot/HttpTrigger/function.json"), 0);
    write_file("/home/site/wwwroot/host.json");
    CHECK_EQ_INT(dds__cloud_verify_azure(root, msg, sizeof(msg)), 0);
}

TEST(azure_runtime_check) {
    clear();
    static const char *const dirs[] = {"/home", NULL};
    if (!test_with_tmpfs_over(dirs, azure_root_layouts, NULL)) fprintf(stderr, "  (azure_runtime_check skipped)\n");
}

int main(void) {
    RUN(nothing_detected);
    RUN(aws_lambda);
    RUN(azure_functions_needs_both_variables);
    RUN(google_cloud_functions_both_generations);
    RUN(azure_spring_apps);
    RUN(exactly_one_platform);
    RUN(azure_functions_without_site_name_is_not_detected);
    RUN(span_facts);
    RUN(azure_runtime_check);
    return TEST_REPORT();
}
