/* compat.c - the behaviour of datadog-serverless-compat, in the library so the C binary and
 * the Python console script are the same program: DD_* variables like the binary of the same
 * name Datadog ships; runs the services until SIGTERM or SIGINT, then stops gracefully (drain,
 * final flush) and returns 0. A bad configuration or a taken port is one clear line on stderr
 * and a non-zero return, at once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadog_serverless.h"
#include <time.h>

static const char usage[] =
    "Usage: datadog-serverless-compat [--dry-run] [--help] [--version]\n"
    "\n"
    "Runs a DogStatsD server (UDP 127.0.0.1:8125) that aggregates metrics like the Datadog Agent,\n"
    "a trace agent (HTTP 127.0.0.1:8126) that forwards traces, stats, profiles and telemetry, and\n"
    "with DD_LOGS_ENABLED=true a logs agent (HTTP 127.0.0.1:10517, POST /v1/input), until SIGTERM\n"
    "or SIGINT (then a final flush, exit 0).\n"
    "\n"
    "Options:\n"
    "  --dry-run   never send: write each payload in full as one JSON line on stdout\n"
    "              (without DD_API_KEY, only one summary line per payload is written)\n"
    "  --help      this text\n"
    "  --version   print the version\n"
    "\n"
    "Configuration (environment variables; defaults in brackets):\n";

#include "config_vars.h"

static const struct { const char *section, *name, *def, *meaning; } config_vars[] = {
#define VAR(section, name, def, meaning) {#section, name, def, meaning},
    DDS__CONFIG_VARS(VAR)
#undef VAR
};

/* The variable table without the README's backticks. */
static void put_plain(const char *s, FILE *f) {
    for (; *s; s++)
        if (*s != '`') fputc(*s, f);
}

static void print_usage(FILE *f) {
    fputs(usage, f);
    const char *section = "";
    for (size_t i = 0; i < sizeof(config_vars) / sizeof(*config_vars); i++) {
        if (strcmp(section, config_vars[i].section) != 0) {
            section = config_vars[i].section;
            fprintf(f, "\n %s:\n", section);
        }
        fprintf(f, "  %s", config_vars[i].name);
        if (config_vars[i].def[0]) {
            fputs(" [", f);
            put_plain(config_vars[i].def, f);
            fputc(']', f);
        }
        fputs("\n      ", f);
        put_plain(config_vars[i].meaning, f);
        fputc('\n', f);
    }
}

static void on_status(const dds_status *st, void *user) {
    (void)user;
    if (st->type == DDS_STATUS_ERROR && st->message)
        fprintf(stderr, "datadog-serverless-compat: error: %s\n", st->message);
}

int dds_compat_main(int argc, char **argv) {
    dds_config cfg;
    dds_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("datadog-serverless-compat %s\n", dds_version());
            return 0;
        }
        if (strcmp(argv[i], "--dry-run") == 0) {
            cfg.dry_run = true;
            continue;
        }
        fprintf(stderr, "datadog-serverless-compat: unknown argument '%s' (see --help)\n", argv[i]);
        return 2;
    }

    dds_error err;
    if (dds_config_from_env(&cfg, &err) != 0 || dds_config_validate(&cfg, &err) != 0) {
        fprintf(stderr, "datadog-serverless-compat: %s\n", err.message);
        return 2;
    }
    /* Line-buffered stdout: each dry-run payload line reaches a pipe as soon as it is written. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* SIGINT/SIGTERM are taken synchronously with sigwait: blocked here, before dds_start, so no
     * thread of the process ever runs a handler for them. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

    dds_services *svc = NULL;
    if (dds_start(&cfg, on_status, NULL, &svc, &err) != 0) {
        fprintf(stderr, "datadog-serverless-compat: %s\n", err.message);
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        return 1;
    }

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    fprintf(stderr, "datadog-serverless-compat: received %s: stopping (final flush)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    int rc = dds_stop(svc, 5000, &err);
    dds_stats stats;
    dds_stats_get(svc, &stats);
    fprintf(stderr,
            "datadog-serverless-compat: stopped: %llu metric lines, %llu events, %llu service checks, "
            "%llu parse errors, %llu trace requests, %llu spans, %llu payloads sent, %llu written (dry run), "
            "%llu dropped\n",
            (unsigned long long)stats.dsd_metric_lines, (unsigned long long)stats.dsd_events,
            (unsigned long long)stats.dsd_service_checks, (unsigned long long)stats.dsd_parse_errors,
            (unsigned long long)stats.trace_requests, (unsigned long long)stats.trace_spans,
            (unsigned long long)stats.payloads_sent, (unsigned long long)stats.dry_run_payloads,
            (unsigned long long)stats.payloads_dropped);
    if (stats.dsd_packets_dropped_queue || stats.dsd_packets_dropped_socket)
        fprintf(stderr, "datadog-serverless-compat: DogStatsD datagrams dropped: %llu with the receive queue full, "
                        "%llu by the kernel with the socket buffer full\n",
                (unsigned long long)stats.dsd_packets_dropped_queue, (unsigned long long)stats.dsd_packets_dropped_socket);
    if (cfg.logs_enabled)
        fprintf(stderr, "datadog-serverless-compat: logs: %llu requests, %llu entries accepted, %llu dropped\n",
                (unsigned long long)stats.logs_requests, (unsigned long long)stats.logs_entries,
                (unsigned long long)stats.logs_entries_dropped);
    dds_free(svc);
    /* A signal that arrived during the stop stays pending: it must not reach the host's own
     * handler (Python's would raise KeyboardInterrupt after we already handled it). */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&stop_signals, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rc != 0) {
        fprintf(stderr, "datadog-serverless-compat: %s\n", err.message);
        return 1;
    }
    return 0;
}
