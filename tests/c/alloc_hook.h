/* alloc_hook.h - allocation-failure injection for the C tests: replaces malloc, calloc, realloc
 * and free with counting versions whose Nth call can be made to fail, and one loop that makes
 * each allocation of a step fail in turn and checks that no run leaks.
 *
 * Include it after test.h, in one test file per executable. It defines ALLOC_HOOK when the hooks
 * are in: only in glibc builds without ASan/TSan/MSan (they own malloc); -DDDS_TEST_NO_ALLOC_HOOK
 * turns it off for other malloc-replacing tools. Under valgrind the hooks are compiled in but
 * never called (valgrind replaces malloc itself): alloc_fail_each sees no allocation and says so. */
#ifndef DDS_TEST_ALLOC_HOOK_H
#define DDS_TEST_ALLOC_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZER_OWNS_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define TEST_SANITIZER_OWNS_MALLOC 1
#endif
#endif
#if !defined(TEST_SANITIZER_OWNS_MALLOC) && !defined(DDS_TEST_NO_ALLOC_HOOK) && defined(__GLIBC__)
#define ALLOC_HOOK 1

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

/* alloc_fail_at: the allocation (1-based, counted in alloc_seen) that fails; -1 never, LONG_MAX
 * counts without failing. alloc_live: blocks allocated and not freed. alloc_paused: the test's
 * own checks allocate too; while set, nothing fails and nothing is counted as seen. */
static long alloc_fail_at = -1, alloc_seen, alloc_live;
static bool alloc_paused;
static bool alloc_fails(void) { return !alloc_paused && alloc_fail_at > 0 && ++alloc_seen == alloc_fail_at; }
static void *alloc_counted(void *p) {
    if (p) alloc_live++;
    return p;
}
void *malloc(size_t n) { return alloc_fails() ? NULL : alloc_counted(__libc_malloc(n)); }
void *calloc(size_t n, size_t m) { return alloc_fails() ? NULL : alloc_counted(__libc_calloc(n, m)); }
void *realloc(void *p, size_t n) {
    if (alloc_fails()) return NULL;
    void *q = __libc_realloc(p, n);
    if (!p && q) alloc_live++;
    if (p && !q && n == 0) alloc_live--;
    return q;
}
void free(void *p) {
    if (p) alloc_live--;
    __libc_free(p);
}

/* One run of step(arg) with allocation fail_at failing (LONG_MAX: none): the allocations it
 * made go to *seen, and the blocks it leaked are returned. */
static long alloc_run(void (*step)(void *), void *arg, long fail_at, long *seen) {
    alloc_seen = 0;
    alloc_fail_at = fail_at;
    long live_at_start = alloc_live;
    step(arg);
    *seen = alloc_seen;
    alloc_fail_at = -1;
    return alloc_live - live_at_start;
}

/* Runs step(arg) once counting its allocations (none failing; it must not leak), then again with
 * allocation 1, 2, ... failing, until a run makes fewer allocations than the one asked to fail
 * (every allocation has failed once) or max_runs. Checks after every run that nothing leaked,
 * naming `what` and the failed allocation. Returns the allocations of the reference run, or 0
 * when there were none (malloc is not ours: valgrind). */
static long alloc_fail_each(void (*step)(void *), void *arg, long max_runs, const char *what) {
    long total, seen;
    long leaked = alloc_run(step, arg, LONG_MAX, &total);
    CHECK_MSG(leaked == 0, "%s, no failure: %ld blocks leaked", what, leaked);
    if (total == 0) return 0;
    for (long n = 1; n <= max_runs; n++) {
        leaked = alloc_run(step, arg, n, &seen);
        CHECK_MSG(leaked == 0, "%s, allocation %ld failed: %ld blocks leaked", what, n, leaked);
        if (seen < n) break;
    }
    return total;
}
#endif

#endif
