// services.cc - the Services class: one object, one dds_services * at a time (a new one per
// start). In: start/flush/stop calls on the JS thread. Out: Promises settled on the JS thread
// once the C call returned on a worker thread, and status events from the loop thread. It must
// never block the C loop thread (status events go through a thread-safe function with
// non-blocking calls) nor the JS thread (the blocking calls run on libuv's thread pool), except
// in stopSync, which exists for process.on('exit').
#include <atomic>
#include <memory>
#include <utility>

#include "addon.h"

namespace dds_node {
namespace {

struct StatusEvent {
    dds_status_type type;
    dds_service_kind service;
    uint16_t port;
    bool has_message;
    std::string message;  // a copy: the C pointer is valid during the C callback only
};

struct Instance;
void CallStatus(Napi::Env env, Napi::Function callback, Instance *inst, StatusEvent *event);
using StatusChannel = Napi::TypedThreadSafeFunction<Instance, StatusEvent, CallStatus>;

// One dds_start attempt and what it owns. Shared by the Services object and the workers using
// it, so a stop or flush in flight keeps the C handle alive whatever JS does meanwhile.
//
// The status channel (a thread-safe function) is open from before dds_start until the instance
// is stopped: dds_stop has joined the loop thread, so no status callback can come after it. While
// it is open, an env cleanup hook is registered (added after the channel, so it runs before the
// channel's own teardown: hooks run last-in, first-out) and the channel's finalizer data holds a
// reference to the instance, so the instance outlives every status call.
struct Instance {
    std::atomic<dds_services *> svc{nullptr};  // written by the start worker, read anywhere
    bool starting = false;
    StatusChannel channel;
    bool channel_open = false;
    bool hook_registered = false;
    // start() resolves once dds_start returned and the READY event of every enabled service has
    // been delivered: the callback has seen 'ready' when the Promise resolves, and the channel
    // stays referenced until then, so a process with nothing else to do cannot end in between
    // (losing the events, or the Promise).
    std::unique_ptr<Napi::Promise::Deferred> start_deferred;
    int ready_expected = 0;
    int ready_seen = 0;
    bool keep_alive = false;
    // A stop() whose Promise waits for the channel to drain, so the 'stopped' status reaches the
    // callback before the Promise settles.
    std::unique_ptr<Napi::Promise::Deferred> stop_deferred;
    int stop_rc = 0;
    dds_error stop_err{};

    ~Instance() { dds_free(svc.load()); }  // stopped and joined by then, except at env teardown
};

const char *StatusTypeName(dds_status_type type) {
    switch (type) {
    case DDS_STATUS_READY: return "ready";
    case DDS_STATUS_ERROR: return "error";
    case DDS_STATUS_STOPPED: return "stopped";
    }
    return "error";
}

// Loop thread. Never blocks: the queue is unbounded, and a call the channel refuses (it is
// closing) drops the event.
void OnStatus(const dds_status *status, void *user) {
    auto *inst = static_cast<Instance *>(user);
    auto *event = new StatusEvent{status->type, status->service, status->port, status->message != nullptr,
                                  status->message ? status->message : ""};
    if (inst->channel.NonBlockingCall(event) != napi_ok) delete event;
}

void Deliver(Napi::Env env, Napi::Function callback, const StatusEvent &event) {
    try {
        Napi::Object status = Napi::Object::New(env);
        status.Set("type", StatusTypeName(event.type));
        if (const char *service = dds_service_name(event.service)) status.Set("service", service);
        if (event.type == DDS_STATUS_READY) status.Set("port", event.port);
        if (event.has_message) status.Set("message", event.message);
        callback.Call({status});
    } catch (const Napi::Error &) {
        // The JS side wraps the user's callback and rethrows its exceptions as uncaught ones on
        // the next tick; what lands here is the environment refusing to run JS (it is exiting).
    }
}

// JS thread: resolve start() once dds_start returned and every READY event was delivered.
void MaybeFinishStart(Napi::Env env, Instance *inst) {
    if (!inst->start_deferred || inst->ready_seen < inst->ready_expected) return;
    std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(inst->start_deferred);
    if (!inst->keep_alive && inst->channel_open) inst->channel.Unref(env);
    deferred->Resolve(env.Undefined());
}

// JS thread. `env` is null when the channel is torn down with events still queued.
void CallStatus(Napi::Env env, Napi::Function callback, Instance *inst, StatusEvent *event) {
    std::unique_ptr<StatusEvent> owned(event);
    if (env == nullptr) return;
    if (event->type == DDS_STATUS_READY) inst->ready_seen++;
    if (!callback.IsEmpty()) Deliver(env, callback, *event);
    if (event->type == DDS_STATUS_READY) MaybeFinishStart(env, inst);
}

void Settle(Napi::Env env, Napi::Promise::Deferred &deferred, int rc, const dds_error &err) {
    if (rc == 0)
        deferred.Resolve(env.Undefined());
    else
        deferred.Reject(MakeError(env, err).Value());
}

// JS thread: the channel drained every event and closed.
void OnChannelClosed(Napi::Env env, std::shared_ptr<Instance> *keep, Instance *) {
    std::unique_ptr<std::shared_ptr<Instance>> owned(keep);
    Instance *inst = keep->get();
    if (inst->stop_deferred) {
        std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(inst->stop_deferred);
        if (env != nullptr) {
            try {
                Napi::HandleScope scope(env);
                Settle(env, *deferred, inst->stop_rc, inst->stop_err);
            } catch (const Napi::Error &) {
                // exiting: nobody is left to await it
            }
        }
    }
}

void OnEnvTeardown(void *arg);

// JS thread. After this no status event is delivered for this instance; `ref` keeps the event
// loop alive until the queued events ran (the channel is unreferenced without keepAlive).
void CloseChannel(napi_env env, Instance *inst, bool ref) {
    if (inst->hook_registered) {
        inst->hook_registered = false;
        napi_remove_env_cleanup_hook(env, OnEnvTeardown, inst);
    }
    if (inst->channel_open) {
        inst->channel_open = false;
        if (ref) inst->channel.Ref(env);
        inst->channel.Release();
    }
}

// The environment is going away (a worker thread ends, or the main thread exits without going
// through process.on('exit'), which normally stops every instance first): stop synchronously.
void OnEnvTeardown(void *arg) {
    auto *inst = static_cast<Instance *>(arg);
    inst->hook_registered = false;
    dds_stop(inst->svc.load(), 0, nullptr);
    if (inst->channel_open) {
        inst->channel_open = false;
        inst->channel.Release();
    }
}

class StartWorker : public Napi::AsyncWorker {
   public:
    StartWorker(Napi::Env env, std::shared_ptr<Instance> inst, std::unique_ptr<OwnedConfig> cfg)
        : Napi::AsyncWorker(env, "datadog-serverless:start"),
          deferred_(std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env))),
          inst_(std::move(inst)),
          cfg_(std::move(cfg)) {}
    Napi::Promise Promise() { return deferred_->Promise(); }

   protected:
    void Execute() override {
        dds_services *svc = nullptr;
        rc_ = dds_start(&cfg_->cfg, OnStatus, inst_.get(), &svc, &err_);
        inst_->svc.store(svc);
    }
    void OnOK() override {
        inst_->starting = false;
        if (rc_ != 0) {
            CloseChannel(Env(), inst_.get(), false);  // no event comes after a failed start
            Settle(Env(), *deferred_, rc_, err_);
            return;
        }
        inst_->start_deferred = std::move(deferred_);
        MaybeFinishStart(Env(), inst_.get());
    }

   private:
    std::unique_ptr<Napi::Promise::Deferred> deferred_;
    std::shared_ptr<Instance> inst_;
    std::unique_ptr<OwnedConfig> cfg_;
    int rc_ = 0;
    dds_error err_{};
};

class FlushWorker : public Napi::AsyncWorker {
   public:
    FlushWorker(Napi::Env env, std::shared_ptr<Instance> inst, uint32_t timeout_ms)
        : Napi::AsyncWorker(env, "datadog-serverless:flush"),
          deferred_(Napi::Promise::Deferred::New(env)),
          inst_(std::move(inst)),
          timeout_ms_(timeout_ms) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override { rc_ = dds_flush(inst_->svc.load(), timeout_ms_, &err_); }
    void OnOK() override { Settle(Env(), deferred_, rc_, err_); }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Instance> inst_;
    uint32_t timeout_ms_;
    int rc_ = 0;
    dds_error err_{};
};

class StopWorker : public Napi::AsyncWorker {
   public:
    StopWorker(Napi::Env env, std::shared_ptr<Instance> inst, uint32_t timeout_ms)
        : Napi::AsyncWorker(env, "datadog-serverless:stop"),
          deferred_(std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env))),
          inst_(std::move(inst)),
          timeout_ms_(timeout_ms) {}
    Napi::Promise Promise() { return deferred_->Promise(); }

   protected:
    void Execute() override { rc_ = dds_stop(inst_->svc.load(), timeout_ms_, &err_); }
    void OnOK() override {
        Instance *inst = inst_.get();
        if (inst->channel_open && !inst->stop_deferred) {
            // Settle once the 'stopped' event queued before the join has been delivered.
            inst->stop_deferred = std::move(deferred_);
            inst->stop_rc = rc_;
            inst->stop_err = err_;
            CloseChannel(Env(), inst, true);
        } else {
            Settle(Env(), *deferred_, rc_, err_);
        }
    }

   private:
    std::unique_ptr<Napi::Promise::Deferred> deferred_;
    std::shared_ptr<Instance> inst_;
    uint32_t timeout_ms_;
    int rc_ = 0;
    dds_error err_{};
};

uint32_t TimeoutArg(const Napi::CallbackInfo &info, size_t i, uint32_t fallback) {
    if (info.Length() <= i || info[i].IsUndefined()) return fallback;
    double d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= UINT32_MAX) || static_cast<double>(static_cast<uint32_t>(d)) != d) {
        Napi::RangeError e = Napi::RangeError::New(info.Env(), "timeoutMs must be an integer in 0-4294967295");
        e.Set("code", "ERR_OUT_OF_RANGE");
        throw e;
    }
    return static_cast<uint32_t>(d);
}

class Services : public Napi::ObjectWrap<Services> {
   public:
    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "Services",
                           {
                               InstanceMethod<&Services::Start>("start"),
                               InstanceMethod<&Services::Flush>("flush"),
                               InstanceMethod<&Services::Stop>("stop"),
                               InstanceMethod<&Services::StopSync>("stopSync"),
                               InstanceMethod<&Services::IsRunning>("isRunning"),
                               InstanceMethod<&Services::Ports>("ports"),
                               InstanceMethod<&Services::Stats>("stats"),
                           });
    }

    explicit Services(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Services>(info) {}

   private:
    dds_services *Handle() const { return current_ ? current_->svc.load() : nullptr; }

    // start(options, statusCallback | undefined, keepAlive) -> Promise<void>
    Napi::Value Start(const Napi::CallbackInfo &info) {
        Napi::Env env = info.Env();
        if (current_ && (current_->starting || dds_is_running(Handle())))
            throw MakeError(env, DDS_ERR_ALREADY_STARTED, "Services already started");
        if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
        auto cfg = std::make_unique<OwnedConfig>();
        LoadConfig(env, info[0].As<Napi::Object>(), cfg.get());
        Napi::Function callback = info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
        bool keep_alive = info[2].ToBoolean().Value();

        auto inst = std::make_shared<Instance>();
        inst->channel = StatusChannel::New(env, callback, "datadog-serverless:status", 0, 1, inst.get(),
                                           OnChannelClosed, new std::shared_ptr<Instance>(inst));
        inst->channel_open = true;  // referenced until start() resolves, then as keepAlive says
        inst->keep_alive = keep_alive;
        inst->ready_expected = (cfg->cfg.use_dogstatsd ? 1 : 0) + (cfg->cfg.use_trace_agent ? 1 : 0);
        napi_add_env_cleanup_hook(env, OnEnvTeardown, inst.get());
        inst->hook_registered = true;
        inst->starting = true;
        current_ = inst;  // the previous instance, stopped, is freed when its last user lets go

        auto *worker = new StartWorker(env, std::move(inst), std::move(cfg));
        Napi::Promise promise = worker->Promise();
        worker->Queue();
        return promise;
    }

    // flush(timeoutMs) -> Promise<void>
    Napi::Value Flush(const Napi::CallbackInfo &info) {
        uint32_t timeout_ms = TimeoutArg(info, 0, 0);
        if (!Handle() || current_->starting) throw NotRunning(info.Env());
        auto *worker = new FlushWorker(info.Env(), current_, timeout_ms);
        Napi::Promise promise = worker->Promise();
        worker->Queue();
        return promise;
    }

    // stop(timeoutMs) -> Promise<void>; 0 = the C default (5 s)
    Napi::Value Stop(const Napi::CallbackInfo &info) {
        uint32_t timeout_ms = TimeoutArg(info, 0, 0);
        if (!Handle() || current_->starting) throw NotRunning(info.Env());
        auto *worker = new StopWorker(info.Env(), current_, timeout_ms);
        Napi::Promise promise = worker->Promise();
        worker->Queue();
        return promise;
    }

    // stopSync(timeoutMs): blocks the JS thread. Only for process.on('exit'), where nothing async
    // runs any more. Returns undefined or throws.
    Napi::Value StopSync(const Napi::CallbackInfo &info) {
        uint32_t timeout_ms = TimeoutArg(info, 0, 0);
        if (!Handle()) return info.Env().Undefined();
        dds_error err;
        int rc = dds_stop(Handle(), timeout_ms, &err);
        CloseChannel(info.Env(), current_.get(), false);
        if (rc != 0) throw MakeError(info.Env(), err);
        return info.Env().Undefined();
    }

    Napi::Value IsRunning(const Napi::CallbackInfo &info) {
        return Napi::Boolean::New(info.Env(), dds_is_running(Handle()));
    }

    Napi::Value Ports(const Napi::CallbackInfo &info) {
        uint16_t dogstatsd = 0, trace = 0;
        dds_ports(Handle(), &dogstatsd, &trace);
        Napi::Object ports = Napi::Object::New(info.Env());
        ports.Set("dogstatsd", dogstatsd);
        ports.Set("traceAgent", trace);
        ports.Set("logsAgent", dds_logs_port(Handle()));
        return ports;
    }

    Napi::Value Stats(const Napi::CallbackInfo &info) {
        dds_stats s;
        dds_stats_get(Handle(), &s);
        Napi::Object out = Napi::Object::New(info.Env());
        // Counters fit a double exactly below 2^53; none comes near it.
        const std::pair<const char *, uint64_t> counters[] = {
            {"dsdPackets", s.dsd_packets},
            {"dsdPacketsTruncated", s.dsd_packets_truncated},
            {"dsdPacketsDroppedQueue", s.dsd_packets_dropped_queue},
            {"dsdPacketsDroppedSocket", s.dsd_packets_dropped_socket},
            {"dsdBytes", s.dsd_bytes},
            {"dsdMetricLines", s.dsd_metric_lines},
            {"dsdEvents", s.dsd_events},
            {"dsdServiceChecks", s.dsd_service_checks},
            {"dsdParseErrors", s.dsd_parse_errors},
            {"dsdSamples", s.dsd_samples},
            {"dsdSamplesDropped", s.dsd_samples_dropped},
            {"dsdContextsDropped", s.dsd_contexts_dropped},
            {"dsdContexts", s.dsd_contexts},
            {"dsdEventsDropped", s.dsd_events_dropped},
            {"payloadsSent", s.payloads_sent},
            {"payloadsRetried", s.payloads_retried},
            {"payloadsDropped", s.payloads_dropped},
            {"payloadBytesSent", s.payload_bytes_sent},
            {"seriesSent", s.series_sent},
            {"sketchesSent", s.sketches_sent},
            {"dryRunPayloads", s.dry_run_payloads},
            {"traceRequests", s.trace_requests},
            {"traceSpans", s.trace_spans},
            {"traceDropped", s.trace_dropped},
            {"traceSpansDropped", s.trace_spans_dropped},
            {"traceSpansObfuscated", s.trace_spans_obfuscated},
            {"traceSqlNonParsable", s.trace_sql_non_parsable},
            {"traceStatsSpans", s.trace_stats_spans},
            {"traceStatsSpansOverflow", s.trace_stats_spans_overflow},
            {"traceStatsSpansDropped", s.trace_stats_spans_dropped},
            {"traceStatsBuckets", s.trace_stats_buckets},
            {"traceStatsKeys", s.trace_stats_keys},
            {"logsRequests", s.logs_requests},
            {"logsEntries", s.logs_entries},
            {"logsEntriesDropped", s.logs_entries_dropped},
            {"logsBytes", s.logs_bytes},
            {"sendQueueBytes", s.send_queue_bytes},
            {"sendQueueDroppedMetrics", s.send_queue_dropped_metrics},
            {"sendQueueDroppedTraces", s.send_queue_dropped_traces},
            {"sendQueueDroppedLogs", s.send_queue_dropped_logs},
            {"sendQueueDroppedProxy", s.send_queue_dropped_proxy},
            {"enhancedSamples", s.enhanced_samples},
            {"enhancedCpuUnavailable", s.enhanced_cpu_unavailable},
        };
        for (const auto &c : counters) out.Set(c.first, Napi::Number::New(info.Env(), static_cast<double>(c.second)));
        return out;
    }

    // The C library's own answer for a handle that never started: "Services not running".
    static Napi::Error NotRunning(Napi::Env env) {
        dds_error err;
        dds_stop(nullptr, 0, &err);
        return MakeError(env, err);
    }

    std::shared_ptr<Instance> current_;
};

}  // namespace

Napi::Function DefineServices(Napi::Env env) { return Services::Define(env); }

}  // namespace dds_node
