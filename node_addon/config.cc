// config.cc - the options object -> dds_config, on the JS thread. In: a plain JS object with
// camelCase names. Out: a dds_config whose strings live in OwnedConfig. It converts types only:
// defaults come from dds_config_init, the DD_* fallbacks from dds_config_from_env, and every
// range and format check from dds_config_validate (run by dds_start).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <strings.h>

#include "addon.h"

namespace dds_node {
namespace {

enum class Kind {
    kString,    // const char *: a string, or null for "not set" (overrides a DD_* variable)
    kList,      // const char * holding "a,b,c": a string, or an array joined with ','
    kJson,      // const char * holding JSON text: a string as it is, or an array made JSON.stringify'd
    kBool,      // bool
    kInt32,     // int32_t (ports: 70000 fits and reaches dds_config_validate)
    kUint32,    // uint32_t
    kInt,       // int (a file descriptor)
    kLogLevel,  // dds_log_level, by the names of dds_log_level_name
};

struct Field {
    const char *name;  // the JS option
    Kind kind;
    size_t offset;     // in dds_config
};

#define FIELD(js, kind, member) {js, Kind::kind, offsetof(dds_config, member)}
// Every dds_config field, in the header's order. A field added to the header needs its line here:
// the size check below fails until it has one.
const Field kFields[] = {
    FIELD("apiKey", kString, api_key),
    FIELD("site", kString, site),
    FIELD("ddUrl", kString, dd_url),
    FIELD("httpsProxy", kString, https_proxy),
    FIELD("tlsCaPath", kString, tls_ca_path),
    FIELD("tlsVerify", kBool, tls_verify),
    FIELD("dryRun", kBool, dry_run),
    FIELD("dryRunFd", kInt, dry_run_fd),
    FIELD("logLevel", kLogLevel, log_level),
    FIELD("tags", kList, tags),
    FIELD("env", kString, env),
    FIELD("service", kString, service),
    FIELD("version", kString, version),
    FIELD("useDogstatsd", kBool, use_dogstatsd),
    FIELD("dogstatsdPort", kInt32, dogstatsd_port),
    FIELD("dogstatsdSocket", kString, dogstatsd_socket),
    FIELD("dogstatsdNonLocalTraffic", kBool, dogstatsd_non_local_traffic),
    FIELD("dogstatsdBufferSize", kUint32, dogstatsd_buffer_size),
    FIELD("dogstatsdSoRcvbuf", kUint32, dogstatsd_so_rcvbuf),
    FIELD("dogstatsdQueueBytes", kUint32, dogstatsd_queue_bytes),
    FIELD("metricNamespace", kString, metric_namespace),
    FIELD("contextLimit", kUint32, context_limit),
    FIELD("counterExpirySeconds", kUint32, counter_expiry_s),
    FIELD("histogramAggregates", kList, histogram_aggregates),
    FIELD("histogramPercentiles", kList, histogram_percentiles),
    FIELD("clientTelemetry", kBool, client_telemetry),
    FIELD("flushIntervalMs", kUint32, flush_interval_ms),
    FIELD("useTraceAgent", kBool, use_trace_agent),
    FIELD("apmReceiverPort", kInt32, apm_receiver_port),
    FIELD("apmReceiverSocket", kString, apm_receiver_socket),
    FIELD("apmNonLocalTraffic", kBool, apm_non_local_traffic),
    FIELD("apmDdUrl", kString, apm_dd_url),
    FIELD("apmProfilingDdUrl", kString, apm_profiling_dd_url),
    FIELD("apmTelemetryDdUrl", kString, apm_telemetry_dd_url),
    FIELD("evpProxyDdUrl", kString, evp_proxy_dd_url),
    FIELD("apmMaxRequestBytes", kUint32, apm_max_request_bytes),
    FIELD("apmRemoveQueryString", kBool, apm_remove_query_string),
    FIELD("apmObfuscateCreditCards", kBool, apm_obfuscate_credit_cards),
    FIELD("apmRemovePathsWithDigits", kBool, apm_remove_paths_with_digits),
    FIELD("apmObfuscateRedis", kBool, apm_obfuscate_redis),
    FIELD("apmRedisRemoveAllArgs", kBool, apm_redis_remove_all_args),
    FIELD("apmObfuscateValkey", kBool, apm_obfuscate_valkey),
    FIELD("apmValkeyRemoveAllArgs", kBool, apm_valkey_remove_all_args),
    FIELD("apmObfuscateMemcached", kBool, apm_obfuscate_memcached),
    FIELD("apmMemcachedKeepCommand", kBool, apm_memcached_keep_command),
    FIELD("apmRemoveStackTraces", kBool, apm_remove_stack_traces),
    FIELD("apmObfuscationCacheEnabled", kBool, apm_obfuscation_cache_enabled),
    FIELD("apmObfuscationCacheMaxSize", kUint32, apm_obfuscation_cache_max_size),
    FIELD("apmReplaceTags", kString, apm_replace_tags),
    FIELD("agentStatsComputationEnabled", kBool, agent_stats_computation_enabled),
    FIELD("logsEnabled", kBool, logs_enabled),
    FIELD("logsPort", kInt32, logs_port),
    FIELD("logsNonLocalTraffic", kBool, logs_non_local_traffic),
    FIELD("logsDdUrl", kString, logs_dd_url),
    FIELD("logsUseCompression", kBool, logs_use_compression),
    FIELD("logsCompressionLevel", kInt32, logs_compression_level),
    FIELD("logsMaxQueuedBytes", kUint32, logs_max_queued_bytes),
    FIELD("logsOpwEnabled", kBool, logs_opw_enabled),
    FIELD("logsOpwUrl", kString, logs_opw_url),
    FIELD("logsAdditionalEndpoints", kJson, logs_additional_endpoints),
    FIELD("enhancedMetricsEnabled", kBool, enhanced_metrics_enabled),
    FIELD("requestTimeoutMs", kUint32, request_timeout_ms),
    FIELD("retryQueueMaxBytes", kUint32, retry_queue_max_bytes),
    FIELD("sendQueueMaxBytes", kUint32, send_queue_max_bytes),
};
#undef FIELD

// 64 fields, every one in kFields above: 320 bytes with padding on LP64.
static_assert(sizeof(void *) != 8 || sizeof(dds_config) == 320,
              "dds_config changed: give the new field its camelCase option in kFields");

template <typename T>
T &At(dds_config *cfg, const Field &f) {
    return *reinterpret_cast<T *>(reinterpret_cast<char *>(cfg) + f.offset);
}

[[noreturn]] void Fail(Napi::Env env, const Field &f, const std::string &what, const Napi::Value &got) {
    std::string shown;
    if (got.IsNumber()) {
        shown = got.ToString().Utf8Value();
    } else if (got.IsString()) {
        shown = "'" + got.As<Napi::String>().Utf8Value() + "'";
    } else if (got.IsNull()) {
        shown = "null";
    } else if (got.IsArray()) {
        shown = "an array";
    } else if (got.IsBoolean()) {
        shown = got.ToBoolean().Value() ? "true" : "false";
    } else if (got.IsFunction()) {
        shown = "a function";
    } else {
        shown = "an " + std::string(got.IsObject() ? "object" : "unsupported value");
    }
    if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
    throw MakeError(env, DDS_ERR_INVALID_CONFIG,
                    "Invalid configuration: " + std::string(f.name) + " must be " + what + ", got " + shown);
}

const char *Keep(OwnedConfig *out, std::string s) {
    out->strings.push_back(std::move(s));
    return out->strings.back().c_str();
}

std::string StringOf(Napi::Env env, const Field &f, const Napi::Value &v, const char *what) {
    if (!v.IsString()) Fail(env, f, what, v);
    std::string s = v.As<Napi::String>().Utf8Value();
    // A C string ends at the first NUL: the rest would be dropped without a word.
    if (s.find('\0') != std::string::npos) Fail(env, f, "free of NUL characters", v);
    return s;
}

double IntegerOf(Napi::Env env, const Field &f, const Napi::Value &v, double lo, double hi, const char *what) {
    if (!v.IsNumber()) Fail(env, f, what, v);
    double d = v.As<Napi::Number>().DoubleValue();
    // Not a range check of the option (dds_config_validate does that): a value the C field
    // cannot hold would otherwise be truncated or wrapped before validation could see it.
    if (!std::isfinite(d) || std::trunc(d) != d || d < lo || d > hi) Fail(env, f, what, v);
    return d;
}

void Apply(Napi::Env env, const Field &f, const Napi::Value &v, OwnedConfig *out) {
    dds_config *cfg = &out->cfg;
    switch (f.kind) {
    case Kind::kString:
        At<const char *>(cfg, f) = v.IsNull() ? nullptr : Keep(out, StringOf(env, f, v, "a string or null"));
        return;
    case Kind::kList: {
        if (v.IsNull()) {
            At<const char *>(cfg, f) = nullptr;
            return;
        }
        if (!v.IsArray()) {
            At<const char *>(cfg, f) = Keep(out, StringOf(env, f, v, "a string, an array of strings or null"));
            return;
        }
        Napi::Array items = v.As<Napi::Array>();
        std::string joined;
        for (uint32_t i = 0; i < items.Length(); i++) {
            Napi::Value item = items.Get(i);
            if (i) joined += ',';
            // Percentiles may be given as numbers: their JS text is what DD_* would hold.
            joined += item.IsNumber() ? item.ToString().Utf8Value()
                                      : StringOf(env, f, item, "a string, an array of strings or null");
        }
        At<const char *>(cfg, f) = Keep(out, std::move(joined));
        return;
    }
    case Kind::kJson: {
        if (v.IsNull()) {
            At<const char *>(cfg, f) = nullptr;
            return;
        }
        if (!v.IsArray()) {
            At<const char *>(cfg, f) = Keep(out, StringOf(env, f, v, "a JSON string, an array of objects or null"));
            return;
        }
        // The C library reads the variable's JSON text; its keys match in any case, with or
        // without underscores, so {apiKey, host, port, isReliable} reads as the Agent's form.
        Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
        Napi::Value text = json.Get("stringify").As<Napi::Function>().Call(json, {v});
        At<const char *>(cfg, f) = Keep(out, StringOf(env, f, text, "a JSON string, an array of objects or null"));
        return;
    }
    case Kind::kBool:
        if (!v.IsBoolean()) Fail(env, f, "true or false", v);
        At<bool>(cfg, f) = v.As<Napi::Boolean>().Value();
        return;
    case Kind::kInt32:
        At<int32_t>(cfg, f) =
            static_cast<int32_t>(IntegerOf(env, f, v, INT32_MIN, INT32_MAX, "an integer (a 32-bit one)"));
        return;
    case Kind::kInt:
        At<int>(cfg, f) = static_cast<int>(IntegerOf(env, f, v, INT32_MIN, INT32_MAX, "an integer (a 32-bit one)"));
        return;
    case Kind::kUint32:
        At<uint32_t>(cfg, f) =
            static_cast<uint32_t>(IntegerOf(env, f, v, 0, UINT32_MAX, "an integer in 0-4294967295"));
        return;
    case Kind::kLogLevel: {
        std::string name = StringOf(env, f, v, "one of trace|debug|info|warn|error|off");
        for (int level = DDS_LOG_TRACE; level <= DDS_LOG_OFF; level++) {
            if (strcasecmp(name.c_str(), dds_log_level_name(static_cast<dds_log_level>(level))) == 0) {
                At<dds_log_level>(cfg, f) = static_cast<dds_log_level>(level);
                return;
            }
        }
        Fail(env, f, "one of trace|debug|info|warn|error|off", v);
    }
    }
}

}  // namespace

void LoadConfig(Napi::Env env, Napi::Object options, OwnedConfig *out) {
    dds_config_init(&out->cfg);
    dds_error err;
    if (dds_config_from_env(&out->cfg, &err) != 0) throw MakeError(env, err);
    // dds_config_from_env points into the process environment, which JS may change before the
    // worker calls dds_start: copy those strings now.
    for (const Field &f : kFields) {
        if (f.kind != Kind::kString && f.kind != Kind::kList && f.kind != Kind::kJson) continue;
        const char *&s = At<const char *>(&out->cfg, f);
        if (s) s = Keep(out, s);
    }
    for (const Field &f : kFields) {
        Napi::Value v = options.Get(f.name);
        if (!v.IsUndefined()) Apply(env, f, v, out);
    }
}

Napi::Array ConfigKeys(Napi::Env env) {
    Napi::Array keys = Napi::Array::New(env, sizeof(kFields) / sizeof(*kFields));
    for (uint32_t i = 0; i < sizeof(kFields) / sizeof(*kFields); i++) keys.Set(i, kFields[i].name);
    return keys;
}

}  // namespace dds_node
