/* error.h - filling a dds_error without allocating. */
#ifndef DDS_ERROR_H
#define DDS_ERROR_H
#include "datadog_serverless.h"

/* Sets err (when not NULL) to code and the formatted message; returns code. The message is
 * prefixed as the public header documents ("Invalid configuration: ", ...). */
int dds__error_set(dds_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
