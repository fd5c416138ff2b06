/* basic.c - embedding datadog-serverless in a C program: start the services, let a client send
 * a metric, flush before the platform freezes the process, stop.
 *
 * Build against the C SDK (a release tarball from scripts/dist, or `cmake --install build-c`):
 *   cc basic.c $(PKG_CONFIG_PATH=<sdk>/lib/pkgconfig pkg-config --cflags --libs datadog-serverless)
 *   cmake -S examples/c -B build-example -DCMAKE_PREFIX_PATH=<sdk>   (find_package, CMakeLists.txt here)
 * or in this repository: scripts/build (target example_c_basic).
 * Without DD_API_KEY nothing is sent: a summary line per payload is printed (DD_DRY_RUN=true
 * prints the payload itself as a JSON line). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "datadog_serverless.h"

static void on_status(const dds_status *st, void *user) {
    (void)user;
    if (st->type == DDS_STATUS_READY)
        fprintf(stderr, "%s ready on port %u\n", dds_service_name(st->service), st->port);
    else if (st->type == DDS_STATUS_ERROR)
        fprintf(stderr, "error: %s\n", st->message ? st->message : "");
}

/* What a DogStatsD client does: one UDP datagram to the server. */
static void send_metric(uint16_t port, const char *line) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sendto(fd, line, strlen(line), 0, (struct sockaddr *)&to, sizeof(to));
    close(fd);
}

int main(void) {
    dds_config cfg;
    dds_config_init(&cfg);
    dds_error err;
    if (dds_config_from_env(&cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    cfg.dogstatsd_port = 0; /* any free port, so the example never collides with an agent */

    dds_services *svc;
    if (dds_start(&cfg, on_status, NULL, &svc, &err) != 0) { /* returns once the socket is bound */
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    uint16_t port;
    dds_ports(svc, &port, NULL);

    send_metric(port, "example.requests:1|c|#route:/checkout");
    usleep(50 * 1000);

    /* The end of an invocation: send everything now and wait for the intake. */
    if (dds_flush(svc, 2000, &err) != 0) fprintf(stderr, "flush: %s\n", err.message);

    dds_stats stats;
    dds_stats_get(svc, &stats);
    fprintf(stderr, "metric lines: %llu, payloads: %llu\n", (unsigned long long)stats.dsd_metric_lines,
            (unsigned long long)(stats.payloads_sent + stats.dry_run_payloads));
    int rc = dds_stop(svc, 5000, &err);
    dds_free(svc);
    return rc == 0 && stats.dsd_metric_lines == 1 ? 0 : 1;
}
