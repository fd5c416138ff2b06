/* peer_tags.c - peer-tag keys and the quantization of their values. In: a tag value. Out: the
 * value with IP addresses blocked and repeated entries dropped, appended to a buffer. Reads
 * nothing past the value; allocates only for values of more than 64 entries (a hash set that
 * keeps the dedup linear). */
#include "trace/peer_tags.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

/* crates/datadog-trace-agent/src/peer_tags.rs @d0c7f44: the fallbacks of the _dd.base_service,
 * peer.service, peer.hostname, peer.db.*, peer.cassandra/couchbase, peer.messaging.*,
 * peer.kafka, peer.rpc.* and peer.aws.* concepts of peer_tags_mappings.json, sorted. */
const char *const dds__peer_tag_keys[] = {
    "_dd.base_service", "active_record.db.vendor", "amqp.destination", "amqp.exchange", "amqp.queue",
    "aws.queue.name", "aws.s3.bucket", "bucketname", "cassandra.keyspace", "db.cassandra.contact.points",
    "db.couchbase.seed.nodes", "db.hostname", "db.instance", "db.name", "db.namespace", "db.system", "db.type",
    "dns.hostname", "grpc.host", "hostname", "http.host", "http.server_name", "messaging.destination",
    "messaging.destination.name", "messaging.kafka.bootstrap.servers", "messaging.rabbitmq.exchange",
    "messaging.system", "mongodb.db", "msmq.queue.path", "net.peer.name", "network.destination.ip",
    "network.destination.name", "out.host", "peer.hostname", "peer.service", "queuename", "rpc.service",
    "rpc.system", "sequel.db.vendor", "server.address", "streamname", "tablename", "topicname",
};
const size_t dds__peer_tag_nkeys = sizeof(dds__peer_tag_keys) / sizeof(dds__peer_tag_keys[0]);

/* Loopback and the link-local metadata servers (AWS, GCP, Azure; ECS task metadata) name no
 * peer worth hiding and have no cardinality. */
static const char *const ALLOWED_IPS[] = {"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254", "169.254.170.2"};
#define BLOCKED "blocked-ip-address"
#define INLINE_PIECES 64

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex_letter(char c) { return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static bool parses_ipv6(const char *p, size_t n) {
    char tmp[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(tmp)) return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    struct in6_addr a;
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

/* Four fields of 0-255 without leading zeros, separated by sep ('.', '-' or '_'): the address
 * ends at the first other character or after the fourth field. Returns its length, or 0. */
static size_t ipv4_len(const char *s, size_t n, char sep) {
    unsigned value = 0, digits = 0, field = 0;
    size_t end = n;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_digit(c)) {
            if (digits == 1 && value == 0) return 0;
            value = value * 10 + (unsigned)(c - '0');
            digits++;
            if (value > 255) return 0;
        } else if (c == sep) {
            if (digits == 0) return 0;
            if (field == 3) {
                end = i;
                break;
            }
            value = digits = 0;
            field++;
        } else {
            end = i;
            break;
        }
    }
    return digits > 0 && field == 3 ? end : 0;
}

/* The IP address s starts with: *ip, *ip_len and the index where the suffix starts. */
static bool find_ip(const char *s, size_t n, const char **ip, size_t *ip_len, size_t *suffix_at) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_digit(c)) continue;
        if (c == '.' || c == '-' || c == '_') {
            size_t len = ipv4_len(s, n, c);
            if (!len) return false;
            *ip = s, *ip_len = len, *suffix_at = len;
            return true;
        }
        if ((c == ':' || is_hex_letter(c)) && parses_ipv6(s, n)) {
            *ip = s, *ip_len = n, *suffix_at = n;
            return true;
        }
        if (c == '[') {
            /* [host]:port; the bracket is looked for from the second byte on, as in R */
            const char *close = n > 1 ? memchr(s + 1, ']', n - 1) : NULL;
            if (!close || !parses_ipv6(s + 1, (size_t)(close - s - 1))) return false;
            *ip = s + 1, *ip_len = (size_t)(close - s - 1), *suffix_at = (size_t)(close - s) + 1;
            return true;
        }
        return false;
    }
    return false;
}

/* "ip-", or a scheme of dnspoll, ftp, file, http or https with 2 or 3 slashes. */
static size_t prefix_len(const char *s, size_t n) {
    if (n >= 3 && memcmp(s, "ip-", 3) == 0) return 3;
    static const char *const schemes[] = {"dnspoll", "ftp", "file", "http", "https"};
    for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        size_t l = strlen(schemes[k]);
        if (n < l + 3 || memcmp(s, schemes[k], l) != 0 || s[l] != ':' || s[l + 1] != '/' || s[l + 2] != '/') continue;
        return l + 3 + (n > l + 3 && s[l + 3] == '/');
    }
    return 0;
}

static void quantize_entry(const char *s, size_t n, dds__buf *out) {
    size_t pre = prefix_len(s, n);
    const char *ip;
    size_t ip_len, suffix_at;
    if (find_ip(s + pre, n - pre, &ip, &ip_len, &suffix_at)) {
        bool allowed = false;
        for (size_t k = 0; k < sizeof(ALLOWED_IPS) / sizeof(ALLOWED_IPS[0]); k++)
            if (strlen(ALLOWED_IPS[k]) == ip_len && memcmp(ALLOWED_IPS[k], ip, ip_len) == 0) allowed = true;
        if (!allowed) {
            dds__buf_append(out, s, pre);
            dds__buf_puts(out, BLOCKED);
            dds__buf_append(out, s + pre + suffix_at, n - pre - suffix_at);
            return;
        }
    }
    dds__buf_append(out, s, n);
}

typedef struct piece { uint64_t hash; size_t at, len; } piece;

void dds__peer_tag_quantize(dds__slice v, dds__buf *out) {
    size_t npieces = 1;
    for (size_t i = 0; i < v.len; i++) npieces += v.ptr[i] == ',';
    piece inline_pieces[INLINE_PIECES];
    piece *seen = inline_pieces;
    uint32_t *table = NULL;   /* open addressing over seen[], for values of many entries */
    size_t mask = 0, nseen = 0;
    if (npieces > INLINE_PIECES) {
        size_t cap = 2;
        while (cap < npieces * 2) cap *= 2;
        seen = malloc(npieces * sizeof(*seen));
        table = calloc(cap, sizeof(*table));
        if (!seen || !table) {  /* no dedup then: the value stays usable, only less collapsed */
            free(table);
            table = NULL;
            if (seen) free(seen);
            seen = NULL;
        }
        mask = cap - 1;
    }
    const char *p = v.ptr, *end = v.ptr + v.len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        size_t mark = out->len;
        if (nseen) dds__buf_putc(out, ',');
        size_t at = out->len;
        quantize_entry(p, (size_t)(e - p), out);
        if (!out->oom && seen) {
            size_t len = out->len - at;
            uint64_t h = dds__hash64(out->data + at, len, 0);
            bool dup = false;
            if (table) {
                size_t i = (size_t)h & mask;
                for (; table[i]; i = (i + 1) & mask) {
                    const piece *q = &seen[table[i] - 1];
                    if (q->hash == h && q->len == len && memcmp(out->data + q->at, out->data + at, len) == 0) {
                        dup = true;
                        break;
                    }
                }
                if (!dup) table[i] = (uint32_t)nseen + 1;
            } else {
                for (size_t k = 0; k < nseen && !dup; k++)
                    dup = seen[k].hash == h && seen[k].len == len &&
                          memcmp(out->data + seen[k].at, out->data + at, len) == 0;
            }
            if (dup) out->len = mark;
            else seen[nseen++] = (piece){h, at, len};
        } else if (!seen) {
            nseen++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (seen != inline_pieces) free(seen);
    free(table);
}
