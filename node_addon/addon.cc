// addon.cc - module entry: the exports, the per-environment data and the error mapping.
#include "addon.h"

namespace dds_node {

Napi::Error MakeError(Napi::Env env, int code, const std::string &message) {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", dds_errcode_name(code));  // the one mapping table, in C
    return error;
}

Napi::Error MakeError(Napi::Env env, const dds_error &err) { return MakeError(env, err.code, err.message); }

namespace {

void FreeEnvData(Napi::Env, EnvData *data) {
    ReleaseLogRoute(data->log);
    delete data;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    auto *data = new EnvData();
    env.SetInstanceData<EnvData, FreeEnvData>(data);
    exports.Set("Services", DefineServices(env));
    exports.Set("setLogSink", Napi::Function::New(env, SetLogSink, "setLogSink"));
    exports.Set("configKeys", ConfigKeys(env));
    exports.Set("version", dds_version());
    return exports;
}

}  // namespace dds_node

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return dds_node::Init(env, exports); }

NODE_API_MODULE(datadog_serverless, InitModule)
