// Broken stacks: each problem comes with its path, line, what was found and
// what is allowed, and all of them are reported together.
#include "stack_test_support.hpp"

using namespace stack_test;

namespace {

LoadResult must_fail(const LoadResult& r) {
  INFO(report(r));
  REQUIRE_FALSE(r.ok());
  REQUIRE(errors(r) > 0);
  return r;
}

// One function around the given lines, for focused tests.
std::string with_function(const std::string& extra) {
  return "name: t\nfunctions:\n  f:\n    runtime: python3.12\n    handler: app.handler\n    code: code/python-app\n" +
         extra;
}

// A REST API with the given routes, two stages and two functions with aliases.
std::string rest_api(const std::string& routes, const std::string& more = "") {
  return "name: t\n"
         "defaults: {runtime: python3.12, handler: app.handler}\n"
         "functions:\n"
         "  fn: {code: code/python-app, aliases: {live: 1, beta: $LATEST}}\n"
         "  other: {code: code/python-app}\n"
         "apis:\n"
         "  api:\n"
         "    type: rest\n"
         "    stages: {dev: {variables: {alias: beta}}, prod: {variables: {alias: live}}}\n" +
         more + "    routes:\n" + routes;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string http_api(const std::string& body) {
  return "name: t\n"
         "defaults: {runtime: python3.12, handler: app.handler}\n"
         "functions:\n"
         "  fn: {code: code/python-app}\n"
         "apis:\n"
         "  api:\n"
         "    type: http\n" +
         body;
}

}  // namespace

TEST_CASE("broken-everything.yaml: every problem at once", "[stack][errors]") {
  auto r = must_fail(load_fixture("broken-everything.yaml"));
  CHECK(errors(r) == 19);
  CHECK(warnings(r) == 1);
  REQUIRE_ERROR(r, "name", "stack name \"9lives\" must start with a letter", 2);
  REQUIRE_ERROR(r, "region", "expected an AWS region such as \"us-east-1\" or \"eu-west-3\", found \"Europe\"", 3);
  REQUIRE_ERROR(r, "account_id", "expected a 12-digit AWS account id such as \"123456789012\", found 1234", 4);
  REQUIRE_ERROR(
      r, "defaults.runtime",
      "unsupported runtime \"python2.7\"; did you mean 'python3.9'? Supported runtimes: python3.9, python3.10", 6);
  REQUIRE_ERROR(r, "defaults.memory", "expected an integer from 128 to 10240, found 64", 7);
  REQUIRE_ERROR(r, "functions.list-movies.timeout", "expected an integer from 1 to 900, found \"big\"", 13);
  REQUIRE_ERROR(r, "functions.list-movies.memory",
                "expected an integer from 128 to 10240, found the string \"256\" (write numbers without quotes)", 14);
  REQUIRE_ERROR(r, "functions.list-movies.concurrency", "found -1", 15);
  REQUIRE_ERROR(r, "functions.list-movies.environment.AWS_REGION", "environment variable AWS_REGION is reserved", 17);
  REQUIRE_ERROR(r, "functions.list-movies.environment[\"1BAD\"]", "must start with a letter", 18);
  REQUIRE_ERROR(r, "functions.list-movies.layers", "at most 5 layers (as on AWS), found 6", 19);
  REQUIRE_ERROR(r, "functions.list-movies.aliases[\"123\"]", "not only digits", 21);
  REQUIRE_ERROR(r, "functions.list-movies.aliases.prod.version", "not $LATEST", 22);
  REQUIRE_ERROR(r, "functions.list-movies.aliases.canary.weights", "at most one additional version", 23);
  REQUIRE_ERROR(r, "functions.list-movies.async.max_retry_attempts", "expected an integer from 0 to 2, found 3", 24);
  REQUIRE_ERROR(r, "functions.list-movies.async.max_event_age", "expected an integer from 60 to 21600, found 30", 24);
  REQUIRE_ERROR(r, "apis.store", "a REST API needs at least one stage, e.g. stages:", 26);
  REQUIRE_ERROR(r, "apis.store.routes[\"GET /movies\"]", "unknown function \"list-movie\"; did you mean 'list-movies'?",
                29);
  REQUIRE_ERROR(r, "apis.web.type", "unknown API type \"graphql\"; allowed: rest, http", 31);
}

TEST_CASE("unknown keys get the nearest valid name and the allowed list", "[stack][errors][keys]") {
  auto r = must_fail(load_fixture("broken-unknown-keys.yaml"));
  REQUIRE_ERROR(r, "regoin", "unknown key 'regoin'; did you mean 'region'? Allowed keys: name, region, account_id", 3);
  REQUIRE_ERROR(r, "defaults.memroy", "did you mean 'memory'?", 4);
  REQUIRE_ERROR(r, "functions.fn.timout",
                "unknown key 'timout'; did you mean 'timeout'? Allowed keys: runtime, handler, code, package, "
                "description, memory, timeout, ephemeral_storage, environment, concurrency, layers, aliases, async",
                8);
  REQUIRE_ERROR(r, "functions.fn.enviroment", "did you mean 'environment'?", 9);
  REQUIRE_ERROR(r, "functions.fn.aliases.live.verison", "did you mean 'version'?", 10);
  REQUIRE_ERROR(r, "functions.fn.aliases.live", "missing required key 'version'", 10);
  REQUIRE_ERROR(r, "functions.fn.async.max_retries",
                "unknown key 'max_retries'; allowed keys: max_retry_attempts, max_event_age", 11);
  REQUIRE_ERROR(r, "functions.fn.flavour", "unknown key 'flavour'; allowed keys:", 12);
  REQUIRE_ERROR(r, "apis.store.rotues", "did you mean 'routes'?", 16);
  REQUIRE_ERROR(r, "apis.store.stages.dev.variabels", "did you mean 'variables'?", 18);
  REQUIRE_ERROR(r, "apis.store.stages.dev.throttle.brust", "did you mean 'burst'?", 18);
  REQUIRE_ERROR(r, "apis.store.authorizers.a.tll", "did you mean 'ttl'?", 20);
  CHECK(find(r, "functions.fn.flavour")->message.find("did you mean") == std::string::npos);
}

TEST_CASE("duplicate keys are errors", "[stack][errors][keys]") {
  auto r = must_fail(load_fixture("broken-duplicates.yaml"));
  REQUIRE_ERROR(r, "name", "duplicate key 'name' (first defined on line 1)", 2);
  REQUIRE_ERROR(r, "functions.fn.timeout", "duplicate key 'timeout' (first defined on line 7)", 8);
  REQUIRE_ERROR(r, "functions.fn", "duplicate key 'fn' (first defined on line 5)", 9);
  REQUIRE_ERROR(r, "apis.store.routes[\"GET /movies/\"]",
                "is the same route as the one on line 15 (a trailing slash does not make a different route)", 16);
  REQUIRE_ERROR(r, "apis.store.routes[\"GET /movies/{name}\"]", "conflicts with route \"GET /movies/{id}\"", 18);
  CHECK(errors(r) == 5);
}

TEST_CASE("code that is not there is reported before anything starts", "[stack][errors][code]") {
  auto r = must_fail(load_fixture("broken-code.yaml"));
  const std::string dir = fixtures().string();
  REQUIRE_ERROR(r, "functions.no-dir.code",
                "code directory \"code/does-not-exist\" does not exist (looked for " + dir + "/code/does-not-exist)",
                6);
  REQUIRE_ERROR(r, "functions.file-not-dir.code", "is not a directory", 10);
  REQUIRE_ERROR(r, "functions.py-missing-module.handler",
                "handler \"movies.list.handler\" needs movies/list.py or movies/list/__init__.py (or a compiled "
                "movies/list.*.so or movies/list.pyc) in the code directory " +
                    dir + "/code/python-app",
                15);
  REQUIRE_ERROR(r, "functions.py-bad-format.handler", "must be MODULE.FUNCTION", 19);
  REQUIRE_ERROR(r, "functions.py-bad-function.handler", "\"not-a-name\" is not a Python function name", 23);
  REQUIRE_ERROR(r, "functions.node-missing-file.handler",
                "needs main.js, main.mjs or main.cjs in the code directory " + dir + "/code/node-app", 27);
  REQUIRE_ERROR(r, "functions.node-bad-format.handler", "must be FILE.EXPORT", 31);
  REQUIRE_ERROR(r, "functions.custom-no-bootstrap.code",
                "runtime provided.al2023 needs an executable file named 'bootstrap' in the code directory " + dir +
                    "/code/node-app",
                34);
  REQUIRE_ERROR(r, "functions.custom-not-executable.code",
                dir + "/code/custom-noexec/bootstrap (in the code directory), but that file is not executable", 37);
  REQUIRE_ERROR(r, "functions.missing-layer.layers[0]", "layer directory \"layers/nope\" does not exist", 42);
  REQUIRE_ERROR(r, "functions.both", "set either 'code' (the function's own directory) or 'package'", 43);
  REQUIRE_ERROR(r, "functions.neither", "missing required key 'code'", 48);
  REQUIRE_ERROR(r, "functions.unknown-package.package",
                "unknown package \"shraed\"; did you mean 'shared'? Packages: gone, shared", 53);
  REQUIRE_ERROR(r, "packages.gone.path", "package directory \"code/gone\" does not exist", 57);
  CHECK(errors(r) == 14);
}

TEST_CASE("bootstraps: missing, not executable, from a layer", "[stack][errors][code]") {
  TempDir tmp;
  tmp.write("noexec/bootstrap", "#!/bin/sh\n", false);
  tmp.mkdir("empty");
  tmp.write("empty/.keep", "");
  tmp.write("layer-noexec/bootstrap", "#!/bin/sh\n", false);
  tmp.mkdir("dir-bootstrap/bootstrap");
  auto r = must_fail(load_text(R"(name: t
functions:
  a: {runtime: provided, code: noexec}
  b: {runtime: provided.al2, code: empty, layers: [empty]}
  c: {runtime: provided.al2023, code: empty, layers: [layer-noexec]}
  d: {runtime: provided.al2023, code: dir-bootstrap}
)",
                               "t.yaml", tmp.path()));
  REQUIRE_ERROR(r, "functions.a.code", "is not executable; run chmod +x on it", 3);
  REQUIRE_ERROR(
      r, "functions.b.code",
      "in the code directory " + (tmp.path() / "empty").string() + " or at the root of one of its layers; none found",
      4);
  REQUIRE_ERROR(r, "functions.c.code",
                "(in layer " + (tmp.path() / "layer-noexec").string() + "), but that file is not executable", 5);
  REQUIRE_ERROR(r, "functions.d.code", "is not a regular file", 6);
}

TEST_CASE("handler modules Python imports without a source file: extensions and .pyc", "[stack][errors][code]") {
  TempDir tmp;
  tmp.write("app/fast.cpython-312-x86_64-linux-gnu.so", "\x7f" "ELF");
  tmp.write("app/stable.abi3.so", "\x7f" "ELF");
  tmp.write("app/plain.so", "\x7f" "ELF");
  tmp.write("app/pkg/compiled.pyc", "pyc");
  tmp.write("app/fastish.txt", "not a module");
  auto r = load_text(R"(name: t
functions:
  a: {runtime: python3.12, code: app, handler: fast.handler}
  b: {runtime: python3.12, code: app, handler: stable.handler}
  c: {runtime: python3.12, code: app, handler: plain.handler}
  d: {runtime: python3.12, code: app, handler: pkg.compiled.handler}
  e: {runtime: python3.12, code: app, handler: fastish.handler}
)",
                     "t.yaml", tmp.path());
  REQUIRE_ERROR(r, "functions.e.handler", "handler \"fastish.handler\" needs fastish.py", 7);
  CHECK(errors(r) == 1);
}

TEST_CASE("a handler from defaults is checked and reported at the function", "[stack][errors][code]") {
  auto r =
      must_fail(load("name: t\ndefaults: {runtime: python3.12, handler: nothere.handler}\nfunctions:\n  f: {code: "
                     "code/python-app}\n"));
  REQUIRE_ERROR(r, "functions.f", "handler \"nothere.handler\" needs nothere.py", 4);
}

TEST_CASE("missing handler and runtime", "[stack][errors]") {
  auto r = must_fail(
      load("name: t\nfunctions:\n  a: {code: code/python-app}\n  b: {runtime: nodejs20.x, code: code/node-app}\n"));
  REQUIRE_ERROR(r, "functions.a", "missing required key 'runtime'; set it here or in defaults.runtime", 3);
  REQUIRE_ERROR(r, "functions.b", "missing required key 'handler'; e.g. \"index.handler\"", 4);
}

TEST_CASE("names and top-level values", "[stack][errors]") {
  SECTION("missing name") {
    auto r = must_fail(load("region: us-east-1\n"));
    REQUIRE_ERROR(r, "", "missing required key 'name'", 1);
  }
  SECTION("bad stack names") {
    for (std::string bad :
         {std::string("-x"), std::string("a_b"), std::string("a b"), std::string(65, 'a'), std::string("\"\"")}) {
      auto r = must_fail(load("name: " + bad + "\n"));
      REQUIRE_ERROR(r, "name", "must start with a letter and hold only letters, digits and hyphens", 1);
    }
    must_load(load("name: " + std::string(64, 'a') + "\n"));
  }
  SECTION("a list where a name is expected") {
    auto r = must_fail(load("name: [a]\n"));
    REQUIRE_ERROR(r, "name", "expected a stack name, found a list", 1);
  }
  SECTION("regions") {
    must_load(load("name: a\nregion: us-gov-west-1\n"));
    for (std::string bad : {"US-EAST-1", "us-east", "useast1", "us-east-12"}) {
      auto r = must_fail(load("name: a\nregion: " + bad + "\n"));
      REQUIRE_ERROR(r, "region", "expected an AWS region", 2);
    }
  }
  SECTION("account ids") {
    auto r = must_fail(load("name: a\naccount_id: 1234567890123\n"));
    REQUIRE_ERROR(r, "account_id", "found 1234567890123", 2);
    r = must_fail(load("name: a\naccount_id: 12345678901a\n"));
    REQUIRE_ERROR(r, "account_id", "found \"12345678901a\"", 2);
  }
  SECTION("function names") {
    auto r = must_fail(load("name: a\nfunctions:\n  " + std::string(65, 'f') +
                            ": {runtime: python3.12, handler: app.handler, code: code/python-app}\n"));
    REQUIRE_ERROR(r, "functions." + std::string(65, 'f'), "must be 1 to 64 letters, digits, '-' or '_'", 3);
  }
}

TEST_CASE("numbers: bounds, types, huge values", "[stack][errors][types]") {
  struct Case {
    std::string line;
    std::string path;
    std::string message;
  };
  std::vector<Case> cases{
      {"memory: 127", "functions.f.memory", "expected an integer from 128 to 10240, found 127"},
      {"memory: 10241", "functions.f.memory", "expected an integer from 128 to 10240, found 10241"},
      {"memory: 256.5", "functions.f.memory", "expected an integer from 128 to 10240, found 256.5"},
      {"memory: 99999999999999999999999999", "functions.f.memory", "found 99999999999999999999999999"},
      {"memory: [1]", "functions.f.memory", "expected an integer from 128 to 10240, found a list"},
      {"memory:", "functions.f.memory", "expected an integer from 128 to 10240, found nothing"},
      {"memory: 0x100", "functions.f.memory", "found \"0x100\""},
      {"timeout: 0", "functions.f.timeout", "expected an integer from 1 to 900, found 0"},
      {"timeout: 901", "functions.f.timeout", "expected an integer from 1 to 900, found 901"},
      {"timeout: -5", "functions.f.timeout", "found -5"},
      {"ephemeral_storage: 511", "functions.f.ephemeral_storage", "expected an integer from 512 to 10240, found 511"},
      {"ephemeral_storage: 10241", "functions.f.ephemeral_storage", "expected an integer from 512 to 10240, found 10241"},
      {"concurrency: -1", "functions.f.concurrency", "found -1"},
      {"concurrency: many", "functions.f.concurrency", "found \"many\""},
      {"description: {a: 1}", "functions.f.description", "expected a description, found a mapping"},
      {"description: " + std::string(257, 'd'), "functions.f.description", "at most 256"},
      {"async: {max_event_age: 21601}", "functions.f.async.max_event_age", "expected an integer from 60 to 21600"},
      {"async: {max_retry_attempts: \"1\"}", "functions.f.async.max_retry_attempts", "found the string \"1\""},
      {"async: 3", "functions.f.async",
       "expected a mapping {max_retry_attempts: 0..2, max_event_age: 60..21600, on_success: DESTINATION, "
       "on_failure: DESTINATION, dead_letter: SQS or SNS ARN}, found 3"},
  };
  for (const auto& c : cases) {
    INFO(c.line);
    auto r = must_fail(load(with_function("    " + c.line + "\n")));
    REQUIRE_ERROR(r, c.path, c.message, 7);
    CHECK(errors(r) == 1);
  }
  must_load(load(with_function("    memory: 128\n    timeout: 900\n    concurrency: 0\n")));
  must_load(load(with_function("    memory: 10240\n    timeout: 1\n")));
  auto st = must_load(load(with_function("    ephemeral_storage: 10240\n")));
  CHECK(st.functions.at("f").ephemeral_mb == 10240);
  CHECK(must_load(load(with_function("    memory: 256\n"))).functions.at("f").ephemeral_mb == 512);
}

TEST_CASE("logging: AWS LoggingConfig values, levels only with JSON", "[stack][errors][logging]") {
  auto r = must_fail(load(with_function("    logging: {format: json}\n")));
  REQUIRE_ERROR(r, "functions.f.logging.format", "unknown log format \"json\"; did you mean \"JSON\"?", 7);
  r = must_fail(load(with_function("    logging: {format: JSON, application_log_level: VERBOSE, system_log_level: ERROR}\n")));
  REQUIRE_ERROR(r, "functions.f.logging.application_log_level",
                "unknown application log level \"VERBOSE\"", 7);
  REQUIRE_ERROR(r, "functions.f.logging.system_log_level", "allowed: DEBUG, INFO, WARN", 7);
  r = must_fail(load(with_function("    logging: {system_log_level: DEBUG}\n")));
  REQUIRE_ERROR(r, "functions.f.logging", "log levels apply to JSON logs only: set format: JSON", 7);
  r = must_fail(load(with_function("    logging: {format: Text, application_log_level: INFO}\n")));
  REQUIRE_ERROR(r, "functions.f.logging", "AWS refuses them with Text", 7);
  r = must_fail(load(with_function("    logging: {format: JSON, group: /custom}\n")));
  REQUIRE_ERROR(r, "functions.f.logging.group", "unknown", 7);
  r = must_fail(load("name: t\ndefaults: {logging: {format: XML}}\n"));
  REQUIRE_ERROR(r, "defaults.logging.format", "unknown log format \"XML\"", 2);
}

TEST_CASE("environment variables", "[stack][errors][env]") {
  SECTION("every reserved name is refused") {
    REQUIRE(reserved_environment_names().size() == 18);
    for (const auto& name : reserved_environment_names()) {
      auto r = must_fail(load(with_function("    environment: {" + name + ": x}\n")));
      REQUIRE_ERROR(r, "functions.f.environment." + name, "is reserved by AWS Lambda", 7);
    }
    auto r = must_fail(load("name: t\ndefaults: {environment: {LAMBDA_TASK_ROOT: /x}}\n"));
    REQUIRE_ERROR(r, "defaults.environment.LAMBDA_TASK_ROOT", "reserved", 2);
  }
  SECTION("names") {
    auto r = must_fail(
        load(with_function("    environment:\n      _X: a\n      A-B: b\n      \"A B\": c\n      ok_1: d\n")));
    REQUIRE_ERROR(r, "functions.f.environment._X", "must start with a letter", 8);
    REQUIRE_ERROR(r, "functions.f.environment.A-B", "hold only letters, digits and '_'", 9);
    REQUIRE_ERROR(r, "functions.f.environment[\"A B\"]", "must start with a letter", 10);
    CHECK(errors(r) == 3);
  }
  SECTION("values") {
    auto r = must_fail(load(with_function("    environment:\n      A:\n      B: [1, 2]\n      C: {d: 1}\n")));
    REQUIRE_ERROR(r, "functions.f.environment.A", "found nothing (write \"\" for an empty value)", 8);
    REQUIRE_ERROR(r, "functions.f.environment.B", "found a list", 9);
    REQUIRE_ERROR(r, "functions.f.environment.C", "found a mapping", 10);
  }
  SECTION("4 KB in total, with defaults counted") {
    std::string big(2000, 'x');
    auto r = must_fail(load("name: t\ndefaults: {environment: {A: " + big + ", B: " + big +
                            "}}\nfunctions:\n  f:\n    "
                            "runtime: python3.12\n    handler: app.handler\n    code: code/python-app\n    "
                            "environment: {C: " +
                            std::string(100, 'y') + "}\n"));
    REQUIRE_ERROR(r, "functions.f.environment",
                  "total 4103 bytes (names plus values, with defaults.environment); AWS allows at most 4096", 8);
    auto d = must_fail(load("name: t\ndefaults: {environment: {A: " + std::string(4096, 'x') + "}}\n"));
    REQUIRE_ERROR(d, "defaults.environment", "total 4097 bytes", 2);
    must_load(load(with_function("    environment: {A: " + std::string(4095, 'x') + "}\n")));
  }
  SECTION("not a mapping") {
    auto r = must_fail(load(with_function("    environment: [A=b]\n")));
    REQUIRE_ERROR(r, "functions.f.environment",
                  "expected a mapping of environment variable names to values, found a list", 7);
  }
}

TEST_CASE("runtimes", "[stack][errors][runtime]") {
  auto r =
      must_fail(load("name: t\nfunctions:\n  f: {runtime: nodejs16.x, handler: index.handler, code: code/node-app}\n"));
  REQUIRE_ERROR(r, "functions.f.runtime", "unsupported runtime \"nodejs16.x\"; did you mean 'nodejs18.x'?", 3);
  REQUIRE_ERROR(r, "functions.f.runtime", "provided.al2023", 3);
  r = must_fail(load("name: t\nfunctions:\n  f: {runtime: java21, handler: x.y, code: code/node-app}\n"));
  REQUIRE_ERROR(r, "functions.f.runtime", "unsupported runtime \"java21\"; supported runtimes: python3.9", 3);
}

TEST_CASE("layers", "[stack][errors][layers]") {
  auto r = must_fail(load(with_function("    layers: layers/py-shared\n")));
  REQUIRE_ERROR(r, "functions.f.layers", "expected a list of layer directories, found \"layers/py-shared\"", 7);
  r = must_fail(load(with_function("    layers: [code/python-app/app.py, \"\"]\n")));
  REQUIRE_ERROR(r, "functions.f.layers[0]", "is not a directory", 7);
  REQUIRE_ERROR(r, "functions.f.layers[1]", "layer directory is empty", 7);
}

TEST_CASE("aliases", "[stack][errors][aliases]") {
  auto alias = [](const std::string& body) { return load(with_function("    aliases:\n      " + body + "\n")); };
  must_load(alias("a-b_C: 12"));
  must_load(alias("x: {version: 2, weights: {}}"));
  must_load(alias("x: {version: 2, weights: {3: 0.999}}"));
  struct Case {
    std::string body;
    std::string path;
    std::string message;
  };
  std::vector<Case> cases{
      {"\"007\": 1", "functions.f.aliases[\"007\"]", "not only digits"},
      {"\"a.b\": 1", "functions.f.aliases[\"a.b\"]", "must be 1 to 128 letters"},
      {std::string(129, 'a') + ": 1", "functions.f.aliases." + std::string(129, 'a'), "must be 1 to 128"},
      {"x: 0", "functions.f.aliases.x", "expected $LATEST or a version number (1, 2, ...), found 0"},
      {"x: latest", "functions.f.aliases.x", "found \"latest\""},
      {"x: {weights: {\"2\": 0.5}}", "functions.f.aliases.x", "missing required key 'version'"},
      {"x: {version: 1, weights: {\"2\": 0}}", "functions.f.aliases.x.weights[\"2\"]",
       "between 0 and 1 (exclusive), such as 0.1, found 0"},
      {"x: {version: 1, weights: {\"2\": 1}}", "functions.f.aliases.x.weights[\"2\"]", "found 1"},
      {"x: {version: 1, weights: {\"2\": high}}", "functions.f.aliases.x.weights[\"2\"]", "found \"high\""},
      {"x: {version: 1, weights: {$LATEST: 0.5}}", "functions.f.aliases.x.weights[\"$LATEST\"]",
       "must be a published version number"},
      {"x: {version: 1, weights: {\"1\": 0.5}}", "functions.f.aliases.x.weights[\"1\"]", "is the alias's own version"},
      {"x: {version: $LATEST, weights: {\"1\": 0.5}}", "functions.f.aliases.x.version", "not $LATEST (as on AWS)"},
      {"x: {version: 1, weights: {\"2\": 0.1, \"3\": 0.1}}", "functions.f.aliases.x.weights",
       "at most one additional version"},
      {"x: {version: 1, weights: [2]}", "functions.f.aliases.x.weights", "found a list"},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    auto r = must_fail(alias(c.body));
    REQUIRE_ERROR(r, c.path, c.message, 8);
  }
}

TEST_CASE("route keys", "[stack][errors][routes]") {
  struct Case {
    std::string key;
    std::string message;
  };
  std::vector<Case> cases{
      {"GET", "must be \"METHOD /path\" (e.g. \"GET /movies/{id}\")"},
      {"get /x", "unknown method 'get'; did you mean 'GET'? Methods: GET, POST"},
      {"BREW /x", "unknown method 'BREW'"},
      {"GET x", "the path must start with '/'"},
      {"GET /a//b", "empty segment"},
      {"GET /{a}/{a}", "the path parameter 'a' appears twice"},
      {"GET /{proxy+}/x", "the greedy parameter {proxy+} must be the last segment"},
      {"GET /x{id}", "a parameter must be a whole segment"},
      {"GET /{id", "must be a whole segment like {id}"},
      {"GET /{a-b}", "path parameter names are letters, digits and '_'"},
      {"GET /{}", "must be a whole segment like {id}"},
      {"GET /a b", "has characters a path may not hold"},
      {"$default", "the $default route exists only in HTTP APIs"},
  };
  for (const auto& c : cases) {
    INFO(c.key);
    auto r = must_fail(load(rest_api("      \"" + c.key + "\": fn\n")));
    const std::string path = c.key == "GET" ? "apis.api.routes.GET" : "apis.api.routes[\"" + c.key + "\"]";
    REQUIRE_ERROR(r, path, c.message, 11);
  }
  SECTION("REST: one variable child per level") {
    auto r = must_fail(load(
        rest_api("      GET /m/{id}: fn\n      PUT /m/{key}: fn\n      GET /{proxy+}: fn\n      GET /{x}/y: fn\n")));
    REQUIRE_ERROR(r, "apis.api.routes[\"PUT /m/{key}\"]",
                  "path part {key} conflicts with {id} of route \"GET /m/{id}\"", 12);
    REQUIRE_ERROR(r, "apis.api.routes[\"GET /{x}/y\"]", "conflicts with {proxy+}", 14);
  }
  SECTION("HTTP routes may use $default and differ in parameter names per method") {
    must_load(load(http_api("    routes:\n      $default: fn\n      GET /m/{id}: fn\n      PUT /m/{key}: fn\n")));
  }
}

TEST_CASE("route targets", "[stack][errors][routes]") {
  struct Case {
    std::string target;
    std::string message;
  };
  std::vector<Case> cases{
      {"nope", "unknown function \"nope\"; functions: fn, other"},
      {"fm", "unknown function \"fm\"; did you mean 'fn'? Functions: fn, other"},
      {"fn:prod", "qualifier \"prod\" is not $LATEST, a version number or an alias of 'fn'; its aliases: beta, live"},
      {"fn:lve", "did you mean 'live'?"},
      {"other:live", "it has no aliases"},
      {"fn:0", "qualifier \"0\""},
      {"fn:", "ends with ':'"},
      {":live", "names no function"},
      {"fn:a:b", "more than one ':'"},
      {"fn:${stageVariables.a-b}", "stage variable name \"a-b\""},
      {"fn:${stageVariables.}", "stage variable name \"\""},
      {"fn:${alias}", "malformed stage variable reference"},
      {"fn:${stageVariables.alias", "malformed stage variable reference"},
      {"fn/x", "has the character \"/\""},
  };
  for (const auto& c : cases) {
    INFO(c.target);
    auto r = must_fail(load(rest_api("      GET /x: \"" + c.target + "\"\n")));
    REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"]", c.message, 11);
  }
  SECTION("valid targets") {
    auto s =
        must_load(load(rest_api("      GET /a: fn:live\n      GET /b: fn:$LATEST\n      GET /c: fn:42\n"
                                "      GET /d: ${stageVariables.alias}\n      GET /e: fn-${stageVariables.alias}:x\n"
                                "      GET /f: {function: \"fn:${stageVariables.alias}\"}\n")));
    CHECK(s.apis.at("api").routes.at(4).target.function == "fn-${stageVariables.alias}");
    CHECK(s.apis.at("api").routes.at(4).target.qualifier == "x");
  }
  SECTION("the map form reports at .function") {
    auto r = must_fail(load(rest_api("      GET /x: {function: nope}\n")));
    REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].function", "unknown function \"nope\"", 11);
  }
  SECTION("a target of the wrong type") {
    auto r = must_fail(load(rest_api("      GET /x: [fn]\n")));
    REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"]",
                  "expected a target (FUNCTION[:QUALIFIER]) or a mapping {function, ...}, found a list", 11);
  }
}

TEST_CASE("route options and their API type", "[stack][errors][routes]") {
  auto r =
      must_fail(load(rest_api("      GET /x: {function: fn, payload_format: \"1.0\", authorization_scopes: [a], "
                              "api_key_required: \"yes\", timeout_ms: 40, throttle: {rate: 1}}\n")));
  REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].payload_format",
                "applies to HTTP APIs only; REST APIs always send payload 1.0", 11);
  REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].authorization_scopes", "needs a jwt authorizer on the route", 11);
  REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].api_key_required", "expected true or false, found \"yes\"", 11);
  REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].timeout_ms", "expected an integer from 50 to 29000, found 40", 11);
  REQUIRE_ERROR(r, "apis.api.routes[\"GET /x\"].throttle", "missing required key 'burst'", 11);

  auto h =
      must_fail(load(http_api("    routes:\n      GET /x: {function: fn, api_key_required: true, payload_format: 2, "
                              "timeout_ms: 30001}\n")));
  REQUIRE_ERROR(h, "apis.api.routes[\"GET /x\"].api_key_required", "applies to REST APIs only", 9);
  REQUIRE_ERROR(h, "apis.api.routes[\"GET /x\"].payload_format", "expected payload format \"1.0\" or \"2.0\", found 2",
                9);
  REQUIRE_ERROR(h, "apis.api.routes[\"GET /x\"].timeout_ms", "from 50 to 30000, found 30001", 9);
}

TEST_CASE("stages", "[stack][errors][stages]") {
  SECTION("REST needs one, with an example") {
    auto r = must_fail(load("name: t\napis:\n  api: {type: rest, routes: {}}\n"));
    REQUIRE_ERROR(r, "apis.api", "a REST API needs at least one stage, e.g. stages: {dev:", 3);
    r = must_fail(load("name: t\napis:\n  api: {type: rest, routes: {}, stages: {}}\n"));
    REQUIRE_ERROR(r, "apis.api.stages", "a REST API needs at least one stage", 3);
  }
  SECTION("HTTP with an empty list") {
    auto r = must_fail(load(http_api("    stages: {}\n")));
    REQUIRE_ERROR(r, "apis.api.stages", "omit 'stages' to get the $default stage", 8);
  }
  SECTION("names and variables") {
    auto r = must_fail(load(replace_once(rest_api("      GET /x: fn\n", "    port: 0\n"),
                                         "stages: {dev: {variables: {alias: beta}}, prod: {variables: {alias: live}}}",
                                         "stages:\n      \"bad stage\": {}\n      ok:\n        variables:\n          "
                                         "\"a.b\": x\n          long: " +
                                             std::string(513, 'v') +
                                             "\n          sp: \"a b\"\n          m: {x: 1}\n          alias: live\n"
                                             "        throttle: {rate: -1, burst: 1.5}\n")));
    REQUIRE_ERROR(r, "apis.api.stages[\"bad stage\"]", "stage name \"bad stage\" must be 1 to 128 letters", 10);
    REQUIRE_ERROR(r, "apis.api.stages.ok.variables[\"a.b\"]",
                  "stage variable name \"a.b\" must be letters, digits or '_'", 13);
    REQUIRE_ERROR(r, "apis.api.stages.ok.variables.long", "at most 512 characters; this one has 513", 14);
    REQUIRE_ERROR(r, "apis.api.stages.ok.variables.sp", "may hold only letters, digits and - . _ ~ : / ? # & = ,", 15);
    REQUIRE_ERROR(r, "apis.api.stages.ok.variables.m", "found a mapping", 16);
    REQUIRE_ERROR(r, "apis.api.stages.ok.throttle.rate", "greater than 0, found -1", 18);
    REQUIRE_ERROR(r, "apis.api.stages.ok.throttle.burst", "expected an integer from 0 to 2147483647, found 1.5", 18);
  }
  SECTION("route throttles name routes of this API") {
    auto r = must_fail(
        load(replace_once(rest_api("      GET /items: fn\n"), "prod: {variables: {alias: live}}",
                          "prod: {variables: {alias: live}, route_throttles: {\"GET /item\": {rate: 1, burst: 1}, "
                          "\"GET /items/\": {rate: 2, burst: 2}, nonsense: {rate: 1, burst: 1}}}")));
    REQUIRE_ERROR(r, "apis.api.stages.prod.route_throttles[\"GET /item\"]",
                  "no route \"GET /item\" in this API; did you mean 'GET /items'?", 9);
    REQUIRE_ERROR(r, "apis.api.stages.prod.route_throttles.nonsense", "must be \"METHOD /path\"", 9);
    CHECK(errors(r) == 2);  // "GET /items/" is GET /items
  }
  SECTION("$default is for HTTP APIs") {
    auto r = must_fail(load(replace_once(rest_api("      GET /x: fn\n"), "prod: {variables", "$default: {variables")));
    REQUIRE_ERROR(r, "apis.api.stages[\"$default\"]", "the $default stage exists only in HTTP APIs", 9);
  }
}

TEST_CASE("authorizers", "[stack][errors][authorizers]") {
  auto r = must_fail(load_fixture("broken-apis.yaml"));
  const std::string st = "apis.store.authorizers.";
  REQUIRE_ERROR(r, st + "jwt-in-rest.type",
                "authorizer type \"jwt\" is not available in a REST API; REST APIs allow: token, request", 17);
  REQUIRE_ERROR(r, st + "tok.identity_source", "a token authorizer takes exactly one identity source, found 2", 21);
  REQUIRE_ERROR(r, st + "tok.identity_validation_expression", "is not a valid regular expression", 22);
  REQUIRE_ERROR(r, st + "tok.ttl", "expected an integer from 0 to 3600, found 7200", 23);
  REQUIRE_ERROR(r, st + "tok.payload_format",
                "'payload_format' does not apply to a token authorizer (it takes: type, function, identity_source, "
                "identity_validation_expression, ttl)",
                24);
  REQUIRE_ERROR(r, st + "req",
                "a request authorizer with caching (ttl 300 by default) needs at least one identity_source", 25);
  REQUIRE_ERROR(r, st + "req.function", "unknown function \"authx\"; did you mean 'authz'?", 27);
  REQUIRE_ERROR(r, st + "none", "and not \"none\"", 28);
  const std::string web = "apis.web.authorizers.";
  REQUIRE_ERROR(r, web + "tok.type",
                "authorizer type \"token\" is not available in an HTTP API; HTTP APIs allow: request, jwt", 54);
  REQUIRE_ERROR(r, web + "j", "missing required key 'audience'", 55);
  REQUIRE_ERROR(r, web + "j", "set either 'jwks_file' or 'jwks', not both", 55);
  REQUIRE_ERROR(r, web + "r.simple_responses", "simple_responses needs payload_format \"2.0\"", 64);
  REQUIRE_ERROR(r, web + "r.identity_source",
                "expected an HTTP API identity source such as $request.header.Authorization", 65);

  SECTION("more authorizer mistakes") {
    auto a = must_fail(load(http_api(R"(    authorizers:
      none-type: {function: fn}
      odd: {type: saml}
      j1: {type: jwt, audience: [], jwks: {keys: [1]}}
      j2: {type: jwt, issuer: "", audience: a, jwks_file: code/python-app/app.py, identity_source: "$context.x"}
      j3: {type: jwt, issuer: x, audience: [a]}
      j4: {type: jwt, issuer: x, audience: [a], jwks: {kys: []}, function: fn, ttl: 5}
      r1: {type: request, function: fn, identity_source: [$request.header.A, "$request.body.x", 5], payload_format: "3.0"}
    routes:
      GET /a: {function: fn, authorizer: j5}
      GET /b: {function: fn, authorizer: r1, authorization_scopes: [s]}
)")));
    const std::string p = "apis.api.authorizers.";
    REQUIRE_ERROR(a, p + "none-type", "missing required key 'type'; request or jwt", 9);
    REQUIRE_ERROR(a, p + "odd.type", "unknown HTTP authorizer type \"saml\"; allowed: request, jwt", 10);
    REQUIRE_ERROR(a, p + "j1", "missing required key 'issuer'", 11);
    REQUIRE_ERROR(a, p + "j1.audience", "audience is empty", 11);
    REQUIRE_ERROR(a, p + "j1.jwks.keys[0]", "expected a JSON Web Key (a mapping with kty, kid, ...), found 1", 11);
    REQUIRE_ERROR(a, p + "j2.issuer", "the issuer is empty", 12);
    REQUIRE_ERROR(a, p + "j2.jwks_file", "is not a JWKS (a JSON object with a \"keys\" list)", 12);
    REQUIRE_ERROR(a, p + "j2.identity_source", "a jwt authorizer reads the token from a header or query string", 12);
    REQUIRE_ERROR(a, p + "j3", "a jwt authorizer needs the signing keys", 13);
    REQUIRE_ERROR(a, p + "j4.jwks.kys", "unknown key 'kys'; did you mean 'keys'?", 14);
    REQUIRE_ERROR(a, p + "j4.function", "'function' does not apply to a jwt authorizer", 14);
    REQUIRE_ERROR(a, p + "j4.ttl", "'ttl' does not apply to a jwt authorizer", 14);
    REQUIRE_ERROR(a, p + "r1.identity_source[1]", "found \"$request.body.x\"", 15);
    REQUIRE_ERROR(a, p + "r1.identity_source[2]", "found \"5\"", 15);
    REQUIRE_ERROR(a, p + "r1.payload_format", "expected payload format \"1.0\" or \"2.0\", found \"3.0\"", 15);
    REQUIRE_ERROR(a, "apis.api.routes[\"GET /a\"].authorizer", "unknown authorizer \"j5\"; did you mean 'j1'?", 17);
    REQUIRE_ERROR(a, "apis.api.routes[\"GET /b\"].authorization_scopes",
                  "applies to jwt authorizers only; \"r1\" is a request authorizer", 18);
  }
  SECTION("token identity sources must be one header") {
    auto t = must_fail(load(rest_api("      GET /x: fn\n",
                                     "    authorizers:\n      t: {type: token, function: fn, identity_source: "
                                     "method.request.querystring.token}\n")));
    REQUIRE_ERROR(t, "apis.api.authorizers.t.identity_source", "a token authorizer reads its token from one header",
                  11);
  }
  SECTION("jwks_file that is not JSON") {
    TempDir tmp;
    tmp.write("bad.json", "{\"keys\": [");
    tmp.mkdir("code");
    tmp.write("code/app.py", "");
    auto j = must_fail(load_text(R"(name: t
functions:
  fn: {runtime: python3.12, handler: app.handler, code: code}
apis:
  api:
    type: http
    authorizers:
      j: {type: jwt, issuer: x, audience: [a], jwks_file: bad.json}
      k: {type: jwt, issuer: x, audience: [a], jwks_file: missing.json}
    routes: {GET /: fn}
)",
                                 "t.yaml", tmp.path()));
    REQUIRE_ERROR(j, "apis.api.authorizers.j.jwks_file", "JSON syntax error", 8);
    REQUIRE_ERROR(j, "apis.api.authorizers.k.jwks_file", "does not exist or is not a file", 9);
  }
}

TEST_CASE("CORS, binary media types, ports", "[stack][errors][apis]") {
  auto r = must_fail(load_fixture("broken-apis.yaml"));
  REQUIRE_ERROR(r, "apis.store.port", "expected an integer from 0 to 65535, found 70000", 14);
  REQUIRE_ERROR(r, "apis.store.cors", "cors applies to HTTP APIs only", 15);
  REQUIRE_ERROR(r, "apis.other.port", "port 8080 is already used by API 'web'", 69);
  REQUIRE_ERROR(r, "apis.web.binary_media_types", "binary_media_types applies to REST APIs only", 51);
  REQUIRE_ERROR(r, "apis.web.cors.allow_methods[1]", "unknown method \"FETCH\"; did you mean 'PATCH'?", 52);
  REQUIRE_ERROR(r, "apis.web.cors.max_age", "from 0 to 86400, found 100000", 52);
  REQUIRE_ERROR(r, "apis.web.cors", "allow_credentials: true cannot be combined with allow_origins \"*\"", 52);
  REQUIRE_ERROR(r, "apis.web.stages", "no stages are listed", 68);
  CHECK(errors(r) == 40);
  CHECK(warnings(r) == 1);

  auto b =
      must_fail(load(rest_api("      GET /x: fn\n", "    binary_media_types: [image, \"*/*\", 5]\n    cors: {}\n")));
  REQUIRE_ERROR(b, "apis.api.binary_media_types[0]",
                "expected a media type such as \"image/png\" or \"*/*\", found \"image\"", 10);
  REQUIRE_ERROR(b, "apis.api.binary_media_types[2]", "found \"5\"", 10);
  REQUIRE_ERROR(b, "apis.api.cors", "cors applies to HTTP APIs only", 11);
  auto c = must_fail(
      load(http_api("    cors: {allow_origins: [example.com], allow_credentials: 1}\n    routes: {GET /: fn}\n")));
  REQUIRE_ERROR(c, "apis.api.cors.allow_origins[0]", "expected an origin such as \"https://example.com\"", 8);
  REQUIRE_ERROR(c, "apis.api.cors.allow_credentials", "expected true or false, found 1", 8);
}

TEST_CASE("api_key_source: HEADER or AUTHORIZER, REST APIs only", "[stack][errors][plans]") {
  auto st = must_load(load(rest_api("      GET /x: fn\n", "    api_key_source: AUTHORIZER\n")));
  CHECK(st.apis.at("api").api_key_source == "AUTHORIZER");
  CHECK(must_load(load(rest_api("      GET /x: fn\n"))).apis.at("api").api_key_source == "HEADER");
  auto r = must_fail(load(rest_api("      GET /x: fn\n", "    api_key_source: QUERY\n")));
  REQUIRE_ERROR(r, "apis.api.api_key_source", "unknown API key source \"QUERY\"", 10);
  r = must_fail(load(http_api("    api_key_source: HEADER\n    routes: {GET /: fn}\n")));
  REQUIRE_ERROR(r, "apis.api.api_key_source", "applies to REST APIs only", 8);
  // A keyed route without an authorizer can never get a key from one.
  auto w = load(rest_api("      GET /x: {function: fn, api_key_required: true}\n", "    api_key_source: AUTHORIZER\n"));
  REQUIRE_WARNING(w, "apis.api.routes[\"GET /x\"]", "but the route has no authorizer; every request there will get 403",
                  12);
}

TEST_CASE("API keys and usage plans", "[stack][errors][plans]") {
  auto r = must_fail(load_fixture("broken-usage-plans.yaml"));
  REQUIRE_WARNING(r, "apis.store.routes[\"GET /items\"]", "no usage plan with keys covers stage dev;", 10);
  REQUIRE_ERROR(r, "api_keys.short.value",
                "20 to 128 printable ASCII characters without spaces (as on AWS), found 9 characters", 19);
  REQUIRE_ERROR(r, "api_keys.spaced.value", "with spaces", 20);
  REQUIRE_ERROR(r, "api_keys.dup-b.value", "API key values must be unique; this is the value of API key 'dup-a'", 22);
  REQUIRE_ERROR(r, "api_keys.flag.enabled", "expected true or false, found \"yes\"", 23);
  REQUIRE_ERROR(r, "api_keys[\"bad key\"]", "API key name \"bad key\"", 24);
  REQUIRE_ERROR(r, "usage_plans.gold.stages[1]", "usage plans apply to REST APIs only; 'web' is an HTTP API", 27);
  REQUIRE_ERROR(r, "usage_plans.gold.stages[2]", "API 'store' has no stage \"qa\"; its stages: dev, prod", 27);
  REQUIRE_ERROR(r, "usage_plans.gold.stages[3]", "unknown API \"shop\"; APIs: store, web", 27);
  REQUIRE_ERROR(r, "usage_plans.gold.stages[4]", "expected \"API/STAGE\" (e.g. \"store/prod\"), found \"store\"", 27);
  REQUIRE_ERROR(r, "usage_plans.gold.stages[5]", "stage \"store/prod\" is listed twice", 27);
  REQUIRE_ERROR(r, "usage_plans.gold.quota.limit", "from 1 to 2147483647, found 0", 28);
  REQUIRE_ERROR(r, "usage_plans.gold.quota.period", "unknown quota period \"YEAR\"; allowed: DAY, WEEK, MONTH", 28);
  REQUIRE_ERROR(r, "usage_plans.gold.quota.offset", "found -1", 28);
  REQUIRE_ERROR(r, "usage_plans.gold.keys[1]", "unknown API key \"nobody\"", 29);
  REQUIRE_ERROR(r, "usage_plans.gold.keys[2]", "API key \"dup-a\" is listed twice", 29);
  REQUIRE_ERROR(r, "usage_plans.gold.route_throttles[\"store/dev/GET /items\"]",
                "stage \"store/dev\" is not among this usage plan's stages (store/prod)", 32);
  REQUIRE_ERROR(r, "usage_plans.gold.route_throttles[\"store/prod/GET /nothing\"]",
                "no route \"GET /nothing\" in this API", 33);
  REQUIRE_ERROR(r, "usage_plans.gold.route_throttles.store-prod-GET", "expected \"API/STAGE/METHOD /path\"", 34);
  REQUIRE_ERROR(r, "usage_plans.silver.throttle", "missing required key 'burst'", 37);
  REQUIRE_ERROR(r, "usage_plans.silver.quota.offset", "found 28", 38);
  REQUIRE_ERROR(
      r, "usage_plans.silver.keys[0]",
      "is already in usage plan 'gold' for stage \"store/prod\"; a key may belong to only one usage plan per API stage",
      39);
  REQUIRE_ERROR(r, "usage_plans.bronze.quota.offset", "a DAY quota takes no offset (0)", 42);
  CHECK(errors(r) == 22);
}

TEST_CASE("the report: one line per problem, sorted by line, then a summary", "[stack][errors][report]") {
  auto r =
      must_fail(load("name: t\nregion: nowhere\nfunctions:\n  f: {runtime: python3.12, handler: app.handler, "
                     "code: code/python-app, timout: 3}\napis:\n  a: {type: rest, routes: {GET /: f}, stages: "
                     "{s: {variables: {}}}}\n  b: {type: http, routes: {GET /: \"f:${stageVariables.v}\"}}\n"));
  std::string text = format_report(r, "dir/sluice.yaml");
  CHECK(text ==
        "dir/sluice.yaml:2: error: region: expected an AWS region such as \"us-east-1\" or \"eu-west-3\", found "
        "\"nowhere\"\n"
        "dir/sluice.yaml:4: error: functions.f.timout: unknown key 'timout'; did you mean 'timeout'? Allowed keys: "
        "runtime, handler, code, package, description, memory, timeout, ephemeral_storage, environment, concurrency, "
        "layers, aliases, "
        "async, requirements, logging, url\n"
        "dir/sluice.yaml:7: warning: apis.b.routes[\"GET /\"]: stage '$default' does not define the stage variable v "
        "used by target \"f:${stageVariables.v}\"; requests through that stage will fail\n"
        "2 errors, 1 warning\n");
  LoadResult one;
  one.problems.push_back(Problem{"", "cannot read the stack file: it does not exist", 0, false});
  CHECK(format_report(one, "x.yaml") ==
        "x.yaml: error: cannot read the stack file: it does not exist\n1 error, 0 warnings\n");
  LoadResult none;
  CHECK(format_report(none, "x.yaml") == "0 errors, 0 warnings\n");
}

TEST_CASE("problems in one section do not hide problems in another", "[stack][errors]") {
  auto r =
      must_fail(load("name: t\nfunctions: [oops]\napis: {a: {type: rest, stages: {s: {}}, routes: {GET /: f}}}\n"
                     "api_keys: {k: {value: short}}\nusage_plans: {p: {stages: [a/x]}}\n"));
  REQUIRE_ERROR(r, "functions", "expected a mapping of function names to their settings, found a list", 2);
  REQUIRE_ERROR(r, "apis.a.routes[\"GET /\"]", "unknown function \"f\"; no functions are defined", 3);
  REQUIRE_ERROR(r, "api_keys.k.value", "found 5 characters", 4);
  REQUIRE_ERROR(r, "usage_plans.p.stages[0]", "API 'a' has no stage \"x\"", 5);
}

TEST_CASE("url: a function URL, true or {auth, invoke_mode, qualifier, cors, port}", "[stack][errors][url]") {
  auto st = must_load(load(with_function("    url: true\n")));
  REQUIRE(st.functions.at("f").url);
  CHECK(st.functions.at("f").url->auth_type == "NONE");
  CHECK(st.functions.at("f").url->invoke_mode == "BUFFERED");
  CHECK_FALSE(must_load(load(with_function("    url: false\n"))).functions.at("f").url);
  st = must_load(load(with_function("    aliases: {live: \"$LATEST\"}\n    url: {auth: AWS_IAM, invoke_mode: RESPONSE_STREAM, "
                                    "qualifier: live, port: 3999, cors: {allow_origins: [\"*\"]}}\n")));
  const auto& u = *st.functions.at("f").url;
  CHECK((u.auth_type == "AWS_IAM" && u.invoke_mode == "RESPONSE_STREAM" && u.qualifier == "live" && u.port == 3999));
  REQUIRE(u.cors);
  CHECK(u.cors->allow_origins == std::vector<std::string>{"*"});
  // Lambda accepts "*" with credentials for a URL (an HTTP API does not) and no OPTIONS method.
  st = must_load(load(with_function("    url: {cors: {allow_origins: [\"*\"], allow_credentials: true}}\n")));
  CHECK(st.functions.at("f").url->cors->allow_credentials);
  auto r0 = must_fail(load(with_function("    url: {cors: {allow_methods: [GET, OPTIONS]}}\n")));
  REQUIRE_ERROR(r0, "functions.f.url.cors.allow_methods[1]",
                "a function URL's allow_methods takes GET, PUT, POST, DELETE, HEAD, PATCH or \"*\"", 7);
  CHECK(must_load(load(http_api("    cors: {allow_methods: [GET, OPTIONS]}\n    routes: {GET /: fn}\n")))
            .apis.at("api").cors->allow_methods.size() == 2);

  auto r = must_fail(load(with_function("    url: {auth: IAM}\n")));
  REQUIRE_ERROR(r, "functions.f.url.auth", "unknown auth type \"IAM\"", 7);
  r = must_fail(load(with_function("    url: {invoke_mode: STREAM}\n")));
  REQUIRE_ERROR(r, "functions.f.url.invoke_mode", "allowed: BUFFERED, RESPONSE_STREAM", 7);
  r = must_fail(load(with_function("    aliases: {live: \"$LATEST\"}\n    url: {qualifier: liv}\n")));
  REQUIRE_ERROR(r, "functions.f.url.qualifier", "is an alias of the function (or $LATEST), and \"liv\" is not one; did you mean 'live'?", 8);
  r = must_fail(load(with_function("    url: {authtype: NONE}\n")));
  REQUIRE_ERROR(r, "functions.f.url.authtype", "unknown key 'authtype'; allowed keys: auth, invoke_mode", 7);
  r = must_fail(load(with_function("    url: yes please\n")));
  REQUIRE_ERROR(r, "functions.f.url", "expected true, or a mapping {auth: NONE|AWS_IAM", 7);
}

TEST_CASE("async destinations: a function of the stack or an ARN Lambda accepts", "[stack][errors][async]") {
  // Two functions: f (the one under test) and g.
  auto two = [](const std::string& async) {
    return "name: t\ndefaults: {runtime: python3.12, handler: app.handler}\nfunctions:\n"
           "  g: {code: code/python-app, aliases: {live: \"$LATEST\"}}\n"
           "  f:\n    code: code/python-app\n    async: " +
           async + "\n";
  };
  auto st = must_load(load(two("{on_success: g, on_failure: \"g:live\"}")));
  const auto& a = st.functions.at("f").async;
  REQUIRE((a.on_success && a.on_failure));
  CHECK((a.on_success->function == "g" && a.on_success->qualifier.empty() && a.on_success->service == "lambda"));
  CHECK((a.on_failure->function == "g" && a.on_failure->qualifier == "live" && a.on_failure->text() == "g:live"));
  st = must_load(load(two("{on_success: arn:aws:events:eu-west-3:123456789012:event-bus/default, "
                          "on_failure: \"arn:aws:s3:::my-bucket\"}")));
  CHECK(st.functions.at("f").async.on_success->service == "events");
  CHECK(st.functions.at("f").async.on_failure->arn == "arn:aws:s3:::my-bucket");
  for (const char* ok : {"arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:123456789012:t",
                         "arn:aws:lambda:us-east-1:123456789012:function:other:prod"})
    CHECK(must_load(load(two(std::string("{on_failure: ") + ok + "}"))).functions.at("f").async.on_failure->arn == ok);

  auto r = must_fail(load(two("{on_failure: h}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "unknown function \"h\" (a destination is a function of this stack or an ARN", 7);
  r = must_fail(load(two("{on_failure: f}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "a function can't be a destination for itself", 7);
  r = must_fail(load(two("{on_failure: \"g:beta\"}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "qualifier \"beta\" is not $LATEST, a version number or an alias of 'g'", 7);
  r = must_fail(load(two("{on_success: \"arn:aws:s3:::b\"}")));
  REQUIRE_ERROR(r, "functions.f.async.on_success", "an S3 bucket can only be an on_failure destination", 7);
  r = must_fail(load(two("{on_failure: arn:aws:sqs:us-east-1:123456789012:jobs.fifo}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "standard queues only, not FIFO ones", 7);
  r = must_fail(load(two("{on_failure: arn:aws:dynamodb:us-east-1:123456789012:table/t}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "sqs, sns, events, lambda or s3 (failures only), not \"dynamodb\"", 7);
  r = must_fail(load(two("{on_failure: arn:aws:sqs:nowhere:123:q}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "the ARN must name its region and 12-digit account: arn:aws:sqs:us-east-1:123456789012:", 7);
  r = must_fail(load(two("{on_failure: arn:aws:events:us-east-1:123456789012:rule/r}")));
  REQUIRE_ERROR(r, "functions.f.async.on_failure", "expected an event bus: arn:aws:events:REGION:ACCOUNT:event-bus/NAME", 7);
  st = must_load(load(two("{dead_letter: arn:aws:sns:us-east-1:123456789012:t}")));
  CHECK(st.functions.at("f").async.dead_letter->service == "sns");
  r = must_fail(load(two("{dead_letter: g}")));
  REQUIRE_ERROR(r, "functions.f.async.dead_letter", "a dead-letter queue is an SQS queue or SNS topic ARN", 7);
  r = must_fail(load(two("{dead_letter: arn:aws:sqs:us-east-1:123456789012:dlq.fifo}")));
  REQUIRE_ERROR(r, "functions.f.async.dead_letter", "standard queues only, not FIFO ones", 7);
  r = must_fail(load(two("{on_sucess: g}")));
  REQUIRE_ERROR(r, "functions.f.async.on_sucess", "did you mean 'on_success'?", 7);
}

TEST_CASE("event_sources: SQS queues polled for a function", "[stack][errors][event_sources]") {
  auto with = [](const std::string& es) {
    return "name: t\ndefaults: {runtime: python3.12, handler: app.handler}\nfunctions:\n"
           "  g: {code: code/python-app, aliases: {live: \"$LATEST\"}}\n"
           "event_sources:\n  q:\n" +
           es;
  };
  auto st = must_load(load(with("    function: g:live\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n"
                                "    batch_size: 100\n    batching_window: 5\n    report_batch_item_failures: true\n")));
  const auto& e = st.event_sources.at("q");
  CHECK((e.function == "g" && e.qualifier == "live" && e.queue_arn == "arn:aws:sqs:us-east-1:123456789012:orders"));
  CHECK((e.batch_size == 100 && e.batching_window_s == 5 && e.report_batch_item_failures && e.enabled));
  st = must_load(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n")));
  CHECK((st.event_sources.at("q").batch_size == 10 && !st.event_sources.at("q").report_batch_item_failures));

  auto r = must_fail(load(with("    function: h\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n")));
  REQUIRE_ERROR(r, "event_sources.q.function", "unknown function \"h\"", 7);
  r = must_fail(load(with("    function: g\n    queue: orders\n")));
  REQUIRE_ERROR(r, "event_sources.q.queue", "expected an SQS queue ARN such as arn:aws:sqs:us-east-1:123456789012:orders", 8);
  r = must_fail(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n    batch_size: 20\n")));
  REQUIRE_ERROR(r, "event_sources.q.batch_size", "a batch_size over 10 needs a batching_window of at least 1 second", 9);
  r = must_fail(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:jobs.fifo\n    batch_size: 20\n    batching_window: 1\n")));
  REQUIRE_ERROR(r, "event_sources.q.batch_size", "a FIFO queue is read in batches of at most 10 messages (AWS), found 20", 9);
  REQUIRE_ERROR(r, "event_sources.q.batching_window", "a FIFO queue takes no batching window", 10);
  CHECK(must_load(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:jobs.fifo\n    batching_window: 0\n")))
            .event_sources.at("q").batching_window_s == 0);
  r = must_fail(load(with("    function: g\n")));
  REQUIRE_ERROR(r, "event_sources.q", "missing required key 'queue'; the ARN of the SQS queue to poll", 6);
  st = must_load(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n    max_concurrency: 2\n")));
  CHECK(st.event_sources.at("q").max_concurrency == 2);
  r = must_fail(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n    max_concurrency: 1\n")));
  REQUIRE_ERROR(r, "event_sources.q.max_concurrency", "2", 9);
  r = must_fail(load(with("    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n    batchsize: 2\n")));
  REQUIRE_ERROR(r, "event_sources.q.batchsize", "did you mean 'batch_size'?", 9);
}

TEST_CASE("event_sources: filters (FilterCriteria)", "[stack][errors][event_sources]") {
  auto with = [](const std::string& filters) {
    return "name: t\ndefaults: {runtime: python3.12, handler: app.handler}\nfunctions:\n"
           "  g: {code: code/python-app}\n"
           "event_sources:\n  q:\n    function: g\n    queue: arn:aws:sqs:us-east-1:123456789012:orders\n"
           "    filters:\n" +
           filters;
  };
  auto st = must_load(load(with("      - {body: {kind: [order, refund], n: [{numeric: [\">=\", 1, \"<\", 5]}]}}\n"
                                "      - '{\"$or\": [{\"body\": [\"ping\"]}, {\"body\": [{\"suffix\": \"!\"}]}]}'\n")));
  const auto& f = st.event_sources.at("q").filters;
  REQUIRE(f.size() == 2);
  CHECK(f[0] == R"({"body":{"kind":["order","refund"],"n":[{"numeric":[">=",1,"<",5]}]}})");
  CHECK(f[1] == R"({"$or":[{"body":["ping"]},{"body":[{"suffix":"!"}]}]})");

  auto r = must_fail(load(with("      - {messageAttributes: {kind: [x]}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]",
                "invalid filter pattern (AWS: 'Invalid filter pattern definition.'): messageAttributes: SQS event "
                "sources filter on the message body only (AWS)",
                10);
  r = must_fail(load(with("      - {body: {kind: order}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "body.kind: a field's values are given as a list", 10);
  r = must_fail(load(with("      - {body: {kind: []}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "body.kind: an empty list matches nothing (AWS refuses it)", 10);
  r = must_fail(load(with("      - {body: {kind: [{wildcard: \"a*\"}]}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]",
                "body.kind[0].wildcard: 'wildcard' is an EventBridge rule that Lambda's event filtering does not have", 10);
  r = must_fail(load(with("      - {body: {n: [{numeric: [\"<\", 5, \">\", 1]}]}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "body.n[0].numeric: expected [OP, NUMBER]", 10);
  r = must_fail(load(with("      - {body: {n: [{anything-but: {prefix: a}}]}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "body.n[0].anything-but: anything-but with prefix is an EventBridge rule", 10);
  r = must_fail(load(with("      - '{\"body\": '\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "a filter written as a string must hold a JSON pattern", 10);
  r = must_fail(load(with("      - {body: {a: [{exists: yes please}]}}\n")));
  REQUIRE_ERROR(r, "event_sources.q.filters[0]", "body.a[0].exists: expected true or false", 10);
  std::string eleven;
  for (int i = 0; i < 11; ++i) eleven += "      - {body: [x]}\n";
  r = must_fail(load(with(eleven)));
  REQUIRE_ERROR(r, "event_sources.q.filters", "at most 10 filters (AWS: 5, and up to 10 with a quota increase)", 9);
}
