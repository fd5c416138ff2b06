/* cacerts.h - where the CA certificates that verify the intake's TLS certificate come from.
 * A libcurl linked statically against mbedTLS has no default CA bundle or path, so the core finds
 * the system's certificates itself, once per instance at start, the way Go's crypto/x509 does
 * on Linux. The result is handed to the intake (CURLOPT_CAINFO or CURLOPT_CAPATH). */
#ifndef DDS_TRANSPORT_CACERTS_H
#define DDS_TRANSPORT_CACERTS_H
#include <limits.h>

typedef enum dds__cacerts_kind {
    DDS__CACERTS_NONE = 0,  /* nothing usable found */
    DDS__CACERTS_FILE = 1,  /* a PEM bundle: CURLOPT_CAINFO */
    DDS__CACERTS_DIR = 2,   /* a directory of PEM files: CURLOPT_CAPATH */
} dds__cacerts_kind;

/* The worst case of the list: SSL_CERT_FILE and three SSL_CERT_DIR entries (each value cut at 96
 * bytes), then the seven system places with a word on each (about 830 bytes in all). */
#define DDS__CACERTS_SEARCHED_MAX 1024

typedef struct dds__cacerts {
    dds__cacerts_kind kind;
    /* Static text: "tls_ca_path", "SSL_CERT_FILE", "SSL_CERT_DIR", "system bundle" or "system
     * directory"; NULL when kind is NONE. */
    const char *source;
    char path[PATH_MAX];  /* the chosen file or directory; "" when kind is NONE */
    /* Every place looked at, in order, each with what was wrong with it ("... (missing)"), for
     * the debug log and for the error when nothing was found. Cut (never overflowed) if long. */
    char searched[DDS__CACERTS_SEARCHED_MAX];
} dds__cacerts;

/*
 * Choose the CA certificates, first match wins:
 *   1. explicit_path (the tls_ca_path field) when not NULL or "": a file is a bundle, a
 *      directory a CA directory. Nothing else is looked at, even when it is unusable: the user
 *      asked for that one (dds_config_validate has already refused a path that does not exist).
 *   2. $SSL_CERT_FILE, when it names a readable, non-empty regular file;
 *   3. $SSL_CERT_DIR, a colon-separated list: the first readable directory holding at least one
 *      regular file;
 *   4. the first readable, non-empty regular file of the system bundles (Debian, Ubuntu, Alpine;
 *      Amazon Linux, RHEL, Fedora; SUSE; older RHEL; RHEL's extracted trust; macOS-like layouts);
 *   5. the directory /etc/ssl/certs when it holds at least one regular file.
 * Fills *out (all of it) and returns out->kind. Reads the two variables with getenv and makes a
 * few stat/opendir calls: blocks briefly, so it runs once per instance at start, never on the
 * loop. Keeps nothing allocated, never logs (the caller decides what to say). Not thread-safe
 * against setenv, like getenv.
 */
dds__cacerts_kind dds__cacerts_find(const char *explicit_path, dds__cacerts *out);

/* The variables and field that choose the certificates, for messages telling the user what to
 * set. Static text. */
#define DDS__CACERTS_HOW_TO_SET                                                                  \
    "set DD_TLS_CA_PATH (tls_ca_path) to a PEM bundle or a directory of PEM certificates, or "    \
    "SSL_CERT_FILE to a PEM bundle, or SSL_CERT_DIR to such a directory"
#endif
