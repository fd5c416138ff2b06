/* test_cacerts.c - the CA certificate search of src_c/transport/cacerts.c: the explicit path, then
 * SSL_CERT_FILE, SSL_CERT_DIR, the system bundles and /etc/ssl/certs. The variables point into a
 * scratch directory; the system paths are laid out for real in a child whose /etc is an empty
 * tmpfs in a private mount namespace (skipped, with the reason, where that is not allowed). */
#include "transport/cacerts.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "test.h"

#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static char scratch[256];  /* one directory per run, removed at the end */

static void write_file(const char *path, const char *content) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        abort();
    }
    size_t len = strlen(content);
    if (write(fd, content, len) != (ssize_t)len) abort();
    close(fd);
}

/* mkdir -p */
static void make_dirs(const char *path) {
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
}

/* scratch/<name>, in a static ring so a test can hold a few at once. */
static const char *at(const char *name) {
    static char ring[8][PATH_MAX];
    static int next;
    char *out = ring[next++ % 8];
    snprintf(out, PATH_MAX, "%s/%s", scratch, name);
    return out;
}

static void env_set(const char *name, const char *value) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

static void env_clear(void) {
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
}

#define CHECK_FOUND(ca, want_kind, want_source, want_path)                                       \
    do {                                                                                         \
        CHECK_EQ_INT((ca).kind, (want_kind));                                                    \
        CHECK_EQ_STR((ca).source, (want_source));                                                \
        CHECK_EQ_STR((ca).path, (want_path));                                                    \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* The field and the variables (whatever the machine has in its system paths)                 */

TEST(explicit_field_beats_the_variables) {
    env_set("SSL_CERT_FILE", at("other.pem"));
    env_set("SSL_CERT_DIR", at("dir_a"));
    dds__cacerts ca;
    CHECK_EQ_INT(dds__cacerts_find(at("bundle.pem"), &ca), DDS__CACERTS_FILE);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "tls_ca_path", at("bundle.pem"));
    /* Nothing else was even looked at. */
    CHECK(strstr(ca.searched, "SSL_CERT_FILE") == NULL);
    CHECK(strstr(ca.searched, "(chosen)") != NULL);

    dds__cacerts_find(at("dir_a"), &ca);
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "tls_ca_path", at("dir_a"));
    /* An explicit directory may be empty: the user chose it. */
    dds__cacerts_find(at("empty_dir"), &ca);
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "tls_ca_path", at("empty_dir"));
    /* "" means "not set", as for every string field. */
    dds__cacerts_find("", &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "SSL_CERT_FILE", at("other.pem"));
    env_clear();
}

TEST(unusable_explicit_path_finds_nothing_rather_than_something_else) {
    env_set("SSL_CERT_FILE", at("other.pem"));
    dds__cacerts ca;
    CHECK_EQ_INT(dds__cacerts_find(at("no-such.pem"), &ca), DDS__CACERTS_NONE);
    CHECK(ca.source == NULL);
    CHECK_EQ_STR(ca.path, "");
    CHECK(strstr(ca.searched, "no-such.pem (missing)") != NULL);
    CHECK(strstr(ca.searched, "other.pem") == NULL);
    env_clear();
}

TEST(ssl_cert_file_beats_ssl_cert_dir) {
    env_set("SSL_CERT_FILE", at("other.pem"));
    env_set("SSL_CERT_DIR", at("dir_a"));
    dds__cacerts ca;
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "SSL_CERT_FILE", at("other.pem"));
    env_clear();
}

TEST(unusable_ssl_cert_file_is_skipped) {
    /* Missing, empty, a directory: each falls through to SSL_CERT_DIR. */
    const char *bad[] = {at("no-such.pem"), at("empty.pem"), at("dir_b")};
    const char *why[] = {"(missing)", "(empty)", "(a directory)"};
    for (size_t i = 0; i < 3; i++) {
        env_set("SSL_CERT_FILE", bad[i]);
        env_set("SSL_CERT_DIR", at("dir_a"));
        dds__cacerts ca;
        CHECK_EQ_INT(dds__cacerts_find(NULL, &ca), DDS__CACERTS_DIR);
        CHECK_FOUND(ca, DDS__CACERTS_DIR, "SSL_CERT_DIR", at("dir_a"));
        CHECK_MSG(strstr(ca.searched, why[i]) != NULL, "case %zu: searched \"%s\"", i, ca.searched);
    }
    env_clear();
}

TEST(ssl_cert_dir_list_takes_the_first_usable_directory) {
    char list[4 * PATH_MAX];
    /* missing, an empty entry, an empty directory, one holding only a subdirectory, a file, then
     * two good ones: the first good one wins. */
    snprintf(list, sizeof(list), "%s::%s:%s:%s:%s:%s", at("no-such-dir"), at("empty_dir"), at("dir_b"),
             at("other.pem"), at("dir_links"), at("dir_a"));
    env_set("SSL_CERT_DIR", list);
    dds__cacerts ca;
    dds__cacerts_find(NULL, &ca);
    /* dir_links holds only a symbolic link to a file, as /etc/ssl/certs mostly does: it counts. */
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "SSL_CERT_DIR", at("dir_links"));
    CHECK(strstr(ca.searched, "SSL_CERT_FILE (unset)") != NULL);
    CHECK(strstr(ca.searched, "no-such-dir (missing)") != NULL);
    CHECK(strstr(ca.searched, "empty_dir (no certificate files)") != NULL);
    CHECK(strstr(ca.searched, "dir_b (no certificate files)") != NULL);
    /* Only a few entries are detailed one by one; the 4th is counted. */
    CHECK(strstr(ca.searched, "other.pem (not a directory)") == NULL);

    snprintf(list, sizeof(list), "%s:%s", at("dir_a"), at("dir_links"));
    env_set("SSL_CERT_DIR", list);
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "SSL_CERT_DIR", at("dir_a"));
    env_clear();
}

TEST(long_variables_never_crowd_out_the_system_places) {
    static char huge[3 * PATH_MAX];
    memset(huge, 'x', sizeof(huge) - 1);
    huge[0] = '/';
    for (size_t i = 500; i < sizeof(huge) - 1; i += 500) huge[i] = ':';
    huge[sizeof(huge) - 1] = '\0';
    env_set("SSL_CERT_FILE", huge);
    env_set("SSL_CERT_DIR", huge);
    dds__cacerts ca;
    dds__cacerts_find(NULL, &ca);
    CHECK(strlen(ca.searched) < sizeof(ca.searched));
    /* The first system place is still looked at and named, whatever this machine has there. */
    CHECK_MSG(strstr(ca.searched, "/etc/ssl/certs/ca-certificates.crt") != NULL, "searched: %s", ca.searched);
    CHECK(strstr(ca.searched, "SSL_CERT_FILE=/xxx") != NULL);
    CHECK(strstr(ca.searched, "(path too long)") != NULL);
    CHECK(strstr(ca.searched, "more SSL_CERT_DIR entries (none usable)") != NULL);
    env_clear();
}

/* ---------------------------------------------------------------------------------------- */
/* The system paths, in a child whose /etc is an empty tmpfs                                   */

static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
};
#define N_BUNDLES (sizeof(system_bundles) / sizeof(*system_bundles))
static const char *const over_etc[] = {"/etc", NULL};

static void write_all_system_places(void) {
    for (size_t i = 0; i < N_BUNDLES; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", system_bundles[i]);
        *strrchr(dir, '/') = '\0';
        make_dirs(dir);
        write_file(system_bundles[i], PEM);
    }
    write_file("/etc/ssl/certs/one-root.pem", PEM);
}

static void system_order(void *arg) {
    (void)arg;
    env_clear();
    write_all_system_places();
    dds__cacerts ca;
    /* Each bundle wins while present; removed, the next one does. */
    for (size_t i = 0; i < N_BUNDLES; i++) {
        dds__cacerts_find(NULL, &ca);
        CHECK_FOUND(ca, DDS__CACERTS_FILE, "system bundle", system_bundles[i]);
        unlink(system_bundles[i]);
    }
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "system directory", "/etc/ssl/certs");
    /* A directory holding no regular file (only a subdirectory) is no CA directory. */
    unlink("/etc/ssl/certs/one-root.pem");
    make_dirs("/etc/ssl/certs/sub");
    CHECK_EQ_INT(dds__cacerts_find(NULL, &ca), DDS__CACERTS_NONE);
}

TEST(system_bundles_in_order_then_the_directory) {
    test_with_tmpfs_over(over_etc, system_order, NULL);
}

static void unusable_bundles(void *arg) {
    (void)arg;
    env_clear();
    write_all_system_places();
    write_file(system_bundles[0], "");           /* empty: trusts nothing */
    unlink(system_bundles[1]);
    make_dirs(system_bundles[1]);                /* a directory where a file should be */
    dds__cacerts ca;
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "system bundle", system_bundles[2]);
    CHECK(strstr(ca.searched, "/etc/ssl/certs/ca-certificates.crt (empty)") != NULL);
    CHECK(strstr(ca.searched, "/etc/pki/tls/certs/ca-bundle.crt (a directory)") != NULL);
}

TEST(empty_or_directory_bundles_are_skipped) {
    test_with_tmpfs_over(over_etc, unusable_bundles, NULL);
}

static void variables_beat_system(void *arg) {
    (void)arg;
    env_clear();
    write_all_system_places();
    dds__cacerts ca;
    env_set("SSL_CERT_DIR", at("dir_a"));
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_DIR, "SSL_CERT_DIR", at("dir_a"));
    /* A missing SSL_CERT_FILE is skipped, on to the system once SSL_CERT_DIR is unusable too. */
    env_set("SSL_CERT_FILE", at("no-such.pem"));
    env_set("SSL_CERT_DIR", at("no-such-dir"));
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "system bundle", system_bundles[0]);
    env_set("SSL_CERT_FILE", at("other.pem"));
    dds__cacerts_find(NULL, &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "SSL_CERT_FILE", at("other.pem"));
    dds__cacerts_find(at("bundle.pem"), &ca);
    CHECK_FOUND(ca, DDS__CACERTS_FILE, "tls_ca_path", at("bundle.pem"));
    env_clear();
}

TEST(variables_beat_the_system_paths) {
    test_with_tmpfs_over(over_etc, variables_beat_system, NULL);
}

static void nothing_anywhere(void *arg) {
    (void)arg;
    env_clear();
    dds__cacerts ca;
    CHECK_EQ_INT(dds__cacerts_find(NULL, &ca), DDS__CACERTS_NONE);
    CHECK(ca.source == NULL);
    CHECK_EQ_STR(ca.path, "");
    /* Every place is named, in order, so the error at start can tell the user what was tried. */
    const char *last = ca.searched;
    const char *want[] = {"SSL_CERT_FILE (unset)", "SSL_CERT_DIR (unset)",
                          "/etc/ssl/certs/ca-certificates.crt (missing)", "/etc/pki/tls/certs/ca-bundle.crt (missing)",
                          "/etc/ssl/ca-bundle.pem (missing)", "/etc/pki/tls/cacert.pem (missing)",
                          "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem (missing)", "/etc/ssl/cert.pem (missing)",
                          "/etc/ssl/certs/ (missing)"};
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        const char *hit = strstr(last, want[i]);
        CHECK_MSG(hit != NULL, "\"%s\" not in order in \"%s\"", want[i], ca.searched);
        if (hit) last = hit;
    }
}

TEST(nothing_found_names_every_place) {
    test_with_tmpfs_over(over_etc, nothing_anywhere, NULL);
}

/* ---------------------------------------------------------------------------------------- */

static void scratch_make(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof(scratch), "%s/dds-cacerts-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        abort();
    }
    write_file(at("bundle.pem"), PEM);
    write_file(at("other.pem"), PEM);
    write_file(at("empty.pem"), "");
    make_dirs(at("dir_a"));
    write_file(at("dir_a/root.pem"), PEM);
    make_dirs(at("dir_b/sub"));
    make_dirs(at("empty_dir"));
    make_dirs(at("dir_links"));
    if (symlink(at("bundle.pem"), at("dir_links/link.pem")) != 0) abort();
}

static void scratch_remove(void) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

int main(void) {
    scratch_make();
    RUN(explicit_field_beats_the_variables);
    RUN(unusable_explicit_path_finds_nothing_rather_than_something_else);
    RUN(ssl_cert_file_beats_ssl_cert_dir);
    RUN(unusable_ssl_cert_file_is_skipped);
    RUN(ssl_cert_dir_list_takes_the_first_usable_directory);
    RUN(long_variables_never_crowd_out_the_system_places);
    RUN(system_bundles_in_order_then_the_directory);
    RUN(empty_or_directory_bundles_are_skipped);
    RUN(variables_beat_the_system_paths);
    RUN(nothing_found_names_every_place);
    scratch_remove();
    return TEST_REPORT();
}
