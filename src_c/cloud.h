/* cloud.h - serverless environment detection and origin tags (PROTOCOL.md section 6). */
#ifndef DDS_CLOUD_H
#define DDS_CLOUD_H

typedef enum dds__cloud_kind {
    DDS__CLOUD_NONE = 0,
    DDS__CLOUD_AWS_LAMBDA,
    DDS__CLOUD_AZURE_FUNCTION,
    DDS__CLOUD_GCP_FUNCTION,
    DDS__CLOUD_AZURE_SPRING_APP,
} dds__cloud_kind;

typedef struct dds__cloud {
    dds__cloud_kind kind;
    const char *origin;          /* "lambda", "azurefunction", "cloudfunction", "azurespringapp"; NULL when none */
    const char *display_name;    /* "AWS Lambda", ... or "no serverless environment" */
    char function_name[256];     /* from the platform's variables, "" when unknown */
} dds__cloud;

/* Read the environment. Never fails: no signal means DDS__CLOUD_NONE. */
void dds__cloud_detect(dds__cloud *out);
#endif
