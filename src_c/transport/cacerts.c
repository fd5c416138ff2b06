/* cacerts.c - in: the tls_ca_path field and the SSL_CERT_FILE / SSL_CERT_DIR variables. Out: the
 * one CA bundle or directory the intake verifies TLS with, and the list of places looked at.
 * Runs once per instance at start; it never parses a certificate (libcurl does) and never
 * chooses "no verification": finding nothing is reported, not worked around. */
#include "transport/cacerts.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Go's crypto/x509 certFiles (root_linux.go), in its order: the first usable one wins. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Gentoo, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Amazon Linux, RHEL, Fedora */
    "/etc/ssl/ca-bundle.pem",                            /* SUSE */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS/RHEL 7 */
    "/etc/ssl/cert.pem",                                 /* Alpine (older), LibreSSL layouts */
};
/* Last resort: a directory of PEM files. libcurl+mbedTLS reads every file of a CAPATH, so the
 * OpenSSL hashed names are not needed (and are not looked for). */
#define SYSTEM_DIR "/etc/ssl/certs"

/* A variable's value is shown in the list up to this many bytes, and only the first few entries
 * of SSL_CERT_DIR one by one: enough for real paths, and a broken value cannot crowd the system
 * places out of the list (DDS__CACERTS_SEARCHED_MAX holds the worst case). */
#define VALUE_SHOWN 96
#define DIR_ENTRIES_SHOWN 3

__attribute__((format(printf, 2, 3)))
static void note(dds__cacerts *out, const char *fmt, ...) {
    size_t len = strlen(out->searched);
    size_t cap = sizeof(out->searched);
    if (len + 1 >= cap) return;
    if (len) {
        snprintf(out->searched + len, cap - len, ", ");
        len = strlen(out->searched);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->searched + len, cap - len, fmt, ap);
    va_end(ap);
}

static const char *stat_problem(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR: return "missing";
    case ENAMETOOLONG: return "path too long";
    case EACCES: return "not readable";
    default: return "not accessible";
    }
}

/* NULL when path is a readable, non-empty regular file, else what is wrong with it. An empty
 * bundle trusts nothing: choosing it would hide the bundle further down the list. */
static const char *bundle_problem(const char *path) {
    struct stat st;
    if (strlen(path) >= PATH_MAX) return "path too long";
    if (stat(path, &st) != 0) return stat_problem(errno);
    if (S_ISDIR(st.st_mode)) return "a directory";
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    if (st.st_size == 0) return "empty";
    if (access(path, R_OK) != 0) return "not readable";
    return NULL;
}

/* NULL when path is a readable directory holding at least one regular file (symbolic links
 * followed: /etc/ssl/certs is mostly links), else what is wrong with it. */
static const char *dir_problem(const char *path) {
    struct stat st;
    if (strlen(path) >= PATH_MAX) return "path too long";
    if (stat(path, &st) != 0) return stat_problem(errno);
    if (!S_ISDIR(st.st_mode)) return "not a directory";
    DIR *d = opendir(path);
    if (!d) return "not readable";
    bool found = false;
    char entry[PATH_MAX];
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        int n = snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(entry)) continue;
        struct stat es;
        if (stat(entry, &es) == 0 && S_ISREG(es.st_mode) && access(entry, R_OK) == 0) found = true;
    }
    closedir(d);
    return found ? NULL : "no certificate files";
}

static dds__cacerts_kind choose(dds__cacerts *out, dds__cacerts_kind kind, const char *source, const char *path) {
    out->kind = kind;
    out->source = source;
    snprintf(out->path, sizeof(out->path), "%s", path);
    return kind;
}

/* The user's own path: any readable file or directory, empty or not (their choice to make). */
static dds__cacerts_kind use_explicit(const char *path, dds__cacerts *out) {
    struct stat st;
    const char *problem = NULL;
    dds__cacerts_kind kind = DDS__CACERTS_NONE;
    if (strlen(path) >= PATH_MAX) problem = "path too long";
    else if (stat(path, &st) != 0) problem = stat_problem(errno);
    else if (S_ISDIR(st.st_mode)) kind = DDS__CACERTS_DIR;
    else if (S_ISREG(st.st_mode)) kind = DDS__CACERTS_FILE;
    else problem = "not a file or directory";
    if (!problem && access(path, kind == DDS__CACERTS_DIR ? R_OK | X_OK : R_OK) != 0) problem = "not readable";
    if (problem) {
        note(out, "tls_ca_path %.*s (%s)", VALUE_SHOWN, path, problem);
        return DDS__CACERTS_NONE;
    }
    note(out, "tls_ca_path %.*s (chosen)", VALUE_SHOWN, path);
    return choose(out, kind, "tls_ca_path", path);
}

static dds__cacerts_kind from_cert_dir_list(const char *list, dds__cacerts *out) {
    char dir[PATH_MAX];
    unsigned shown = 0, hidden = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ":");
        if (len > 0) {
            const char *problem = "path too long";
            if (len < sizeof(dir)) {
                memcpy(dir, p, len);
                dir[len] = '\0';
                problem = dir_problem(dir);
            }
            if (!problem) {
                note(out, "SSL_CERT_DIR entry %.*s (chosen)", VALUE_SHOWN, dir);
                return choose(out, DDS__CACERTS_DIR, "SSL_CERT_DIR", dir);
            }
            if (shown++ < DIR_ENTRIES_SHOWN)
                note(out, "SSL_CERT_DIR entry %.*s (%s)", (int)(len < VALUE_SHOWN ? len : VALUE_SHOWN), p, problem);
            else
                hidden++;
        }
        p += len;
        if (*p == ':') p++;
    }
    if (shown == 0) note(out, "SSL_CERT_DIR=%.*s (no entry)", VALUE_SHOWN, list);
    if (hidden) note(out, "%u more SSL_CERT_DIR entries (none usable)", hidden);
    return DDS__CACERTS_NONE;
}

dds__cacerts_kind dds__cacerts_find(const char *explicit_path, dds__cacerts *out) {
    memset(out, 0, sizeof(*out));
    if (explicit_path && explicit_path[0]) return use_explicit(explicit_path, out);

    const char *file = getenv("SSL_CERT_FILE");
    if (file && file[0]) {
        const char *problem = bundle_problem(file);
        if (!problem) {
            note(out, "SSL_CERT_FILE=%.*s (chosen)", VALUE_SHOWN, file);
            return choose(out, DDS__CACERTS_FILE, "SSL_CERT_FILE", file);
        }
        note(out, "SSL_CERT_FILE=%.*s (%s)", VALUE_SHOWN, file, problem);
    } else {
        note(out, "SSL_CERT_FILE (unset)");
    }

    const char *dirs = getenv("SSL_CERT_DIR");
    if (dirs && dirs[0]) {
        if (from_cert_dir_list(dirs, out) != DDS__CACERTS_NONE) return out->kind;
    } else {
        note(out, "SSL_CERT_DIR (unset)");
    }

    for (size_t i = 0; i < sizeof(system_bundles) / sizeof(*system_bundles); i++) {
        const char *problem = bundle_problem(system_bundles[i]);
        if (!problem) {
            note(out, "%s (chosen)", system_bundles[i]);
            return choose(out, DDS__CACERTS_FILE, "system bundle", system_bundles[i]);
        }
        note(out, "%s (%s)", system_bundles[i], problem);
    }

    const char *problem = dir_problem(SYSTEM_DIR);
    if (!problem) {
        note(out, "%s/ (chosen)", SYSTEM_DIR);
        return choose(out, DDS__CACERTS_DIR, "system directory", SYSTEM_DIR);
    }
    note(out, "%s/ (%s)", SYSTEM_DIR, problem);
    return DDS__CACERTS_NONE;
}
