/* Tests of src_c/cloud.c: each platform's signal (PROTOCOL.md section 6), and nothing detected. */
#include <stdlib.h>

#include "cloud.h"
#include "test.h"

static const char *const vars[] = {
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_SITE_NAME", "K_SERVICE", "FUNCTION_TARGET", "FUNCTION_NAME",
    "GCP_PROJECT", "ASCSVCRT_SPRING__APPLICATION__NAME",
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

int main(void) {
    RUN(nothing_detected);
    RUN(aws_lambda);
    RUN(azure_functions_needs_both_variables);
    RUN(google_cloud_functions_both_generations);
    RUN(azure_spring_apps);
    return TEST_REPORT();
}
