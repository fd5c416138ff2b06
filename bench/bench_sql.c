/* bench_sql.c - SQL resource obfuscation throughput (MB/s of query text, ns per query) on one
 * core, over a corpus of realistic queries: ORM SELECTs with joins and aliases, INSERTs with many
 * value rows, UPDATEs, IN lists, comments, postgres placeholders and JSON operators, stored
 * procedure calls. The arena is reset between queries, as the agent does per request.
 *
 * Usage: bench_sql [rounds=7] [ms_per_round=300]
 * Prints one line per round ("round N: X MB/s, Y ns/query") and the median. Compare ratios, not
 * absolutes (shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "trace/obfuscate_sql.h"

static const struct { const char *q; dds__sql_dbms dbms; } CORPUS[] = {
    {"SELECT users.id AS users_id, users.name AS users_name, users.email AS users_email FROM users WHERE users.id = 42",
     DDS__SQL_POSTGRESQL},
    {"SELECT \"orders\".\"id\", \"orders\".\"total\", \"customers\".\"name\" FROM \"orders\" INNER JOIN \"customers\" ON "
     "(\"orders\".\"customer_id\" = \"customers\".\"id\") WHERE (\"orders\".\"created_at\" >= '2024-01-01T00:00:00' AND "
     "\"orders\".\"status\" IN ('paid', 'shipped', 'delivered')) ORDER BY \"orders\".\"created_at\" DESC LIMIT 21",
     DDS__SQL_POSTGRESQL},
    {"INSERT INTO events (id, user_id, kind, payload, created_at) VALUES (1, 17, 'click', '{\"x\":1}', "
     "'2024-05-01 10:00:00'), (2, 17, 'view', '{\"x\":2}', '2024-05-01 10:00:01'), (3, 18, 'click', '{\"x\":3}', "
     "'2024-05-01 10:00:02'), (4, 19, 'purchase', '{\"sku\":\"A-1\"}', '2024-05-01 10:00:03')",
     DDS__SQL_MYSQL},
    {"UPDATE accounts SET balance = balance - 150.25, updated_at = NOW() WHERE id = 9001 AND version = 7", DDS__SQL_MYSQL},
    {"SELECT * FROM products WHERE category_id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16) AND price "
     "BETWEEN 10.5 AND 99.99 AND name LIKE '%phone%'",
     DDS__SQL_GENERIC},
    {"/* controller:users,action:show */ SELECT `users`.* FROM `users` WHERE `users`.`id` = 1234 LIMIT 1",
     DDS__SQL_MYSQL},
    {"SELECT u.id, u.name, COUNT(o.id) AS order_count, SUM(o.total) AS revenue FROM users u LEFT JOIN orders o ON "
     "o.user_id = u.id AND o.created_at > NOW() - INTERVAL '30 days' WHERE u.active = TRUE AND u.deleted_at IS NULL "
     "GROUP BY u.id, u.name HAVING COUNT(o.id) > 5 ORDER BY revenue DESC LIMIT 100 OFFSET 200",
     DDS__SQL_POSTGRESQL},
    {"SELECT id, data->>'name' AS name FROM documents WHERE data @> '{\"type\": \"invoice\"}' AND owner_id = $1 AND "
     "created_at < $2",
     DDS__SQL_POSTGRESQL},
    {"DELETE FROM sessions WHERE expires_at < '2024-05-01 00:00:00' AND user_id NOT IN (SELECT id FROM admins)",
     DDS__SQL_GENERIC},
    {"SELECT TOP 50 [o].[OrderId], [o].[Total] FROM [dbo].[Orders] AS [o] WITH (NOLOCK) WHERE [o].[CustomerId] = "
     "@p0 AND [o].[Status] = N'Open' ORDER BY [o].[OrderId]",
     DDS__SQL_MSSQL},
    {"{call sp_update_inventory(?, ?, 'warehouse-7', 120)}", DDS__SQL_GENERIC},
    {"SELECT COUNT(*) FROM page_views -- daily rollup\nWHERE day = '2024-05-01' AND site_id = 77", DDS__SQL_GENERIC},
    {"SELECT * FROM t WHERE a = 1", DDS__SQL_GENERIC},
    {"BEGIN", DDS__SQL_GENERIC},
    {"INSERT INTO audit_log (actor, action, target, ip, at) VALUES ('alice@example.com', 'login', 'web', "
     "'203.0.113.7', 1714557600)",
     DDS__SQL_GENERIC},
    {"SELECT key, value FROM kv WHERE namespace = :ns AND key IN (:keys) AND expires > :now", DDS__SQL_ORACLE},
};
#define NQ (sizeof(CORPUS) / sizeof(CORPUS[0]))

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    double ms = argc > 2 ? atof(argv[2]) : 300;
    if (rounds < 1) rounds = 1;
    size_t bytes_per_pass = 0;
    for (size_t i = 0; i < NQ; i++) bytes_per_pass += strlen(CORPUS[i].q);
    dds__arena a;
    dds__arena_init(&a, 64 * 1024, 0);
    double *mbs = calloc((size_t)rounds, sizeof(double)), *nsq = calloc((size_t)rounds, sizeof(double));
    size_t sink = 0;
    printf("# bench_sql: %zu queries, %zu bytes per pass\n", NQ, bytes_per_pass);
    for (int r = 0; r < rounds; r++) {
        size_t passes = 0;
        double t0 = now_s(), t;
        do {
            for (size_t i = 0; i < NQ; i++) {
                dds__slice out;
                if (dds__obfuscate_sql(dds__slice_cstr(CORPUS[i].q), CORPUS[i].dbms, &a, &out) != DDS__SQL_OK) {
                    fprintf(stderr, "query %zu did not obfuscate\n", i);
                    return 1;
                }
                sink += out.len;
                dds__arena_reset(&a);
            }
            passes++;
        } while ((t = now_s() - t0) < ms / 1000);
        mbs[r] = (double)(passes * bytes_per_pass) / t / 1e6;
        nsq[r] = t * 1e9 / (double)(passes * NQ);
        printf("round %d: %.1f MB/s, %.0f ns/query\n", r, mbs[r], nsq[r]);
    }
    qsort(mbs, (size_t)rounds, sizeof(double), cmp_dbl);
    qsort(nsq, (size_t)rounds, sizeof(double), cmp_dbl);
    printf("median: %.1f MB/s, %.0f ns/query (checksum %zu)\n", mbs[rounds / 2], nsq[rounds / 2], sink % 1000);
    dds__arena_free(&a);
    free(mbs);
    free(nsq);
    return 0;
}
