/* Tests of src_c/cloud_gcp.c: the metadata document (tables, every input ending at a guard page),
 * the region string, and the check itself against a metadata server played by an evhttp server
 * on loopback: a serverless answer, another Server header, none, no answer in time, nobody
 * listening, and a check freed while in flight. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cloud_gcp.h"
#include "test.h"

static int parse(const char *s, dds__gcp_metadata *md) {
    size_t n = strlen(s);
    char *g = test_guarded_copy(s, n);
    int rc = dds__gcp_parse_metadata(g, n, md);
    test_guarded_free(g, n);
    return rc;
}

TEST(metadata_table) {
    static const struct { const char *in; int rc; const char *project, *region; } rows[] = {
        {"{\"instance\":{\"region\":\"projects/123/regions/us-east1\",\"zone\":\"z\"},\"project\":{\"projectId\":\"my-proj\","
         "\"numericProjectId\":123}}", 0, "my-proj", "us-east1"},
        /* order, nesting and other values do not matter */
        {" { \"project\" : { \"attributes\": {\"a\": [1, 2.5e3, true, null, {\"b\": \"c\"}]}, \"projectId\" : \"p\\u0031\" } ,"
         " \"instance\" : { \"region\" : \"projects\\/9/regions/eu\" } } ", 0, "p1", "eu"},
        /* serde rejects the whole document when a field is missing: both unknown */
        {"{\"instance\":{\"region\":\"projects/1/regions/r\"}}", 0, "unknown", "unknown"},
        {"{\"project\":{\"projectId\":\"p\"}}", 0, "unknown", "unknown"},
        {"{\"project\":{\"projectId\":5},\"instance\":{\"region\":\"projects/1/regions/r\"}}", 0, "unknown", "unknown"},
        /* a region without four parts */
        {"{\"project\":{\"projectId\":\"p\"},\"instance\":{\"region\":\"us-east1\"}}", 0, "p", "unknown"},
        {"{}", 0, "unknown", "unknown"},
        /* not a document */
        {"", -1, "unknown", "unknown"},
        {"[]", -1, "unknown", "unknown"},
        {"{\"project\":{\"projectId\":\"p\"", -1, "unknown", "unknown"},
        {"{\"project\":{\"projectId\":\"p\\", -1, "unknown", "unknown"},
        {"{\"project\":{\"projectId\":\"p\\u12\"}}", -1, "unknown", "unknown"},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", -1, "unknown", "unknown"},
        {"{\"a\" 1}", -1, "unknown", "unknown"},
        {"{\"a\":\"raw\ncontrol\"}", -1, "unknown", "unknown"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        dds__gcp_metadata md;
        int rc = parse(rows[i].in, &md);
        CHECK_MSG(rc == rows[i].rc, "row %zu: rc %d", i, rc);
        CHECK_MSG(strcmp(md.project_id, rows[i].project) == 0 && strcmp(md.region, rows[i].region) == 0,
                  "row %zu: %s / %s", i, md.project_id, md.region);
    }
}

TEST(region_string) {
    static const struct { const char *in, *want; } rows[] = {
        {"projects/123/regions/us-east1", "us-east1"},
        {"projects/123/regions/", ""},
        {"us-east1", "unknown"},
        {"projects/123/regions/us/east1", "unknown"},
        {"", "unknown"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        char out[64];
        dds__gcp_region_of(rows[i].in, out, sizeof(out));
        CHECK_EQ_STR(out, rows[i].want);
    }
}

/* ---- against a loopback metadata server ----------------------------------------------------- */

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port;
    const char *server_header;   /* NULL: none */
    int delay_ms;                /* answer this late */
    int requests;
    char method_path[128];
    char flavor[32];
    struct evhttp_request *held;
    struct event *reply_ev;
} server;

static const char DOC[] = "{\"instance\":{\"region\":\"projects/42/regions/europe-west1\"},\"project\":{\"projectId\":\"proj-x\"}}";

static void reply(server *sv, struct evhttp_request *req) {
    if (sv->server_header) evhttp_add_header(evhttp_request_get_output_headers(req), "Server", sv->server_header);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, DOC, sizeof(DOC) - 1);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_reply_later(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    server *sv = arg;
    if (sv->held) reply(sv, sv->held);
    sv->held = NULL;
}

static void on_request(struct evhttp_request *req, void *arg) {
    server *sv = arg;
    sv->requests++;
    snprintf(sv->method_path, sizeof(sv->method_path), "%s %s",
             evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "other", evhttp_request_get_uri(req));
    const char *f = evhttp_find_header(evhttp_request_get_input_headers(req), "Metadata-Flavor");
    snprintf(sv->flavor, sizeof(sv->flavor), "%s", f ? f : "");
    if (sv->delay_ms) {
        sv->held = req;
        struct timeval tv = {0, sv->delay_ms * 1000};
        event_add(sv->reply_ev, &tv);
        return;
    }
    reply(sv, req);
}

static void server_start(server *sv, struct event_base *base) {
    sv->base = base;
    sv->http = evhttp_new(base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(sv->http, "127.0.0.1", 0);
    CHECK(bs != NULL);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    sv->port = ntohs(sa.sin_port);
    evhttp_set_gencb(sv->http, on_request, sv);
    sv->reply_ev = evtimer_new(base, on_reply_later, sv);
}

typedef struct outcome {
    int calls;
    dds__gcp_result result;
    dds__gcp_metadata md;
    char why[256];
    struct event_base *base;
} outcome;

static void on_done(void *user, dds__gcp_result result, const dds__gcp_metadata *md, const char *why) {
    outcome *o = user;
    o->calls++;
    o->result = result;
    o->md = *md;
    snprintf(o->why, sizeof(o->why), "%s", why ? why : "(null)");
    event_base_loopexit(o->base, NULL);
}

/* One check against a fresh server; the loop runs until done (or 3 s). */
static outcome run_check(const char *server_header, int delay_ms, bool listening, server *sv_out) {
    struct event_base *base = event_base_new();
    server sv = {.server_header = server_header, .delay_ms = delay_ms};
    server_start(&sv, base);
    uint16_t port = sv.port;
    if (!listening) {
        evhttp_free(sv.http);
        sv.http = NULL;
    }
    outcome o = {.base = base};
    /* The product's 100 ms only where the timeout is what is tested (a delayed answer): under
     * valgrind a prompt answer can take longer than that to be read. */
    uint32_t timeout_ms = delay_ms > 0 ? DDS__GCP_METADATA_TIMEOUT_MS : 2000;
    dds__gcp_check *c = dds__gcp_check_start(base, "127.0.0.1", port, DDS__GCP_METADATA_PATH, timeout_ms, on_done, &o);
    CHECK(c != NULL);
    CHECK_EQ_INT(o.calls, 0);  /* never from inside start */
    struct timeval limit = {3, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    /* let a late reply go out before the server goes */
    struct timeval settle = {0, 300000};
    event_base_loopexit(base, &settle);
    event_base_dispatch(base);
    dds__gcp_check_free(c);
    if (sv.http) evhttp_free(sv.http);
    event_free(sv.reply_ev);
    event_base_free(base);
    if (sv_out) *sv_out = sv;
    return o;
}

TEST(check_against_a_loopback_server) {
    server sv;
    outcome o = run_check("Metadata Server for Serverless", 0, true, &sv);
    CHECK_EQ_INT(o.calls, 1);
    CHECK_EQ_INT(o.result, DDS__GCP_OK);
    CHECK_EQ_STR(o.md.project_id, "proj-x");
    CHECK_EQ_STR(o.md.region, "europe-west1");
    CHECK_EQ_STR(o.why, "(null)");
    CHECK_EQ_STR(sv.method_path, "POST " DDS__GCP_METADATA_PATH);
    CHECK_EQ_STR(sv.flavor, "Google");

    o = run_check("Metadata Server for Compute Engine", 0, true, NULL);
    CHECK_EQ_INT(o.calls, 1);
    CHECK_EQ_INT(o.result, DDS__GCP_NOT_SERVERLESS);
    CHECK_EQ_STR(o.why, "the metadata server is \"Metadata Server for Compute Engine\", not \"Metadata Server "
                        "for Serverless\"");
    CHECK_EQ_STR(o.md.project_id, "unknown");

    o = run_check(NULL, 0, true, NULL);
    CHECK_EQ_INT(o.result, DDS__GCP_NOT_SERVERLESS);
    CHECK(strstr(o.why, "without a Server header") != NULL);

    o = run_check("Metadata Server for Serverless", 400, true, &sv);
    CHECK_EQ_INT(o.calls, 1);
    CHECK_EQ_INT(o.result, DDS__GCP_TIMEOUT);   /* as the Rust binary: unknown values, not a failure */
    CHECK_EQ_STR(o.md.region, "unknown");
    CHECK_EQ_INT(sv.requests, 1);

    o = run_check("Metadata Server for Serverless", 0, false, NULL);
    CHECK_EQ_INT(o.calls, 1);
    CHECK_EQ_INT(o.result, DDS__GCP_UNREACHABLE);
    CHECK_EQ_STR(o.why, "the metadata server cannot be reached");
}

TEST(names_are_never_looked_up) {
    struct event_base *base = event_base_new();
    outcome o = {.base = base};
    CHECK(dds__gcp_check_start(base, "metadata.google.internal", 80, "/", 100, on_done, &o) == NULL);
    CHECK(dds__gcp_check_start(base, "localhost", 80, "/", 100, on_done, &o) == NULL);
    dds__gcp_check *c = dds__gcp_check_start(base, "::1", 9, "/", 100, on_done, &o);
    CHECK(c != NULL);
    dds__gcp_check_free(c);
    event_base_free(base);
}

TEST(freed_in_flight_never_calls_back) {
    struct event_base *base = event_base_new();
    server sv = {.server_header = "Metadata Server for Serverless", .delay_ms = 200};
    server_start(&sv, base);
    outcome o = {.base = base};
    dds__gcp_check *c = dds__gcp_check_start(base, "127.0.0.1", sv.port, "/", 1000, on_done, &o);
    struct timeval t = {0, 50000};
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    dds__gcp_check_free(c);
    struct timeval settle = {0, 300000};
    event_base_loopexit(base, &settle);
    event_base_dispatch(base);
    CHECK_EQ_INT(o.calls, 0);
    evhttp_free(sv.http);
    event_free(sv.reply_ev);
    event_base_free(base);
}

int main(void) {
    RUN(metadata_table);
    RUN(region_string);
    RUN(check_against_a_loopback_server);
    RUN(names_are_never_looked_up);
    RUN(freed_in_flight_never_calls_back);
    return TEST_REPORT();
}
