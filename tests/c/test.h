/* test.h - minimal test harness for the C tests (one executable per unit, run by ctest).
 *   TEST(name) { CHECK(cond); CHECK_EQ_INT(a, b); ... }
 *   int main(void) { RUN(name); ...; return TEST_REPORT(); }
 * A failed CHECK records the failure and continues; TEST_REPORT prints "N passed, N failed"
 * and returns non-zero when anything failed. */
#ifndef DDS_TEST_H
#define DDS_TEST_H
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

/* Valgrind replaces malloc and changes timing: tests that hook the allocator skip themselves
 * under it (valgrind's own checks are the point of such a run). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TEST_HAVE_VALGRIND_H 1
#endif
#endif
static inline int test_under_valgrind(void) {
#ifdef TEST_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND;
#else
    return 0;
#endif
}

static int test_failures_total, test_passed, test_failed, test_cur_failed;
static const char *test_cur_name;

#define TEST(name) static void name(void)
#define RUN(name)                                                                   \
    do {                                                                            \
        test_cur_name = #name;                                                      \
        test_cur_failed = 0;                                                        \
        name();                                                                     \
        if (test_cur_failed) { test_failed++; fprintf(stderr, "FAIL %s\n", #name); } \
        else { test_passed++; fprintf(stderr, "ok   %s\n", #name); }                \
    } while (0)
#define TEST_REPORT() (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

#define TEST_FAIL_AT(...)                                                \
    do {                                                                 \
        test_cur_failed++;                                               \
        test_failures_total++;                                           \
        fprintf(stderr, "  %s:%d: in %s: ", __FILE__, __LINE__, test_cur_name); \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
    } while (0)

#define CHECK(cond) do { if (!(cond)) TEST_FAIL_AT("CHECK(%s) failed", #cond); } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) TEST_FAIL_AT(__VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long _a = (long long)(a), _b = (long long)(b);                             \
        if (_a != _b) TEST_FAIL_AT("%s == %s: got %lld, want %lld", #a, #b, _a, _b);    \
    } while (0)
#define CHECK_EQ_DBL(a, b, eps)                                                         \
    do {                                                                                \
        double _a = (double)(a), _b = (double)(b);                                      \
        if (!(fabs(_a - _b) <= (eps)) && !(_a == _b))                                   \
            TEST_FAIL_AT("%s == %s: got %.17g, want %.17g", #a, #b, _a, _b);            \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                              \
    do {                                                                                \
        const char *_a = (a), *_b = (b);                                                \
        if (!_a || !_b || strcmp(_a, _b) != 0)                                          \
            TEST_FAIL_AT("%s == %s: got \"%s\", want \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
    } while (0)
/* Compare a (ptr,len) slice with a C string. */
#define CHECK_EQ_SLICE(sl, str)                                                         \
    do {                                                                                \
        const char *_w = (str);                                                         \
        size_t _wl = strlen(_w);                                                        \
        if ((sl).len != _wl || ((sl).len && memcmp((sl).ptr, _w, _wl) != 0))            \
            TEST_FAIL_AT("%s == \"%s\": got \"%.*s\"", #sl, _w, (int)(sl).len, (sl).ptr ? (sl).ptr : ""); \
    } while (0)

/* Copy len bytes so that they end exactly at a PROT_NONE guard page: reading one byte past the
 * end crashes the test even without a sanitizer. Release with test_guarded_free. */
static inline char *test_guarded_copy(const void *src, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    if (data_pages == 0) data_pages = 1;
    size_t total = (data_pages + 1) * page;
    char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) { perror("mmap"); abort(); }
    mprotect(base + data_pages * page, page, PROT_NONE);
    char *p = base + data_pages * page - len;
    if (len) memcpy(p, src, len);
    return p;
}
static inline void test_guarded_free(char *p, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    if (data_pages == 0) data_pages = 1;
    char *end = p + len;
    char *base = end - data_pages * page;
    munmap(base, (data_pages + 1) * page);
}
/* Runs fn(arg) in a forked child that sees an empty tmpfs over each directory of dirs (a
 * NULL-terminated list of existing directories) inside a private mount namespace: a test can lay
 * out system paths (/etc/ssl, ...) as it likes without touching the machine's. A failing CHECK in
 * fn fails the current test. Needs CAP_SYS_ADMIN (root): without it, the case is skipped with the
 * reason printed and returns false; returns true when fn ran. */
static inline bool test_with_tmpfs_over(const char *const *dirs, void (*fn)(void *arg), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        TEST_FAIL_AT("fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        /* source and type are ignored by a propagation change; strings rather than NULL keep valgrind quiet */
        if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
            int e = errno;
            fprintf(stderr, "  skipped: a private mount namespace: %s\n", strerror(e));
            exit(e == EPERM ? 77 : 1);
        }
        for (size_t i = 0; dirs[i]; i++) {
            if (mount("tmpfs", dirs[i], "tmpfs", 0, "mode=0755,size=4m") != 0) {
                int e = errno;
                fprintf(stderr, "  skipped: tmpfs over %s: %s\n", dirs[i], strerror(e));
                exit(e == EPERM ? 77 : 1);
            }
        }
        test_cur_failed = 0;
        fn(arg);
        fflush(NULL);
        exit(test_cur_failed ? 1 : 0);  /* exit, not _exit: LeakSanitizer checks the child too */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code == 77) return false;
    if (code != 0) TEST_FAIL_AT("the child in a private mount namespace failed (exit code %d)", code);
    return true;
}
#endif
