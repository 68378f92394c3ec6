// _sluice: the engine in process for the Python package. Every call that waits
// for the engine releases the GIL; the engine itself runs on its own thread.
#include "sluice/app/app.hpp"
#include "sluice/common/process.hpp"
#include "sluice/events/generate.hpp"

#include <pybind11/chrono.h>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <chrono>
#include <cmath>

namespace py = pybind11;
using namespace sluice;

namespace {

std::chrono::milliseconds ms_of(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) throw py::value_error("a duration in seconds must be a finite number, not negative");
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// Handler output need not be UTF-8: never fail on it.
py::str text_of(const std::string& s) {
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

py::dict record_dict(const lambda::InvocationRecord& r) {
  py::dict d;
  d["function"] = r.function;
  d["version"] = r.version;
  d["qualifier"] = r.qualifier;
  d["request_id"] = r.request_id;
  d["source"] = r.source;
  d["invocation_type"] = r.invocation_type;
  d["status"] = r.status;
  d["error_type"] = r.error_type;
  d["cold_start"] = r.cold_start;
  d["duration_ms"] = r.duration_ms;
  d["init_duration_ms"] = r.init_duration_ms ? py::cast(*r.init_duration_ms) : py::none();
  d["max_memory_used_mb"] = r.max_memory_used_mb;
  d["started"] = std::chrono::duration<double>(r.started.time_since_epoch()).count();
  return d;
}

}  // namespace

PYBIND11_MODULE(_sluice, m) {
  m.doc() = "sluice's engine, in process (use the `sluice` package rather than this module)";
  // No handler process may outlive this interpreter: the reaper kills their process groups when it goes.
  proc::start_reaper();

  static py::exception<app::EngineError> engine_error(m, "SluiceError", PyExc_RuntimeError);
  static py::exception<app::StackError> stack_error(m, "StackError", engine_error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const app::StackError& e) {
      py::object exc = py::handle(stack_error.ptr())(py::str(e.what()));
      exc.attr("problems") = py::cast(e.problems());
      PyErr_SetObject(stack_error.ptr(), exc.ptr());
    } catch (const app::EngineError& e) {
      py::object exc = py::handle(engine_error.ptr())(py::str(e.what()));
      exc.attr("code") = e.code().empty() ? py::none() : py::cast(e.code());
      PyErr_SetObject(engine_error.ptr(), exc.ptr());
    }
  });

  py::class_<app::App>(m, "Engine")
      .def(py::init([](const std::string& stack, const std::string& host, int lambda_port, int api_port,
                       bool freeze, bool watch, std::optional<double> idle_timeout, std::optional<double> init_timeout,
                       std::optional<std::vector<double>> async_retry_delays, std::optional<double> integration_timeout,
                       std::optional<int> account_concurrency, std::optional<std::pair<double, int>> account_throttle,
                       std::map<std::string, std::string> interpreters,
                       std::string log_format, std::string state_dir, bool echo_logs, double drain_timeout,
                       bool schedules, bool event_sources, std::optional<double> schedule_clock,
                       double schedule_speed, bool sandbox,
                       std::string env_vars_json, std::string env_vars_source, std::optional<int> debug_port,
                       std::string debug_function, std::optional<std::vector<std::string>> debug_args) {
             app::AppOptions o;
             o.stack_path = stack;
             o.host = host;
             o.lambda_port = lambda_port;
             o.api_port = api_port;
             o.freeze = freeze;
             o.sandbox = sandbox;
             o.watch = watch;
             if (idle_timeout) o.idle_timeout = ms_of(*idle_timeout);
             if (init_timeout) o.init_timeout = ms_of(*init_timeout);
             if (async_retry_delays) {
               std::vector<std::chrono::milliseconds> d;
               for (double s : *async_retry_delays) d.push_back(ms_of(s));
               o.async_retry_delays = d;
             }
             if (integration_timeout) o.integration_timeout = ms_of(*integration_timeout);
             if (account_concurrency && (*account_concurrency < 1 || *account_concurrency > 100000))
               throw py::value_error("account_concurrency must be from 1 to 100000 (as --account-concurrency), got " +
                                     std::to_string(*account_concurrency));
             o.account_concurrency = account_concurrency;
             if (account_throttle) {
               if (!std::isfinite(account_throttle->first) || account_throttle->first <= 0 || account_throttle->second < 1)
                 throw py::value_error("account_throttle is (rate, burst): a positive rate and a burst of at least 1");
               o.account_throttle = account_throttle;
             }
             for (const auto& [k, v] : interpreters) {
               if (auto problem = app::interpreter_problem(k, v); !problem.empty())
                 throw py::value_error("interpreters: " + problem);
               o.interpreters[k] = v;
             }
             if (!log_format.empty() && log_format != "Text" && log_format != "JSON")
               throw py::value_error("log_format is \"Text\" or \"JSON\", got " + log_format);
             o.log_format = log_format;
             o.state_dir = state_dir;
             o.log_output = echo_logs ? stderr : nullptr;
             o.drain_timeout = ms_of(drain_timeout);
             // Ctrl-C while waiting for the engine: KeyboardInterrupt (the invocation runs on).
             o.while_waiting = [] {
               py::gil_scoped_acquire gil;
               if (PyErr_CheckSignals() != 0) throw py::error_already_set();
             };
             o.schedules = schedules;
             o.event_sources = event_sources;
             if (schedule_clock)
               o.schedule_clock = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                   std::chrono::duration<double>(*schedule_clock)));
             if (schedule_speed < 0) throw py::value_error("schedule_speed must not be negative");
             o.schedule_speed = schedule_speed;
             if (!env_vars_json.empty()) {
               try {
                 o.env_overrides = lambda::parse_env_overrides(env_vars_json, env_vars_source);
               } catch (const std::runtime_error& e) {
                 throw py::value_error(e.what());
               }
             }
             if (debug_port) {
               if (*debug_port < 1 || *debug_port > 65535) throw py::value_error("debug_port must be from 1 to 65535");
               o.debug.port = *debug_port;
             }
             if (debug_args) o.debug.args = *debug_args;
             o.debug.function = debug_function;
             if (!debug_function.empty() && !debug_port && !debug_args)
               throw py::value_error("debug_function needs debug_port (or debug_args)");
             py::gil_scoped_release nogil;
             return std::make_unique<app::App>(std::move(o));
           }),
           py::arg("stack"), py::arg("host") = "127.0.0.1", py::arg("lambda_port") = 0, py::arg("api_port") = 0,
           py::arg("freeze") = true, py::arg("watch") = true, py::arg("idle_timeout") = py::none(),
           py::arg("init_timeout") = py::none(), py::arg("async_retry_delays") = py::none(),
           py::arg("integration_timeout") = py::none(), py::arg("account_concurrency") = py::none(), py::arg("account_throttle") = py::none(),
           py::arg("interpreters") = std::map<std::string, std::string>{}, py::arg("log_format") = "",
           py::arg("state_dir") = "", py::arg("echo_logs") = false, py::arg("drain_timeout") = 5.0,
           py::arg("schedules") = true, py::arg("event_sources") = true, py::arg("schedule_clock") = py::none(),
           py::arg("schedule_speed") = 1.0,
           py::arg("sandbox") = true, py::arg("env_vars_json") = "", py::arg("env_vars_source") = "env_vars",
           py::arg("debug_port") = py::none(), py::arg("debug_function") = "", py::arg("debug_args") = py::none())
      .def_property_readonly("warnings", &app::App::warnings)
      .def("start", &app::App::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &app::App::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &app::App::running)
      .def("endpoints",
           [](app::App& a) {
             auto e = a.endpoints();
             py::dict apis;
             for (const auto& api : e.apis) {
               py::dict d;
               d["type"] = api.type;
               d["url"] = api.url;
               d["stages"] = api.stages;
               apis[py::str(api.name)] = d;
             }
             py::dict out;
             out["lambda"] = e.lambda;
             out["apis"] = apis;
             py::dict urls;
             for (const auto& u : e.urls) urls[py::str(u.function)] = u.url;
             out["urls"] = urls;
             out["region"] = e.region;
             return out;
           })
      .def(
          "invoke",
          [](app::App& a, const std::string& function, py::bytes payload, const std::string& qualifier,
             const std::string& source) {
            std::string body = payload;
            app::InvokeResult r;
            {
              py::gil_scoped_release nogil;
              r = a.invoke(function, body, qualifier, source);
            }
            py::dict d;
            d["payload"] = py::bytes(r.payload);
            d["content_type"] = r.content_type;
            d["function_error"] = r.function_error ? py::cast(r.error_type.empty() ? "Unhandled" : r.error_type)
                                                   : py::none();
            d["log_tail"] = text_of(r.log_tail);
            d["executed_version"] = r.executed_version;
            d["request_id"] = r.request_id;
            d["duration_ms"] = r.duration_ms;
            d["cold_start"] = r.cold_start;
            return d;
          },
          py::arg("function"), py::arg("payload"), py::arg("qualifier") = "", py::arg("source") = "python")
      .def(
          "invoke_async",
          [](app::App& a, const std::string& function, py::bytes payload, const std::string& qualifier,
             const std::string& source) {
            std::string body = payload;
            py::gil_scoped_release nogil;
            return a.invoke_async(function, body, qualifier, source);
          },
          py::arg("function"), py::arg("payload"), py::arg("qualifier") = "", py::arg("source") = "python")
      .def(
          "publish",
          [](app::App& a, const std::string& function, const std::string& description) {
            app::Published p;
            {
              py::gil_scoped_release nogil;
              p = a.publish(function, description);
            }
            py::dict d;
            d["function"] = p.function;
            d["version"] = p.version;
            d["code_sha256"] = p.code_sha256;
            d["created"] = p.created;
            return d;
          },
          py::arg("function"), py::arg("description") = "")
      .def("records",
           [](app::App& a) {
             std::vector<lambda::InvocationRecord> recs;
             {
               py::gil_scoped_release nogil;
               recs = a.records();
             }
             py::list out;
             for (const auto& r : recs) out.append(record_dict(r));
             return out;
           })
      .def(
          "destinations",
          [](app::App& a, double wait_s) {
            std::vector<lambda::DestinationDelivery> ds;
            {
              py::gil_scoped_release nogil;
              ds = a.destinations(std::chrono::milliseconds(static_cast<long long>(wait_s * 1000)));
            }
            py::list out;
            for (const auto& x : ds) {
              py::dict d;
              d["function"] = x.function;
              d["request_id"] = x.request_id;
              d["condition"] = x.condition;
              d["kind"] = x.kind;
              d["destination"] = x.destination;
              d["record"] = x.record;
              d["state"] = x.state;
              d["detail"] = x.detail;
              d["time"] = std::chrono::duration<double>(x.time.time_since_epoch()).count();
              out.append(d);
            }
            return out;
          },
          py::arg("wait") = 0.0)
      .def("clear_records", &app::App::clear_records, py::call_guard<py::gil_scoped_release>())
      .def(
          "logs",
          [](app::App& a, const std::string& function) {
            py::list out;
            for (const auto& l : a.logs(function)) {
              py::dict d;
              d["version"] = l.version;
              d["request_id"] = l.request_id;
              d["text"] = text_of(l.text);
              d["platform"] = l.platform;
              out.append(d);
            }
            return out;
          },
          py::arg("function"))
      .def("access_log", &app::App::access_log)
      .def("reload", &app::App::reload, py::call_guard<py::gil_scoped_release>())
      .def(
          "trigger",
          [](app::App& a, const std::string& schedule) {
            app::Triggered t;
            {
              py::gil_scoped_release nogil;
              t = a.trigger(schedule);
            }
            py::dict d;
            d["schedule"] = t.schedule;
            d["function"] = t.function;
            d["time"] = std::chrono::duration<double>(t.time.time_since_epoch()).count();
            d["event"] = py::bytes(t.event);
            d["request_id"] = t.request_id;
            d["executed_version"] = t.executed_version;
            d["payload"] = py::bytes(t.payload);
            d["function_error"] = t.function_error ? py::cast(t.error_type.empty() ? "Unhandled" : t.error_type)
                                                   : py::none();
            d["cold_start"] = t.cold_start;
            d["duration_ms"] = t.duration_ms;
            return d;
          },
          py::arg("schedule"))
      .def("schedules", &app::App::schedules, py::call_guard<py::gil_scoped_release>())
      .def("functions", &app::App::functions, py::call_guard<py::gil_scoped_release>())
      .def("schedule_time",
           [](app::App& a) { return std::chrono::duration<double>(a.schedule_time().time_since_epoch()).count(); })
      .def(
          "set_schedule_time",
          [](app::App& a, double epoch_seconds) {
            auto t = std::chrono::system_clock::time_point(
                std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(epoch_seconds)));
            py::gil_scoped_release nogil;
            a.set_schedule_time(t);
          },
          py::arg("epoch_seconds"))
      .def(
          "advance_schedule_clock",
          [](app::App& a, double seconds) {
            auto by = ms_of(seconds);
            py::gil_scoped_release nogil;
            a.advance_schedule_clock(by);
          },
          py::arg("seconds"))
      .def(
          "next_schedule_time",
          [](app::App& a, const std::string& schedule) -> std::optional<double> {
            std::optional<std::chrono::system_clock::time_point> t;
            {
              py::gil_scoped_release nogil;
              t = a.next_schedule_time(schedule);
            }
            if (!t) return std::nullopt;
            return std::chrono::duration<double>(t->time_since_epoch()).count();
          },
          py::arg("schedule"));

  // Sample events (`sluice generate-event`): unknown sources, kinds or keys raise ValueError.
  m.def("generate_event", &events::generate_event, py::arg("source"), py::arg("kind"), py::arg("sets"));
  m.def("event_kinds", [] {
    py::list out;
    for (const auto& k : events::event_kinds()) {
      py::dict d;
      d["source"] = k.source;
      d["kind"] = k.kind;
      d["description"] = k.description;
      d["settable"] = k.settable;
      out.append(d);
    }
    return out;
  });
}
