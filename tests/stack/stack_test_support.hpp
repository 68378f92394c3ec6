// Helpers shared by the stack loader tests: fixture paths, problem lookup,
// a textual dump of the model (to compare YAML and JSON loads), temp dirs.
#pragma once

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "sluice/stack/loader.hpp"

namespace stack_test {

namespace fs = std::filesystem;
using namespace sluice::stack;

inline fs::path fixtures() { return fs::canonical(fs::path(SLUICE_FIXTURES_DIR) / "stacks"); }

inline LoadResult load_fixture(const std::string& name) { return load_file(fixtures() / name); }

// Loads text as if it were a file in fixtures/stacks (so code paths resolve).
inline LoadResult load(const std::string& text) { return load_text(text, "inline.yaml", fixtures()); }

inline std::string report(const LoadResult& r) { return format_report(r, "stack.yaml"); }

inline std::size_t count(const LoadResult& r, bool warnings) {
  std::size_t n = 0;
  for (const auto& p : r.problems) n += p.warning == warnings ? 1 : 0;
  return n;
}
inline std::size_t errors(const LoadResult& r) { return count(r, false); }
inline std::size_t warnings(const LoadResult& r) { return count(r, true); }

// The first problem at `path` whose message holds `part`, or nullptr.
inline const Problem* find(const LoadResult& r, const std::string& path, const std::string& part = "") {
  for (const auto& p : r.problems)
    if (p.path == path && p.message.find(part) != std::string::npos) return &p;
  return nullptr;
}

// Asserts an error (or warning) at path P whose message holds M, on line L (when L > 0).
// R is evaluated once (it may be a temporary such as refused("...")).
#define SLUICE_REQUIRE_PROBLEM_(R, P, M, L, WARNING)                                                                   \
  do {                                                                                                                 \
    const ::sluice::stack::LoadResult& result_ = (R);                                                                  \
    const auto* found_problem_ = ::stack_test::find(result_, (P), (M));                                                \
    INFO("expected a problem at " << (P) << " containing: " << (M) << "\nreport:\n" << ::stack_test::report(result_)); \
    REQUIRE(found_problem_ != nullptr);                                                                                \
    if ((L) > 0) CHECK(found_problem_->line == (L));                                                                   \
    if ((WARNING) >= 0) CHECK(found_problem_->warning == ((WARNING) == 1));                                            \
  } while (0)

#define REQUIRE_PROBLEM(R, P, M, L) SLUICE_REQUIRE_PROBLEM_(R, P, M, L, -1)
#define REQUIRE_ERROR(R, P, M, L) SLUICE_REQUIRE_PROBLEM_(R, P, M, L, 0)
#define REQUIRE_WARNING(R, P, M, L) SLUICE_REQUIRE_PROBLEM_(R, P, M, L, 1)

// Loads and requires success, showing the report otherwise.
inline Stack must_load(const LoadResult& r) {
  INFO(report(r));
  REQUIRE(r.ok());
  REQUIRE(errors(r) == 0);
  return *r.stack;
}

inline std::string dump_throttle(const std::optional<Throttle>& t) {
  if (!t) return "-";
  std::ostringstream o;
  o << t->rate << "/" << t->burst;
  return o.str();
}

// Everything in the model except where it was read from.
inline std::string describe(const Stack& s) {
  std::ostringstream o;
  o << "name=" << s.name << " region=" << s.region << " account=" << s.account_id << "\n";
  o << "defaults runtime=" << (s.defaults.runtime ? s.defaults.runtime->id : "-")
    << " memory=" << s.defaults.memory_mb.value_or(-1) << " timeout=" << s.defaults.timeout_s.value_or(-1)
    << " handler=" << s.defaults.handler.value_or("-") << "\n";
  for (const auto& [k, v] : s.defaults.environment) o << "  default env " << k << "=" << v << "\n";
  for (const auto& [n, p] : s.packages)
    o << "package " << n << " " << p.name << " " << p.path << " req=" << p.requirements.value_or("-") << "\n";
  for (const auto& [n, f] : s.functions) {
    o << "function " << n << " " << f.name << " rt=" << f.runtime.id << "/" << static_cast<int>(f.runtime.family) << "/"
      << f.runtime.major << "." << f.runtime.minor << " handler=" << f.handler << " code=" << f.code_dir
      << " package=" << f.package << " desc=" << f.description << " mem=" << f.memory_mb << " timeout=" << f.timeout_s
      << " rc=" << (f.reserved_concurrency ? std::to_string(*f.reserved_concurrency) : "-")
      << " async=" << f.async.max_retry_attempts << "/" << f.async.max_event_age_s << " logging="
      << (f.logging ? f.logging->format + "/" + f.logging->application_log_level + "/" + f.logging->system_log_level
                    : std::string("-"))
      << "\n";
    for (const auto& [k, v] : f.environment) o << "  env " << k << "=" << v << "\n";
    for (const auto& l : f.layers) o << "  layer " << l << "\n";
    if (f.requirements) o << "  requirements " << *f.requirements << "\n";
    for (const auto* d : {&f.async.on_success, &f.async.on_failure, &f.async.dead_letter})
      if (*d) o << "  destination " << (*d)->service << " " << (*d)->text() << "\n";
    if (f.url)
      o << "  url " << f.url->auth_type << " " << f.url->invoke_mode << " q=" << f.url->qualifier
        << " port=" << f.url->port.value_or(0) << " cors=" << (f.url->cors ? f.url->cors->allow_origins.size() : 0) << "\n";
    for (const auto& [k, a] : f.aliases) {
      o << "  alias " << k << " " << a.name << " -> " << a.version;
      if (a.additional) o << " + " << a.additional->first << "@" << a.additional->second;
      o << "\n";
    }
  }
  for (const auto& [n, a] : s.apis) {
    o << "api " << n << " " << a.name << " type=" << static_cast<int>(a.type) << " port=" << a.port.value_or(-1)
      << " timeout=" << a.timeout_ms << " id=" << a.api_id << "\n";
    for (const auto& b : a.binary_media_types) o << "  binary " << b << "\n";
    if (a.cors) {
      o << "  cors origins=";
      for (const auto& x : a.cors->allow_origins) o << x << ",";
      o << " methods=";
      for (const auto& x : a.cors->allow_methods) o << x << ",";
      o << " headers=";
      for (const auto& x : a.cors->allow_headers) o << x << ",";
      o << " expose=";
      for (const auto& x : a.cors->expose_headers) o << x << ",";
      o << " max_age=" << a.cors->max_age.value_or(-1) << " creds=" << a.cors->allow_credentials << "\n";
    }
    for (const auto& r : a.routes) {
      o << "  route " << r.key << " [" << r.method << "][" << r.path << "] -> " << r.target.function << ":"
        << r.target.qualifier << " key=" << r.api_key_required << " auth=" << r.authorizer
        << " payload=" << r.payload_format << " timeout=" << r.timeout_ms.value_or(-1)
        << " throttle=" << dump_throttle(r.throttle) << " scopes=";
      for (const auto& x : r.authorization_scopes) o << x << ",";
      o << "\n";
    }
    for (const auto& [sn, st] : a.stages) {
      o << "  stage " << sn << " " << st.name << " throttle=" << dump_throttle(st.throttle) << "\n";
      for (const auto& [k, v] : st.variables) o << "    var " << k << "=" << v << "\n";
      for (const auto& [k, v] : st.route_throttles) o << "    route throttle " << k << "=" << dump_throttle(v) << "\n";
    }
    for (const auto& [an, au] : a.authorizers) {
      o << "  authorizer " << an << " " << au.name << " type=" << static_cast<int>(au.type) << " fn=" << au.function
        << " ttl=" << au.ttl_s << " payload=" << au.payload_format << " simple=" << au.simple_responses
        << " regex=" << au.identity_validation_expression << " issuer=" << au.jwt.issuer
        << " jwks_file=" << (au.jwt.jwks_file ? au.jwt.jwks_file->string() : "-") << " jwks=" << au.jwt.jwks_inline
        << " sources=";
      for (const auto& x : au.identity_sources) o << x << ",";
      o << " aud=";
      for (const auto& x : au.jwt.audience) o << x << ",";
      o << "\n";
    }
  }
  for (const auto& [n, k] : s.api_keys)
    o << "key " << n << " " << k.name << " value=" << k.value << " id=" << k.id << " enabled=" << k.enabled << "\n";
  for (const auto& [n, p] : s.usage_plans) {
    o << "plan " << n << " " << p.name << " throttle=" << dump_throttle(p.throttle);
    if (p.quota) o << " quota=" << p.quota->limit << "/" << static_cast<int>(p.quota->period) << "/" << p.quota->offset;
    o << "\n";
    for (const auto& [a, st] : p.stages) o << "  stage " << a << "/" << st << "\n";
    for (const auto& k : p.keys) o << "  key " << k << "\n";
    for (const auto& [k, v] : p.route_throttles) o << "  route throttle " << k << "=" << dump_throttle(v) << "\n";
  }
  for (const auto& [n, sc] : s.schedules)
    o << "schedule " << n << " " << sc.function << ":" << sc.qualifier << " " << sc.expression.text
      << " input=" << sc.input.value_or("-") << " enabled=" << sc.enabled << " " << sc.description << "\n";
  for (const auto& [n, e] : s.event_sources) {
    o << "event source " << n << " " << e.function << ":" << e.qualifier << " " << e.queue_arn << " " << e.batch_size
      << "/" << e.batching_window_s << " failures=" << e.report_batch_item_failures << " enabled=" << e.enabled << " max=" << e.max_concurrency;
    for (const auto& f : e.filters) o << " filter=" << f;
    o << "\n";
  }
  return o.str();
}

// A scratch directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("sluice-stack-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
    path_ = fs::canonical(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path write(const std::string& rel, const std::string& content, bool executable = false) const {
    fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    fs::permissions(p, executable ? fs::perms(0755) : fs::perms(0644));
    return p;
  }
  fs::path mkdir(const std::string& rel) const {
    fs::create_directories(path_ / rel);
    return path_ / rel;
  }

 private:
  fs::path path_;
};

}  // namespace stack_test
