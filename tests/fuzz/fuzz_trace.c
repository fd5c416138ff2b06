/* fuzz_trace.c - a tracer payload on arbitrary bytes through what the trace agent does with it:
 * decode (the first byte picks v0.4, v0.5 or v0.7), then normalization/enrichment/obfuscation,
 * then AgentPayload encoding (protobuf + gzip, or the dry-run JSON line), and the agent-side stats
 * concentrator with its StatsPayload (flushed now and then, forced or not). */
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "trace/concentrator.h"
#include "trace/decode.h"
#include "trace/encode.h"
#include "trace/process.h"

static dds__trace_encoder *enc_pb, *enc_json;
static dds__trace_process_counters counters;
static dds__concentrator *conc;
static dds__concentrator_counters conc_counters;
static dds__arena arena;
static unsigned runs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!enc_pb) {
        dds__trace_encoder_config ec = {.traces_url = "http://127.0.0.1:1/api/v0.2/traces", .hostname = "",
                                        .env = "fuzz", .agent_version = "0.0.0", .flush_bytes = 100000};
        enc_pb = dds__trace_encoder_new(&ec);
        ec.dry_run = true;
        enc_json = dds__trace_encoder_new(&ec);
        dds__arena_init(&arena, 64 * 1024, 64u << 20);
        dds__concentrator_config cc = {.default_env = "fuzz", .max_keys = 64, .now_ns = 1795530200000000000LL};
        conc = dds__concentrator_new(&cc, &conc_counters);
        if (!enc_pb || !enc_json || !conc) abort();
    }
    if (size < 1) return 0;
    static const dds__trace_format fmts[] = {DDS__TRACE_V04, DDS__TRACE_V05, DDS__TRACE_V07};
    dds__trace_format fmt = fmts[data[0] % 3];
    uint8_t *body = malloc(size - 1 ? size - 1 : 1);
    if (size > 1) memcpy(body, data + 1, size - 1);
    dds__arena_reset(&arena);
    dds__tracer_payload tp;
    char err[160];
    if (dds__trace_decode(fmt, body, size - 1, &arena, &tp, err, sizeof(err)) == 0) {
        dds__trace_process_config pc = {
            .lang = {"python", 6},
            .client_computed_top_level = (data[0] & 8) != 0,
            .default_env = {"fuzz", 4},
            .cloud_origin = (data[0] & 16) ? "lambda" : NULL,
            .function_name = {"fn", 2},
            .function_tags = {"a:b,c:d", 7},
            .remove_query_string = (data[0] & 32) != 0,
            .obfuscate_credit_cards = true,
            .now_ns = 1795530200000000000LL,
        };
        dds__trace_process(&tp, &pc, &arena, &counters);
        dds__trace_encoder *enc = (runs & 1) ? enc_json : enc_pb;
        bool full = dds__trace_encoder_add(enc, &tp);
        if (full || ++runs % 32 == 0) dds__payload_free(dds__trace_encoder_take(enc));
        dds__concentrator_add(conc, &tp);
        if (runs % 8 == 0) {
            dds__buf items;
            dds__buf_init(&items);
            uint32_t n = dds__concentrator_flush(conc, 1795530200000000000LL + (int64_t)runs * 1000000000LL,
                                                 (data[0] & 64) != 0, &items);
            dds__payload_free(dds__trace_stats_payload_computed(items.data, items.len, n, "http://127.0.0.1:1/s", "",
                                                                "fuzz", "0", (runs & 16) != 0));
            dds__buf_free(&items);
        }
    }
    free(body); /* the encoder must have copied what it keeps */
    return 0;
}
