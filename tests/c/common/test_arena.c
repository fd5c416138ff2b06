/* Tests of src_c/common/arena.c: alignment, growth, limit, reset reuse. */
#include "common/arena.h"
#include "test.h"

TEST(alignment_and_growth) {
    dds__arena a;
    dds__arena_init(&a, 128, 0);
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(i % 40) + 1;
        unsigned char *p = dds__arena_alloc(&a, n);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p % (n >= 16 ? 16 : 8)) == 0);
        memset(p, 0xab, n);
    }
    char *big = dds__arena_alloc(&a, 10000); /* larger than a block */
    CHECK(big != NULL);
    memset(big, 1, 10000);
    char *d = dds__arena_memdup(&a, "hello", 5);
    CHECK_EQ_STR(d, "hello");
    int *z = dds__arena_calloc(&a, 100, sizeof(int));
    CHECK(z && z[0] == 0 && z[99] == 0);
    CHECK(dds__arena_calloc(&a, SIZE_MAX / 2, 4) == NULL); /* overflow refused */
    CHECK(a.oom);
    dds__arena_free(&a);
}

TEST(limit_bounds_total) {
    dds__arena a;
    dds__arena_init(&a, 1024, 4096);
    size_t got = 0;
    while (dds__arena_alloc(&a, 100)) got += 100;
    CHECK(got >= 3000 && got <= 4096);
    CHECK(a.oom);
    CHECK(dds__arena_alloc(&a, 1) == NULL); /* sticky */
    dds__arena_reset(&a);
    CHECK(!a.oom);
    CHECK(dds__arena_alloc(&a, 100) != NULL);
    dds__arena_free(&a);
}

TEST(reset_keeps_one_block) {
    dds__arena a;
    dds__arena_init(&a, 4096, 0);
    void *first = dds__arena_alloc(&a, 64);
    for (int i = 0; i < 100; i++) dds__arena_alloc(&a, 1000);
    dds__arena_reset(&a);
    CHECK_EQ_INT(a.total, 4096); /* only the first, default-size block is left */
    CHECK(a.head != NULL && a.head->next == NULL);
    void *again = dds__arena_alloc(&a, 64);
    CHECK(again == first);        /* and it is reused from its start */
    dds__arena_free(&a);
    CHECK(a.head == NULL);
}

int main(void) {
    RUN(alignment_and_growth);
    RUN(limit_bounds_total);
    RUN(reset_keeps_one_block);
    return TEST_REPORT();
}
