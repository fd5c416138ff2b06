/* Tests of src_c/log.c: level filtering, the process-wide sink, redaction, rate limiting. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static char last[2048];
static int calls;
static dds_log_level last_level;

static void sink(dds_log_level level, const char *line, void *user) {
    (void)user;
    snprintf(last, sizeof(last), "%s", line);
    last_level = level;
    calls++;
}

TEST(levels_filter_per_logger) {
    dds_set_log_fn(sink, NULL);
    dds__logger lg = {.level = DDS_LOG_WARN};
    calls = 0;
    dds__log_info(&lg, "hidden %d", 1);
    CHECK_EQ_INT(calls, 0);
    dds__log_warn(&lg, "shown %d", 2);
    CHECK_EQ_INT(calls, 1);
    CHECK_EQ_STR(last, "shown 2");
    CHECK_EQ_INT(last_level, DDS_LOG_WARN);
    dds__logger off = {.level = DDS_LOG_OFF};
    dds__log_error(&off, "never");
    CHECK_EQ_INT(calls, 1);
    dds_set_log_fn(NULL, NULL);
}

TEST(secret_is_redacted_everywhere) {
    dds_set_log_fn(sink, NULL);
    dds__logger lg = {.level = DDS_LOG_TRACE, .secret = "abcdef0123456789"};
    dds__log_error(&lg, "key=%s and again %s!", "abcdef0123456789", "abcdef0123456789");
    CHECK(strstr(last, "abcdef0123456789") == NULL);
    CHECK_EQ_STR(last, "key=***redacted*** and again ***redacted***!");
    /* A line long enough to be truncated still never carries the key. */
    char big[1500];
    memset(big, 'x', sizeof(big));
    memcpy(big + 1000, "abcdef0123456789", 16);
    big[sizeof(big) - 1] = '\0';
    dds__log_error(&lg, "%s", big);
    CHECK(strstr(last, "abcdef0123456789") == NULL);
    dds_set_log_fn(NULL, NULL);
}

TEST(ratelimit_counts_skipped) {
    dds__ratelimit rl = {.interval_ms = 1000};
    uint64_t skipped = 99;
    CHECK(dds__ratelimit_allow(&rl, 10000, &skipped));
    CHECK_EQ_INT(skipped, 0);
    CHECK(!dds__ratelimit_allow(&rl, 10100, &skipped));
    CHECK(!dds__ratelimit_allow(&rl, 10999, &skipped));
    CHECK(dds__ratelimit_allow(&rl, 11000, &skipped));
    CHECK_EQ_INT(skipped, 2);
}

TEST(level_names) {
    CHECK_EQ_STR(dds_log_level_name(DDS_LOG_TRACE), "trace");
    CHECK_EQ_STR(dds_log_level_name(DDS_LOG_OFF), "off");
    CHECK_EQ_STR(dds_log_level_name((dds_log_level)42), "off");
}

static pthread_mutex_t *slow_gate;
static void slow_sink(dds_log_level level, const char *line, void *user) {
    (void)level;
    (void)line;
    (void)user;
    usleep(200000); /* another thread is logging while the main thread forks */
}

static void *log_in_thread(void *arg) {
    (void)arg;
    dds__logger lg = {.level = DDS_LOG_INFO};
    dds__log_info(&lg, "from a thread");
    return NULL;
}

/* A smoke test: logging works in a child forked while another thread logs. The race it guards
 * against (fork exactly while the sink lock is held, a few instructions) cannot be forced here;
 * the pthread_atfork handlers in log.c close it. */
TEST(fork_while_another_thread_logs) {
    (void)slow_gate;
    dds_set_log_fn(slow_sink, NULL);
    pthread_t th;
    pthread_create(&th, NULL, log_in_thread, NULL);
    usleep(50000); /* the thread is inside the sink now */
    pid_t pid = fork();
    if (pid == 0) {
        /* The child logs at once. */
        dds_set_log_fn(sink, NULL);
        dds__logger lg = {.level = DDS_LOG_INFO};
        dds__log_info(&lg, "child");
        _exit(strcmp(last, "child") == 0 ? 0 : 1);
    }
    int status = -1;
    for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++) usleep(10000);
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK_MSG(0, "the child hung on the log lock");
    } else {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    pthread_join(th, NULL);
    dds_set_log_fn(NULL, NULL);
}

int main(void) {
    RUN(levels_filter_per_logger);
    RUN(secret_is_redacted_everywhere);
    RUN(ratelimit_counts_skipped);
    RUN(level_names);
    RUN(fork_while_another_thread_logs);
    return TEST_REPORT();
}
