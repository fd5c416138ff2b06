/* main.c - the datadog-serverless-compat binary: the library's dds_compat_main (compat.c) with
 * SIGPIPE ignored, as a long-running network program wants. */
#include <signal.h>

#include "datadog_serverless.h"

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    return dds_compat_main(argc, argv);
}
