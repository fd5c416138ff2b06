/* bench_exec.c - exec to both ports ready: how long a CLI takes from fork+exec until its trace
 * port accepts a TCP connection and its DogStatsD UDP port is bound. What a cold start costs the
 * function before its first metric can land.
 *
 *   bench_exec [--runs N] [--json] [--rust] BINARY
 *
 * Each run picks two free ports, starts BINARY with them (DD_APM_RECEIVER_PORT, DD_DOGSTATSD_PORT,
 * logging off, an API key and an unreachable intake so nothing is sent), polls every 50 us, then
 * SIGTERMs it and reaps it. --rust adds the environment the Rust binary needs to start at all
 * (one cloud detected: Azure Spring Apps). Prints the median (and min, max) in milliseconds. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int free_port(int type) {
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("free port");
        exit(2);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool tcp_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A UDP socket bound to the port, by anyone: /proc/net/udp lists it (binding it ourselves to
 * find out would steal it). */
static bool udp_bound(int port) {
    FILE *f = fopen("/proc/net/udp", "r");
    if (!f) return false;
    char line[512], needle[16];
    snprintf(needle, sizeof(needle), ":%04X ", port);
    bool found = false;
    if (fgets(line, sizeof(line), f)) {
        while (!found && fgets(line, sizeof(line), f)) {
            char *local = strchr(line, ':');  /* "  sl: local_address ..." */
            char *at = local ? strstr(local + 1, needle) : NULL;
            found = at && at < local + 16;  /* in local_address, not rem_address */
        }
    }
    fclose(f);
    return found;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int runs = 20;
    bool json = false, rust = false;
    const char *binary = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--rust")) rust = true;
        else binary = argv[i];
    }
    if (!binary || runs < 1 || runs > 1000) {
        fprintf(stderr, "usage: bench_exec [--runs N] [--json] [--rust] BINARY\n");
        return 2;
    }
    double *ms = calloc((size_t)runs, sizeof(double));
    for (int r = 0; r < runs; r++) {
        int tport = free_port(SOCK_STREAM), uport = free_port(SOCK_DGRAM);
        char te[64], ue[64];
        snprintf(te, sizeof(te), "DD_APM_RECEIVER_PORT=%d", tport);
        snprintf(ue, sizeof(ue), "DD_DOGSTATSD_PORT=%d", uport);
        char *envp[] = {te, ue, "DD_API_KEY=bench", "DD_LOG_LEVEL=off", "DD_DD_URL=http://127.0.0.1:9",
                        "DD_APM_DD_URL=http://127.0.0.1:9", "PATH=/usr/bin:/bin",
                        rust ? "ASCSVCRT_SPRING__APPLICATION__NAME=bench" : NULL, NULL};
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execve(binary, (char *[]){(char *)binary, NULL}, envp);
            _exit(127);
        }
        bool t_ok = false, u_ok = false;
        double end = 0;
        while (now_ms() - t0 < 5000) {
            if (!t_ok) t_ok = tcp_accepts(tport);
            if (!u_ok) u_ok = udp_bound(uport);
            if (t_ok && u_ok) {
                end = now_ms();
                break;
            }
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                fprintf(stderr, "bench_exec: %s exited before both ports were ready\n", binary);
                return 1;
            }
            usleep(50);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        if (end == 0) {
            fprintf(stderr, "bench_exec: %s not ready within 5 s (trace %d, dogstatsd %d)\n", binary, t_ok, u_ok);
            return 1;
        }
        ms[r] = end - t0;
    }
    qsort(ms, (size_t)runs, sizeof(double), cmp);
    double median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    if (json)
        printf("{\"runs\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f}\n", runs, median, ms[0], ms[runs - 1]);
    else
        printf("%s: exec to both ports ready, median of %d: %.2f ms (min %.2f, max %.2f)\n", binary, runs, median,
               ms[0], ms[runs - 1]);
    free(ms);
    return 0;
}
