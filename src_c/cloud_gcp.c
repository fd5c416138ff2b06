/* cloud_gcp.c - the Google Cloud metadata check, on the loop: one POST, a bounded answer, a
 * 100 ms deadline. In: the metadata server's answer. Out: project and region, or why the check
 * failed. Never blocks the loop (no name lookup: a numeric address) and never trusts the body: a
 * malformed one gives "unknown" values. */
#include "cloud_gcp.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

struct dds__gcp_check {
    struct event_base *base;
    struct evhttp_connection *conn;
    struct evhttp_request *req;     /* in flight; libevent frees it after its callback */
    struct event *deadline_ev, *finish_ev;
    dds__gcp_done_fn done;
    void *user;
    bool finished;
    dds__gcp_result result;
    dds__gcp_metadata md;
    char why[192];
};

/* ---- the metadata document ------------------------------------------------------------------ */

typedef struct jr {
    const char *p, *end;
    int depth;
} jr;

static void ws(jr *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

/* A string at r->p into out (NUL-terminated; escapes decoded, \u as '?' unless ASCII). false on
 * a malformed string; *fits false when it did not fit cap (out then unusable). out may be NULL. */
static bool str(jr *r, char *out, size_t cap, bool *fits) {
    size_t n = 0;
    *fits = true;
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    while (r->p < r->end && *r->p != '"') {
        char ch = *r->p++;
        if ((unsigned char)ch < 0x20) return false;
        if (ch == '\\') {
            if (r->p >= r->end) return false;
            char e = *r->p++;
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                if (r->end - r->p < 4) return false;
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *r->p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else return false;
                }
                ch = v >= 0x20 && v < 0x7f ? (char)v : '?';
                break;
            }
            default: return false;
            }
        }
        if (out) {
            if (n + 1 < cap) out[n++] = ch;
            else *fits = false;
        }
    }
    if (r->p >= r->end) return false;
    r->p++;
    if (out && cap) out[n] = '\0';
    return true;
}

static bool skip_value(jr *r);

static bool skip_container(jr *r, char close, bool keys) {
    if (++r->depth > JSON_MAX_DEPTH) return false;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        bool fits;
        ws(r);
        if (keys) {
            if (!str(r, NULL, 0, &fits)) return false;
            ws(r);
            if (r->p >= r->end || *r->p++ != ':') return false;
        }
        if (!skip_value(r)) return false;
        ws(r);
        if (r->p >= r->end) return false;
        char c = *r->p++;
        if (c == close) break;
        if (c != ',') return false;
    }
    r->depth--;
    return true;
}

static bool skip_value(jr *r) {
    ws(r);
    if (r->p >= r->end) return false;
    bool fits;
    switch (*r->p) {
    case '{': return skip_container(r, '}', true);
    case '[': return skip_container(r, ']', false);
    case '"': return str(r, NULL, 0, &fits);
    default: {
        /* numbers, true, false, null: a run of their characters */
        const char *start = r->p;
        while (r->p < r->end && strchr("0123456789+-.eEtrufalsn", *r->p)) r->p++;
        return r->p > start;
    }
    }
}

/* At a value: follow path (object keys) and copy the string found there into out. 1 found, 0
 * not there (or not a string, or too long), -1 malformed. */
static int find(jr *r, const char *const *path, size_t n, char *out, size_t cap) {
    ws(r);
    if (n == 0) {
        bool fits;
        if (r->p < r->end && *r->p == '"') return str(r, out, cap, &fits) ? (fits ? 1 : 0) : -1;
        return skip_value(r) ? 0 : -1;
    }
    if (r->p >= r->end || *r->p != '{') return skip_value(r) ? 0 : -1;
    if (++r->depth > JSON_MAX_DEPTH) return -1;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        r->depth--;
        return 0;
    }
    int found = 0;
    for (;;) {
        char key[64];
        bool fits;
        ws(r);
        if (!str(r, key, sizeof(key), &fits)) return -1;
        ws(r);
        if (r->p >= r->end || *r->p++ != ':') return -1;
        if (fits && !found && strcmp(key, path[0]) == 0) {
            int f = find(r, path + 1, n - 1, out, cap);
            if (f < 0) return -1;
            found = f;
        } else if (!skip_value(r)) {
            return -1;
        }
        ws(r);
        if (r->p >= r->end) return -1;
        char c = *r->p++;
        if (c == '}') break;
        if (c != ',') return -1;
    }
    r->depth--;
    return found;
}

void dds__gcp_region_of(const char *s, char *out, size_t cap) {
    const char *last = s;
    int slashes = 0;
    for (const char *p = s; *p; p++)
        if (*p == '/') slashes++, last = p + 1;
    if (slashes != 3 || strlen(last) >= cap) last = "unknown";
    snprintf(out, cap, "%s", last);
}

int dds__gcp_parse_metadata(const char *body, size_t len, dds__gcp_metadata *md) {
    static const char *const project[] = {"project", "projectId"};
    static const char *const region[] = {"instance", "region"};
    snprintf(md->project_id, sizeof(md->project_id), "unknown");
    snprintf(md->region, sizeof(md->region), "unknown");
    jr r = {body, body + len, 0};
    ws(&r);
    if (r.p >= r.end || *r.p != '{') return -1;
    char v[DDS__GCP_VALUE_MAX];
    int f = find(&r, project, 2, v, sizeof(v));
    if (f < 0) return -1;
    /* Serde fails the whole document when one field is missing: both are "unknown" then. */
    char reg[DDS__GCP_VALUE_MAX * 2];
    r = (jr){body, body + len, 0};
    int g = find(&r, region, 2, reg, sizeof(reg));
    if (g < 0) return -1;
    if (f == 1 && g == 1) {
        snprintf(md->project_id, sizeof(md->project_id), "%s", v);
        dds__gcp_region_of(reg, md->region, sizeof(md->region));
    }
    return 0;
}

/* ---- the request ------------------------------------------------------------------------------- */

static void finish(dds__gcp_check *c, dds__gcp_result result, const char *why) {
    if (c->finished) return;
    c->finished = true;
    c->result = result;
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
    event_del(c->deadline_ev);
    /* The user's callback and the connection's release run outside libevent's request callback. */
    event_active(c->finish_ev, 0, 0);
}

static void on_finish(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__gcp_check *c = arg;
    if (c->conn) {
        evhttp_connection_free(c->conn);
        c->conn = NULL;
    }
    c->done(c->user, c->result, &c->md, c->result == DDS__GCP_OK || c->result == DDS__GCP_TIMEOUT ? NULL : c->why);
}

static void on_response(struct evhttp_request *req, void *arg) {
    dds__gcp_check *c = arg;
    c->req = NULL; /* libevent frees it after this callback */
    if (!req || evhttp_request_get_response_code(req) == 0) {
        finish(c, DDS__GCP_UNREACHABLE, "the metadata server cannot be reached");
        return;
    }
    const char *server = evhttp_find_header(evhttp_request_get_input_headers(req), "Server");
    if (!server) {
        finish(c, DDS__GCP_NOT_SERVERLESS, "the metadata server answered without a Server header");
        return;
    }
    if (strcmp(server, "Metadata Server for Serverless") != 0) {
        char why[160];
        snprintf(why, sizeof(why), "the metadata server is \"%.64s\", not \"Metadata Server for Serverless\"", server);
        finish(c, DDS__GCP_NOT_SERVERLESS, why);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    dds__gcp_parse_metadata(body ? body : "", body ? len : 0, &c->md);
    finish(c, DDS__GCP_OK, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__gcp_check *c = arg;
    if (c->req) {
        evhttp_cancel_request(c->req);  /* its callback will not run */
        c->req = NULL;
    }
    finish(c, DDS__GCP_TIMEOUT, NULL);
}

dds__gcp_check *dds__gcp_check_start(struct event_base *base, const char *address, uint16_t port, const char *path,
                                     uint32_t timeout_ms, dds__gcp_done_fn done, void *user) {
    unsigned char ip[16];
    if (inet_pton(AF_INET, address, ip) != 1 && inet_pton(AF_INET6, address, ip) != 1) return NULL;
    dds__gcp_check *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->base = base;
    c->done = done;
    c->user = user;
    snprintf(c->md.project_id, sizeof(c->md.project_id), "unknown");
    snprintf(c->md.region, sizeof(c->md.region), "unknown");
    c->deadline_ev = evtimer_new(base, on_deadline, c);
    c->finish_ev = event_new(base, -1, 0, on_finish, c);
    if (!c->deadline_ev || !c->finish_ev) goto fail;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (evtimer_add(c->deadline_ev, &tv) != 0) goto fail;
    /* No DNS base: a numeric address is parsed, never looked up. */
    c->conn = evhttp_connection_base_new(base, NULL, address, port);
    if (!c->conn) goto fail;
    evhttp_connection_set_retries(c->conn, 0);
    evhttp_connection_set_max_body_size(c->conn, DDS__GCP_METADATA_MAX_BODY);
    c->req = evhttp_request_new(on_response, c);
    if (!c->req) goto fail;
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Host", DDS__GCP_METADATA_HOST);
    evhttp_add_header(h, "Metadata-Flavor", "Google");
    evhttp_add_header(h, "Content-Length", "0");
    /* On failure libevent has already freed the request. */
    if (evhttp_make_request(c->conn, c->req, EVHTTP_REQ_POST, path) != 0) {
        c->req = NULL;
        finish(c, DDS__GCP_UNREACHABLE, "cannot send the request to the Google metadata server");
    }
    return c;
fail:
    if (c->req) evhttp_request_free(c->req);
    c->req = NULL;
    dds__gcp_check_free(c);
    return NULL;
}

void dds__gcp_check_free(dds__gcp_check *c) {
    if (!c) return;
    if (c->req) evhttp_cancel_request(c->req);
    if (c->conn) evhttp_connection_free(c->conn);
    if (c->deadline_ev) event_free(c->deadline_ev);
    if (c->finish_ev) event_free(c->finish_ev);
    free(c);
}
