// log.cc - C log lines -> a JS function. In: lines from any thread (mostly loop threads) through
// the process-wide sink of dds_set_log_fn. Out: calls of the JS function on the JS thread, in
// order, through a thread-safe function with non-blocking calls (a logging thread never waits
// for JS). Without a JS function installed the C library writes to stderr itself.
#include <cstdio>
#include <memory>
#include <mutex>

#include "addon.h"

namespace dds_node {

struct LogLine {
    dds_log_level level;
    std::string text;
};

namespace {
void CallLog(Napi::Env env, Napi::Function callback, std::nullptr_t *, LogLine *line);
}
using LogChannel = Napi::TypedThreadSafeFunction<std::nullptr_t, LogLine, CallLog>;

// One per environment, created by the first setLogSink. The C sink may still be running with
// this pointer for a moment after dds_set_log_fn switched away from it (the header says so), so
// once installed a route is never freed: a few bytes per environment, kept to the process end.
struct LogRoute {
    std::mutex mu;  // guards channel/open against a sink call on another thread
    LogChannel channel;
    bool open = false;
    bool installed_once = false;
    bool hook_registered = false;
    napi_env env = nullptr;
};

namespace {

// The C sink is process-wide (one per copy of the addon, since each copy links its own C
// library); these two mirror it: which environment's route it currently points at. The only
// C++ globals of the addon, for the only process-wide thing of the C library.
std::mutex g_sink_mu;
LogRoute *g_sink_owner = nullptr;

void CallLog(Napi::Env env, Napi::Function callback, std::nullptr_t *, LogLine *line) {
    std::unique_ptr<LogLine> owned(line);
    if (env == nullptr || callback.IsEmpty()) return;
    try {
        callback.Call({Napi::String::New(env, dds_log_level_name(line->level)), Napi::String::New(env, line->text)});
    } catch (const Napi::Error &) {
        // The JS side guards the user's logger; this is the environment refusing to run JS.
    }
}

// Any thread.
void Sink(dds_log_level level, const char *text, void *user) {
    auto *route = static_cast<LogRoute *>(user);
    std::lock_guard<std::mutex> lock(route->mu);
    if (route->open) {
        auto *line = new LogLine{level, text};
        if (route->channel.NonBlockingCall(line) == napi_ok) return;
        delete line;
    }
    // The route was closed while this line was on its way: stderr, as the C default would.
    fprintf(stderr, "%s datadog-serverless: %s\n", dds_log_level_name(level), text);
}

void Uninstall(LogRoute *route) {
    std::lock_guard<std::mutex> lock(g_sink_mu);
    if (g_sink_owner == route) {
        dds_set_log_fn(nullptr, nullptr);
        g_sink_owner = nullptr;
    }
}

void CloseRoute(LogRoute *route) {
    Uninstall(route);
    std::lock_guard<std::mutex> lock(route->mu);
    if (route->open) {
        route->open = false;
        route->channel.Release();
    }
}

void OnEnvTeardown(void *arg) {
    auto *route = static_cast<LogRoute *>(arg);
    route->hook_registered = false;
    CloseRoute(route);
}

}  // namespace

// setLogSink(fn): every C log line of the process goes to fn(level, line) on this thread.
// setLogSink(null): back to the C default (stderr).
Napi::Value SetLogSink(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    auto *data = env.GetInstanceData<EnvData>();
    if (!data->log) data->log = new LogRoute();
    LogRoute *route = data->log;
    route->env = env;

    if (route->hook_registered) {
        route->hook_registered = false;
        napi_remove_env_cleanup_hook(env, OnEnvTeardown, route);
    }
    CloseRoute(route);
    if (!info[0].IsFunction()) return env.Undefined();

    {
        std::lock_guard<std::mutex> lock(route->mu);
        route->channel = LogChannel::New(env, info[0].As<Napi::Function>(), "datadog-serverless:log", 0, 1);
        route->channel.Unref(env);  // logging never keeps the process alive
        route->open = true;
        route->installed_once = true;
    }
    // After the channel, so it runs before the channel's own teardown (last-in, first-out).
    napi_add_env_cleanup_hook(env, OnEnvTeardown, route);
    route->hook_registered = true;
    std::lock_guard<std::mutex> lock(g_sink_mu);
    dds_set_log_fn(Sink, route);
    g_sink_owner = route;
    return env.Undefined();
}

// Instance-data finalizer: a route that never reached the C sink can go.
void ReleaseLogRoute(LogRoute *route) {
    if (route && !route->installed_once) delete route;
}

}  // namespace dds_node
