/* fuzz_config_endpoints.c - the DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS parser on any text: it must
 * never read past the NUL, and must either give checked endpoints or one non-empty reason. */
#include <stdlib.h>
#include <string.h>

#include "config_endpoints.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    dds__logs_endpoint eps[DDS__LOGS_ENDPOINTS_MAX];
    size_t n = 99;
    char why[DDS__ENDPOINTS_WHY_MAX];
    if (dds__logs_endpoints_parse(text, eps, DDS__LOGS_ENDPOINTS_MAX, &n, why) == 0) {
        if (n > DDS__LOGS_ENDPOINTS_MAX) abort();
        for (size_t i = 0; i < n; i++)
            if (!eps[i].api_key[0] || !eps[i].host[0] || eps[i].port == 0 || strpbrk(eps[i].api_key, " \r\n"))
                abort();
    } else if (n != 0 || !why[0] || strlen(why) >= DDS__ENDPOINTS_WHY_MAX) {
        abort();
    }
    dds__logs_endpoints_wipe(eps, n);
    free(text);
    return 0;
}
