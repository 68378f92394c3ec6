// defaults, packages and functions: runtimes, handlers, code directories,
// environment, layers, aliases, async settings.
#include <algorithm>
#include <system_error>

#include "code_checks.hpp"
#include "schema.hpp"

namespace sluice::stack::detail {

// ---- defaults, packages, functions ---------------------------------------------

std::optional<RuntimeId> Loader::runtime(const View& v) {
  auto s = c_.string(v, "a runtime such as \"python3.12\"");
  if (!s) return std::nullopt;
  if (auto r = parse_runtime(*s)) return r;
  c_.error(v,
           with_choices("unsupported runtime " + sluice::quoted(*s), *s, supported_runtimes(), "supported runtimes"));
  return std::nullopt;
}

void Loader::read_defaults(const View& v) {
  auto f = c_.fields(v, {"runtime", "memory", "timeout", "ephemeral_storage", "environment", "handler", "logging"},
                     "a mapping of function defaults (runtime, memory, timeout, ephemeral_storage, environment, "
                     "handler, logging)",
                     true);
  if (!f) return;
  Defaults& d = stack_.defaults;
  if (auto x = f->get("runtime")) d.runtime = runtime(*x);
  if (auto x = f->get("memory"))
    if (auto m = c_.integer(*x, 128, 10240)) d.memory_mb = static_cast<int>(*m);
  if (auto x = f->get("timeout"))
    if (auto t = c_.integer(*x, 1, 900)) d.timeout_s = static_cast<int>(*t);
  if (auto x = f->get("ephemeral_storage"))
    if (auto e = c_.integer(*x, 512, 10240)) d.ephemeral_mb = static_cast<int>(*e);
  if (auto x = f->get("handler"))
    if (auto h = c_.string(*x, "a handler such as \"app.handler\"")) d.handler = *h;
  if (auto x = f->get("logging")) d.logging = read_logging(*x);
  if (auto x = f->get("environment")) {
    read_environment(*x, d.environment);
    std::size_t total = 0;
    for (const auto& [k, val] : d.environment) total += k.size() + val.size();
    if (total > 4096)
      c_.error(*x, "environment variables total " + std::to_string(total) +
                       " bytes (names plus values); AWS allows at most 4096 (4 KB)");
  }
}

void Loader::read_packages(const View& v) {
  auto entries = c_.named(v, "a mapping of package names to {path: DIRECTORY}", true);
  if (!entries) return;
  for (const auto& [name, pv] : *entries) {
    if (c_.stopped()) return;
    package_names_.insert(name);
    if (!valid_name(name, 64)) {
      c_.error(pv, "package name " + sluice::quoted(name) + " must be 1 to 64 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(pv, {"path", "requirements"}, "a mapping {path: DIRECTORY, requirements: FILE}");
    if (!f) continue;
    auto p = f->get("path");
    if (!p) {
      c_.missing(pv, "path", "the package's directory, relative to the stack file");
      continue;
    }
    std::optional<fs::path> req;
    if (auto r = f->get("requirements")) {
      req = requirements_file(*r);
      if (!req) continue;
    }
    if (auto dir = directory(*p, "package directory")) stack_.packages[name] = PackageSpec{name, *dir, req};
  }
}

std::optional<fs::path> Loader::requirements_file(const View& v) {
  auto s = c_.string(v, "the path of a pip requirements file, e.g. requirements.txt");
  if (!s) return std::nullopt;
  if (s->empty()) {
    c_.error(v, "requirements is empty; write the path of a pip requirements file such as \"requirements.txt\"");
    return std::nullopt;
  }
  fs::path p = resolve(*s);
  std::error_code ec;
  auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) {
    c_.error(v, "requirements file " + sluice::quoted(*s) + " does not exist (looked for " + p.string() + ")");
    return std::nullopt;
  }
  if (!fs::is_regular_file(st)) {
    c_.error(v, "requirements file " + sluice::quoted(*s) + " is not a file (" + p.string() + ")");
    return std::nullopt;
  }
  fs::path canon = fs::canonical(p, ec);
  return ec ? p : canon;
}

// functions.X.requirements, else the package's: Python runtimes only.
void Loader::read_requirements(const Fields& f, FunctionSpec& fn) {
  const View* own = f.get("requirements");
  std::optional<fs::path> req;
  const View* at = own;
  if (own) {
    req = requirements_file(*own);
    if (!req) return;
  } else if (!fn.package.empty()) {
    auto it = stack_.packages.find(fn.package);
    if (it != stack_.packages.end() && it->second.requirements) {
      req = it->second.requirements;
      at = f.get("package");
    }
  }
  if (!req) return;
  if (fn.runtime.family != RuntimeFamily::python || fn.runtime.id.empty()) {
    if (fn.runtime.id.empty()) return;  // the runtime is broken and already reported
    c_.error(at ? *at : f.self,
             own ? "requirements is for Python functions (a pip requirements file becomes a layer); this function "
                   "runs " + fn.runtime.id
                 : "package " + sluice::quoted(fn.package) + " has requirements, which are for Python functions; "
                   "this function runs " + fn.runtime.id + " (give it a package without requirements)");
    return;
  }
  fn.requirements = req;
}

std::optional<fs::path> Loader::directory(const View& v, std::string_view what) {
  auto s = c_.string(v, "a directory path");
  if (!s) return std::nullopt;
  if (s->empty()) {
    c_.error(v, std::string(what) + " is empty; write a directory path such as \"src/\"");
    return std::nullopt;
  }
  fs::path p = resolve(*s);
  std::error_code ec;
  auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) {
    c_.error(v, std::string(what) + " " + sluice::quoted(*s) + " does not exist (looked for " + p.string() + ")");
    return std::nullopt;
  }
  if (!fs::is_directory(st)) {
    c_.error(v, std::string(what) + " " + sluice::quoted(*s) + " is not a directory (" + p.string() + ")");
    return std::nullopt;
  }
  fs::path canon = fs::canonical(p, ec);
  return ec ? p : canon;
}

void Loader::read_environment(const View& v, std::map<std::string, std::string>& out) {
  auto entries = c_.named(v, "a mapping of environment variable names to values", true);
  if (!entries) return;
  const auto& reserved = reserved_environment_names();
  for (const auto& [name, ev] : *entries) {
    if (c_.stopped()) return;
    if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) {
      c_.error(ev, "environment variable " + name +
                       " is reserved by AWS Lambda and set by the runtime; choose another name (reserved: " +
                       list_words(reserved) + ")");
      continue;
    }
    if (!valid_env_name(name)) {
      c_.error(ev, "environment variable name " + sluice::quoted(name) +
                       " must start with a letter and hold only letters, digits and '_'");
      continue;
    }
    if (ev.null()) {
      c_.error(ev, "expected a value for " + name + ", found nothing (write \"\" for an empty value)");
      continue;
    }
    if (!ev.scalar()) {
      c_.error(ev, "expected a string, number or boolean value for " + name + ", found " + Checker::found(ev));
      continue;
    }
    out[name] = ev.text();  // as written: 1.50 stays "1.50", yes stays "yes"
  }
}

void Loader::read_functions(const View& v) {
  auto entries = c_.named(v, "a mapping of function names to their settings", true);
  if (!entries) return;
  for (const auto& [name, _] : *entries) function_names_.insert(name);
  // Aliases are needed by route checks before the functions themselves are complete.
  for (const auto& [name, fv] : *entries) {
    if (!fv.map()) continue;
    for (const auto& e : fv.n->entries)
      if (e.key == "aliases" && e.value && e.value->kind == Node::Kind::map)
        for (const auto& a : e.value->entries) alias_names_[name].insert(a.key);
  }
  for (const auto& [name, fv] : *entries) {
    if (c_.stopped()) return;
    read_function(name, fv);
  }
}

void Loader::read_function(const std::string& name, const View& v) {
  if (!valid_name(name, 64))
    c_.error(v, "function name " + sluice::quoted(name) + " must be 1 to 64 letters, digits, '-' or '_'");
  auto f = c_.fields(v,
                     {"runtime", "handler", "code", "package", "description", "memory", "timeout",
                      "ephemeral_storage", "environment",
                      "concurrency", "layers", "aliases", "async", "requirements", "logging", "url"},
                     "a mapping with the function's settings (runtime, handler, code, ...)");
  if (!f) return;
  FunctionSpec fn;
  fn.name = name;
  CodeCheck code;
  code.handler_at = code.code_at = v;
  read_runtime_and_handler(*f, fn, code);
  read_code_location(*f, fn, code);
  read_function_settings(*f, fn);
  read_requirements(*f, fn);
  if (auto x = f->get("layers")) code.ok = read_layers(*x, fn) && code.ok;
  if (auto x = f->get("aliases")) read_aliases(*x, fn);
  if (auto x = f->get("url")) fn.url = read_function_url(*x, fn);
  check_code(fn, code);
  stack_.functions[name] = std::move(fn);
}

void Loader::read_runtime_and_handler(const Fields& f, FunctionSpec& fn, CodeCheck& code) {
  std::optional<RuntimeId> rt;
  if (auto x = f.get("runtime")) {
    rt = runtime(*x);
  } else if (stack_.defaults.runtime) {
    rt = stack_.defaults.runtime;
  } else {
    c_.missing(f.self, "runtime", "set it here or in defaults.runtime (e.g. python3.12, nodejs20.x, provided.al2023)");
  }
  if (rt)
    fn.runtime = *rt;
  else
    code.ok = false;

  if (auto x = f.get("handler")) {
    code.handler = c_.string(*x, "a handler such as \"app.handler\"");
    code.handler_at = *x;
    if (!code.handler) code.ok = false;
  } else if (stack_.defaults.handler) {
    code.handler = stack_.defaults.handler;
  }
  if (code.handler) fn.handler = *code.handler;
  if (!rt) return;
  if (code.handler) {
    if (auto err = handler_format_error(*code.handler, rt->family)) {
      c_.error(code.handler_at, *err);
      code.ok = false;
      code.handler.reset();
    }
  } else if (rt->family != RuntimeFamily::provided && !f.has("handler")) {
    c_.missing(f.self, "handler",
               rt->family == RuntimeFamily::python
                   ? "e.g. \"app.handler\" for def handler() in app.py (or set defaults.handler)"
                   : "e.g. \"index.handler\" for exports.handler in index.js (or set defaults.handler)");
    code.ok = false;
  }
}

// Exactly one of `code` (the function's own directory) and `package` (a shared one).
void Loader::read_code_location(const Fields& f, FunctionSpec& fn, CodeCheck& code) {
  const View* dir = f.get("code");
  const View* package = f.get("package");
  if (dir && package) {
    c_.error(f.self, "set either 'code' (the function's own directory) or 'package' (a shared one), not both");
    code.ok = false;
  } else if (dir) {
    code.code_at = *dir;
    if (auto d = directory(*dir, "code directory")) {
      fn.code_dir = *d;
      code.have_dir = true;
    } else {
      code.ok = false;
    }
  } else if (package) {
    code.code_at = *package;
    auto p = c_.string(*package, "a package name");
    if (!p) {
      code.ok = false;
      return;
    }
    auto it = stack_.packages.find(*p);
    if (it != stack_.packages.end()) {
      fn.package = *p;
      fn.code_dir = it->second.path;
      code.have_dir = true;
      return;
    }
    if (!package_names_.count(*p))  // else the package itself is broken and already reported
      c_.error(*package, with_choices("unknown package " + sluice::quoted(*p), *p, keys_of_set(package_names_),
                                      "packages", "define it under the top-level 'packages:' first"));
    code.ok = false;
  } else {
    c_.missing(f.self, "code", "give the function's directory with 'code: DIR/' or a shared one with 'package: NAME'");
    code.ok = false;
  }
}

void Loader::read_function_settings(const Fields& f, FunctionSpec& fn) {
  if (auto x = f.get("description"))
    if (auto s = c_.string(*x, "a description")) {
      if (s->size() > 256)
        c_.error(*x, "the description is " + std::to_string(s->size()) + " characters; AWS allows at most 256");
      else
        fn.description = *s;
    }
  fn.memory_mb = stack_.defaults.memory_mb.value_or(128);
  if (auto x = f.get("memory"))
    if (auto m = c_.integer(*x, 128, 10240)) fn.memory_mb = static_cast<int>(*m);
  fn.timeout_s = stack_.defaults.timeout_s.value_or(3);
  if (auto x = f.get("timeout"))
    if (auto t = c_.integer(*x, 1, 900)) fn.timeout_s = static_cast<int>(*t);
  fn.ephemeral_mb = stack_.defaults.ephemeral_mb.value_or(512);
  if (auto x = f.get("ephemeral_storage"))
    if (auto e = c_.integer(*x, 512, 10240)) fn.ephemeral_mb = static_cast<int>(*e);

  fn.environment = stack_.defaults.environment;
  if (auto x = f.get("environment")) {
    std::map<std::string, std::string> own;
    read_environment(*x, own);
    for (auto& [k, val] : own) fn.environment[k] = val;  // the function wins over defaults
    std::size_t total = 0;
    for (const auto& [k, val] : fn.environment) total += k.size() + val.size();
    if (total > 4096)
      c_.error(*x, "environment variables total " + std::to_string(total) + " bytes (names plus values" +
                       (stack_.defaults.environment.empty() ? "" : ", with defaults.environment") +
                       "); AWS allows at most 4096 (4 KB)");
  }
  if (auto x = f.get("concurrency"))
    if (auto n = c_.integer(*x, 0, 1'000'000)) fn.reserved_concurrency = static_cast<int>(*n);
  fn.logging = stack_.defaults.logging;
  if (auto x = f.get("logging")) fn.logging = read_logging(*x);
  if (auto x = f.get("async")) {
    if (auto a = c_.fields(*x, {"max_retry_attempts", "max_event_age", "on_success", "on_failure", "dead_letter"},
                           "a mapping {max_retry_attempts: 0..2, max_event_age: 60..21600, on_success: DESTINATION, "
                           "on_failure: DESTINATION, dead_letter: SQS or SNS ARN}",
                           true)) {
      if (auto y = a->get("max_retry_attempts"))
        if (auto n = c_.integer(*y, 0, 2)) fn.async.max_retry_attempts = static_cast<int>(*n);
      if (auto y = a->get("max_event_age"))
        if (auto n = c_.integer(*y, 60, 21600)) fn.async.max_event_age_s = static_cast<int>(*n);
      if (auto y = a->get("on_success")) fn.async.on_success = read_destination(*y, fn.name, "on_success");
      if (auto y = a->get("on_failure")) fn.async.on_failure = read_destination(*y, fn.name, "on_failure");
      if (auto y = a->get("dead_letter")) fn.async.dead_letter = read_destination(*y, fn.name, "dead_letter");
    }
  }
}

// An asynchronous invocation's destination: `FUNCTION[:QUALIFIER]` of this stack, or the ARN
// of a standard SQS queue, a standard SNS topic, an EventBridge event bus, a Lambda function
// or (failures only) an S3 bucket, as PutFunctionEventInvokeConfig accepts them; a
// dead-letter queue is a standard queue or topic (DeadLetterConfig).
std::optional<DestinationSpec> Loader::read_destination(const View& v, const std::string& self, const std::string& kind) {
  const bool on_failure = kind == "on_failure", dead_letter = kind == "dead_letter";
  auto text = c_.string(v, dead_letter ? "the ARN of an SQS queue or SNS topic"
                                       : "a function of this stack, or the ARN of an SQS queue, SNS topic, "
                                         "EventBridge bus, Lambda function or S3 bucket");
  if (!text) return std::nullopt;
  DestinationSpec d;
  const std::string& t = *text;
  if (dead_letter && t.rfind("arn:aws:sqs:", 0) != 0 && t.rfind("arn:aws:sns:", 0) != 0) {
    c_.error(v, "a dead-letter queue is an SQS queue or SNS topic ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE, "
                "arn:aws:sns:REGION:ACCOUNT:TOPIC), found " + sluice::quoted(t) +
                "; on_failure also takes functions, buses and buckets");
    return std::nullopt;
  }
  if (t.rfind("arn:", 0) != 0) {
    std::string fn = t, q;
    if (auto colon = t.find(':'); colon != std::string::npos) {
      fn = t.substr(0, colon);
      q = t.substr(colon + 1);
    }
    if (!function_names_.count(fn)) {
      c_.error(v, with_choices("unknown function " + sluice::quoted(fn) +
                                   " (a destination is a function of this stack or an ARN: arn:aws:sqs:..., "
                                   "arn:aws:sns:..., arn:aws:events:..., arn:aws:lambda:..." +
                                   std::string(on_failure ? ", arn:aws:s3:::BUCKET" : "") + ")",
                               fn, keys_of_set(function_names_), "functions", "no functions are defined"));
      return std::nullopt;
    }
    if (fn == self) {
      c_.error(v, "a function can't be a destination for itself (AWS refuses it too)");
      return std::nullopt;
    }
    if (auto err = static_qualifier_error(fn, q)) {
      c_.error(v, *err);
      return std::nullopt;
    }
    d.function = fn;
    d.qualifier = q;
    d.service = "lambda";
    return d;
  }
  auto bad = [&](const std::string& why) {
    c_.error(v, "destination " + sluice::quoted(t) + ": " + why);
    return std::nullopt;
  };
  auto arn = parse_arn(t);
  if (!arn || arn->partition.rfind("aws", 0) != 0) return bad("expected an ARN arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE");
  const std::string& service = arn->service;
  const std::string& region = arn->region;
  const std::string& account = arn->account;
  const std::string& resource = arn->resource;
  bool regional = service != "s3";
  if (regional && (!valid_region(region) || account.size() != 12 || !chars_in(account, digit_char)))
    return bad("the ARN must name its region and 12-digit account: arn:aws:" + service +
               ":us-east-1:123456789012:...");
  if (service == "sqs" || service == "sns") {
    if (resource.empty() || resource.size() > 256 || resource.find(':') != std::string::npos)
      return bad(std::string("expected arn:aws:") + service + ":REGION:ACCOUNT:" + (service == "sqs" ? "QUEUE" : "TOPIC"));
    if (resource.size() > 5 && resource.compare(resource.size() - 5, 5, ".fifo") == 0)
      return bad(std::string("Lambda sends invocation records to standard ") +
                 (service == "sqs" ? "queues" : "topics") + " only, not FIFO ones");
  } else if (service == "events") {
    if (resource.rfind("event-bus/", 0) != 0 || resource.size() == 10)
      return bad("expected an event bus: arn:aws:events:REGION:ACCOUNT:event-bus/NAME");
  } else if (service == "lambda") {
    if (resource.rfind("function:", 0) != 0 || resource.size() == 9)
      return bad("expected a function: arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]");
  } else if (service == "s3") {
    if (!region.empty() || !account.empty() || resource.empty() || resource.find('/') != std::string::npos)
      return bad("expected a bucket: arn:aws:s3:::BUCKET");
    if (!on_failure)
      return bad("an S3 bucket can only be an on_failure destination (as on AWS); use a queue, topic, bus or "
                 "function for on_success");
  } else {
    return bad("Lambda sends invocation records to sqs, sns, events, lambda or s3 (failures only), not " +
               sluice::quoted(service));
  }
  d.arn = t;
  d.service = service;
  return d;
}

// AWS LoggingConfig: {format: Text|JSON, application_log_level, system_log_level}; the
// levels filter JSON logs only, so AWS refuses them with Text.
std::optional<LoggingSpec> Loader::read_logging(const View& v) {
  auto f = c_.fields(v, {"format", "application_log_level", "system_log_level"},
                     "a mapping {format: Text|JSON, application_log_level: TRACE..FATAL, system_log_level: DEBUG|INFO|WARN}");
  if (!f) return std::nullopt;
  LoggingSpec l;
  bool ok = true;  // every bad value is reported, not only the first
  auto pick = [&](const char* key, const std::vector<std::string>& choices, const char* what, std::string& out) {
    if (auto x = f->get(key)) {
      if (auto s = c_.choice(*x, choices, what))
        out = *s;
      else
        ok = false;
    }
  };
  pick("format", {"Text", "JSON"}, "log format", l.format);
  pick("application_log_level", {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, "application log level",
       l.application_log_level);
  pick("system_log_level", {"DEBUG", "INFO", "WARN"}, "system log level", l.system_log_level);
  if (!ok) return std::nullopt;
  if (l.format != "JSON" && (!l.application_log_level.empty() || !l.system_log_level.empty())) {
    c_.error(v, "log levels apply to JSON logs only: set format: JSON to use application_log_level or "
                "system_log_level (AWS refuses them with Text)");
    return std::nullopt;
  }
  return l;
}

bool Loader::read_layers(const View& v, FunctionSpec& fn) {
  auto items = c_.list(v, "a list of layer directories");
  if (!items) return false;
  bool ok = true;
  if (items->size() > 5) {
    c_.error(v, "a function can use at most 5 layers (as on AWS), found " + std::to_string(items->size()));
    ok = false;
  }
  for (const auto& item : *items) {
    if (auto d = directory(item, "layer directory"))
      fn.layers.push_back(*d);
    else
      ok = false;
  }
  return ok;
}

// The code must be there before anything starts; checked only once the settings it depends on are sound.
void Loader::check_code(const FunctionSpec& fn, const CodeCheck& code) {
  if (!code.ok || !code.have_dir) return;
  const RuntimeId& rt = fn.runtime;
  std::optional<std::string> err;
  if (rt.family == RuntimeFamily::provided) {
    if ((err = bootstrap_error(fn.code_dir, fn.layers, rt))) c_.error(code.code_at, *err);
    return;
  }
  if (!code.handler) return;
  err = rt.family == RuntimeFamily::python ? python_handler_file_error(*code.handler, fn.code_dir, fn.layers, rt)
                                           : node_handler_file_error(*code.handler, fn.code_dir, fn.layers, rt);
  if (err) c_.error(code.handler_at, *err);
}

void Loader::read_aliases(const View& v, FunctionSpec& fn) {
  auto entries = c_.named(v, "a mapping of alias names to a version or {version, weights}", true);
  if (!entries) return;
  for (const auto& [name, av] : *entries) {
    if (c_.stopped()) return;
    if (name.empty() || name.size() > 128 || !chars_in(name, name_char) || chars_in(name, digit_char)) {
      c_.error(av,
               "alias name " + sluice::quoted(name) +
                   " must be 1 to 128 letters, digits, '-' or '_' and not only digits (that would read as a version)");
      continue;
    }
    AliasSpec alias;
    alias.name = name;
    const View* version_at = &av;
    std::optional<Fields> fields;
    if (av.map()) {
      fields = c_.fields(av, {"version", "weights"}, "a mapping {version, weights}");
      if (!fields) continue;
      version_at = fields->get("version");
      if (!version_at) {
        c_.missing(av, "version", "$LATEST or a version number");
        continue;
      }
    }
    const View& vv = *version_at;
    if (!vv.scalar() || !(vv.text() == "$LATEST" || positive_version(vv.text()))) {
      c_.error(vv, "expected $LATEST or a version number (1, 2, ...), found " + Checker::found(vv));
      continue;
    }
    alias.version = vv.text();
    if (fields) {
      if (auto w = fields->get("weights")) {
        if (auto weights = c_.named(*w, "a mapping {\"VERSION\": WEIGHT} with one additional version", true)) {
          if (weights->size() > 1) {
            c_.error(*w, "an alias routes to at most one additional version (as on AWS), found " +
                             std::to_string(weights->size()));
            continue;
          }
          if (weights->size() == 1) {
            const auto& [extra, wv] = weights->front();
            bool good = true;
            if (alias.version == "$LATEST") {
              c_.error(vv, "an alias with weights must point at a published version, not $LATEST (as on AWS)");
              good = false;
            }
            if (!positive_version(extra)) {
              c_.error(wv, "the additional version must be a published version number (1, 2, ...), found " +
                               sluice::quoted(extra));
              good = false;
            } else if (extra == alias.version) {
              c_.error(wv, "the additional version " + extra + " is the alias's own version; name another one");
              good = false;
            }
            auto weight = c_.number(wv, "a weight between 0 and 1 (exclusive), such as 0.1");
            if (weight && !(*weight > 0.0 && *weight < 1.0)) {
              c_.error(wv, "expected a weight between 0 and 1 (exclusive), such as 0.1, found " + Checker::found(wv));
              good = false;
            }
            if (!weight || !good) continue;
            alias.additional = std::make_pair(extra, *weight);
          }
        }
      }
    }
    fn.aliases[name] = std::move(alias);
  }
}

// `url: true`, or {auth, invoke_mode, qualifier, cors, port} (AWS FunctionUrlConfig).
std::optional<FunctionUrlSpec> Loader::read_function_url(const View& v, const FunctionSpec& fn) {
  FunctionUrlSpec url;
  if (v.scalar() && v.n->plain && (v.text() == "true" || v.text() == "false")) {
    if (v.text() == "false") return std::nullopt;
    return url;
  }
  auto f = c_.fields(v, {"auth", "invoke_mode", "qualifier", "cors", "port"},
                     "true, or a mapping {auth: NONE|AWS_IAM, invoke_mode: BUFFERED|RESPONSE_STREAM, qualifier: ALIAS, "
                     "cors: {...}, port: N}",
                     true);
  if (!f) return std::nullopt;
  if (auto x = f->get("auth"))
    if (auto a = c_.choice(*x, {"NONE", "AWS_IAM"}, "auth type")) url.auth_type = *a;
  if (auto x = f->get("invoke_mode"))
    if (auto m = c_.choice(*x, {"BUFFERED", "RESPONSE_STREAM"}, "invoke mode")) url.invoke_mode = *m;
  if (auto x = f->get("qualifier"))
    if (auto q = c_.string(*x, "an alias of the function, or $LATEST")) {
      if (*q == "$LATEST" || fn.aliases.count(*q)) {
        url.qualifier = *q;
      } else {
        std::vector<std::string> names{"$LATEST"};
        for (const auto& [n, a] : fn.aliases) names.push_back(n);
        c_.error(*x, with_choices("a function URL's qualifier is an alias of the function (or $LATEST), and " +
                                      sluice::quoted(*q) + " is not one",
                                  *q, names, "aliases", "declare it under the function's 'aliases:' first"));
      }
    }
  if (auto x = f->get("cors")) url.cors = cors(*x, true);
  if (auto x = f->get("port"))
    if (auto p = c_.integer(*x, 0, 65535))
      if (*p != 0) url.port = static_cast<int>(*p);
  return url;
}

}  // namespace sluice::stack::detail
