// addon.h - what the addon's three files share. The addon converts values and manages lifetimes
// only: every rule about configuration, protocols and lifecycle lives in the C library
// (src_c/include/datadog_serverless.h), whose messages are passed through word for word.
#pragma once

#include <napi.h>

#include <deque>
#include <string>

#include "datadog_serverless.h"

namespace dds_node {

// An Error with the C message and a stable `code` from dds_errcode_name ("ERR_INVALID_CONFIG", ...).
Napi::Error MakeError(Napi::Env env, const dds_error &err);
Napi::Error MakeError(Napi::Env env, int code, const std::string &message);

// config.cc: a dds_config plus the storage of its strings (dds_start copies what it keeps, so the
// storage only has to outlive the dds_start call).
struct OwnedConfig {
    dds_config cfg;
    std::deque<std::string> strings;  // a deque: its elements never move, so c_str() stays valid
};

// dds_config_init, then dds_config_from_env (options left out fall back to the DD_* variables, as
// in the CLI), then every option present in `options`. Throws an ERR_INVALID_CONFIG Error when a
// variable cannot be read or an option cannot be converted to its C type (a string that is not
// a string, a port that is not an integer or does not fit the field). Range checks are left to
// dds_config_validate, which dds_start runs. JS thread only.
void LoadConfig(Napi::Env env, Napi::Object options, OwnedConfig *out);

// The camelCase option names, one per dds_config field, in the header's order.
Napi::Array ConfigKeys(Napi::Env env);

// services.cc: the Services class.
Napi::Function DefineServices(Napi::Env env);

// log.cc: setLogSink(fn | null), the process-wide C log sink routed to a JS function.
struct LogRoute;
Napi::Value SetLogSink(const Napi::CallbackInfo &info);
void ReleaseLogRoute(LogRoute *route);

// Per-environment state (napi instance data), so workers and two copies of the addon each have
// their own.
struct EnvData {
    LogRoute *log = nullptr;  // log.cc
};

}  // namespace dds_node
