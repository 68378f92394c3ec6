"""Lambda extensions as AWS runs them: the executables of a layer's extensions/ folder (/opt
/extensions) start before the runtime and register with the Extensions API; they get INVOKE
and SHUTDOWN events; an invocation ends when the runtime and every extension are done; crashes,
init errors and launch errors fail the environment with Extension.* errors; internal extensions
register from the runtime process during its init; the Telemetry API delivers platform events
and log lines to an extension's HTTP listener; AWS_LAMBDA_EXEC_WRAPPER wraps managed runtimes.
Real processes throughout: a Python extension (fixtures/functions/extension-probe/layer/
extensions/probe-ext) that records what it sees in a file, and sluice's own runtimes."""
import base64
import json
import os
import re
import time

import pytest

from conftest import wait_until as wait_for

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def stack(functions):
    return "name: ext\nfunctions:\n" + functions


def fn(name, handler="handlers.echo", timeout=3, layers="[layer/]", runtime="python3.11", **env):
    env_yaml = ", ".join(f"{k}: {json.dumps(str(v))}" for k, v in env.items())
    return (f"  {name}:\n    runtime: {runtime}\n    code: code/\n    handler: {handler}\n"
            f"    timeout: {timeout}\n    layers: {layers}\n    environment: {{{env_yaml}}}\n")


@pytest.fixture
def probe(ws):
    ws.copy_function("extension-probe", "probe")
    return ws


def serve(ws, functions):
    (ws.path / "probe" / "sluice.yaml").write_text(stack(functions))
    from conftest import Sluice
    s = Sluice(ws.path / "probe")
    ws.servers.append(s)
    return s.start()


def ext_log(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def invoke_settled(srv, name, payload):
    """Invokes and waits for the REPORT line: the environment, extensions included, is idle
    again, so the next call thaws it rather than starting a second one (an extension still
    busy after the answer keeps the environment busy, as on AWS)."""
    r = srv.invoke(name, payload)
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    # A text REPORT line, or with JSON logs the platform.report record.
    wait_for(lambda: any(rid in line and ("REPORT RequestId" in line or "platform.report" in line)
                         for line in srv.stdout().splitlines()))
    return r


def tail(r):
    return base64.b64decode(r.get("LogResult", "")).decode()


def test_external_extension_registers_gets_invoke_and_shutdown(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log))
    r = srv.invoke("f", {"n": 1}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    lines = tail(r).splitlines()
    # The extension starts before the runtime; its line comes when init ends, before START.
    ext_line = lines.index("EXTENSION\tName: probe-ext\tState: Ready\tEvents: [INVOKE, SHUTDOWN]")
    assert not lines[0].startswith("INIT_START")  # in the log, not in the tail (AWS-recorded)
    assert lines.index("[probe-ext] registered as probe-ext") < ext_line
    assert ext_line < next(i for i, l in enumerate(lines) if l.startswith("START RequestId: " + rid))
    assert f"[probe-ext] INVOKE {rid}" in lines

    register = next(e for e in ext_log(log) if e["kind"] == "register")
    assert register["status"] == 200
    # accountId first, as Lambda answers when the extension accepts that feature
    assert list(register["body"].items()) == [("accountId", "123456789012"), ("functionName", "f"),
                                              ("functionVersion", "$LATEST"), ("handler", "handlers.echo")]
    invoke = next(e for e in ext_log(log) if e["kind"] == "event")
    ev = invoke["event"]
    assert list(ev) == ["eventType", "deadlineMs", "requestId", "invokedFunctionArn", "tracing"]
    assert ev["eventType"] == "INVOKE" and ev["requestId"] == rid
    assert ev["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert ev["tracing"]["type"] == "X-Amzn-Trace-Id" and ev["tracing"]["value"].startswith("Root=1-")
    assert 2000 < ev["deadlineMs"] - invoke["at_ms"] <= 3000  # the function's 3 s timeout
    assert UUID.match(invoke["event_id"])

    # Stopping sluice: SHUTDOWN with reason spindown and a deadline 2 s out; the extension
    # has the time to finish.
    assert srv.stop() == 0
    events = [e for e in ext_log(log) if e["kind"] == "event"]
    shutdown = events[-1]
    assert shutdown["event"]["eventType"] == "SHUTDOWN"
    assert list(shutdown["event"]) == ["eventType", "deadlineMs", "shutdownReason"]
    assert shutdown["event"]["shutdownReason"] == "spindown"
    assert 0 < shutdown["event"]["deadlineMs"] - shutdown["at_ms"] <= 2000
    assert ext_log(log)[-1]["kind"] == "exit"


def test_extension_environment(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, MY_SETTING="on"))
    runtime_env = srv.invoke("f", {})["Json"]["env"]
    env = next(e for e in ext_log(log) if e["kind"] == "register")["env"]
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                 "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "TZ", "MY_SETTING"):
        assert env[name] == runtime_env[name], name
    # The runtime's own variables are not an extension's business.
    for name in ("_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV",
                 "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_XRAY_CONTEXT_MISSING",
                 "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS", "_X_AMZN_TRACE_ID"):
        assert name not in env, name
        assert name in runtime_env or name == "_X_AMZN_TRACE_ID"


def test_response_comes_before_the_extension_is_done_and_the_invocation_waits_for_it(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_DELAY_MS=600))
    srv.invoke("f", {})  # cold start out of the way
    wait_for(lambda: [e for e in ext_log(log) if e["kind"] == "worked"])
    r = srv.invoke("f", {"n": 2})  # (with LogType=Tail the answer waits for the REPORT line)
    answered_ms = int(time.time() * 1000)
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    worked = wait_for(lambda: [e for e in ext_log(log) if e["kind"] == "worked" and e["request_id"] == rid])
    # The caller had its answer while the extension was still at work on the invocation...
    assert worked[0]["at_ms"] >= answered_ms
    # ...and the invocation (its REPORT) lasted until the extension asked for its next event.
    report = srv.wait_for_log(f"REPORT RequestId: {rid}") and next(
        l for l in srv.stdout().splitlines() if f"REPORT RequestId: {rid}" in l)
    duration = float(re.search(r"Duration: ([\d.]+) ms", report).group(1))
    assert duration >= 600


def test_runtime_done_covers_the_runtime_and_the_report_the_extensions_too(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_DELAY_MS=300, PROBE_EXT_SUBSCRIBE="platform"))
    r = srv.invoke("f", {})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    wait_for(lambda: [e for e in ext_log(log) if e["kind"] == "worked" and e["request_id"] == rid])
    time.sleep(0.3)  # back in /event/next: the environment is idle again (not a new one)
    srv.invoke("f", {})  # thaws it: the first one's records go out
    recs = wait_for(lambda: [x for x in telemetry_records(log) if x["type"] == "platform.report"
                             and x["record"]["requestId"] == rid])
    report = recs[0]["record"]
    done = next(x["record"] for x in telemetry_records(log) if x["type"] == "platform.runtimeDone"
                and x["record"]["requestId"] == rid)
    overhead = report["spans"][0]
    assert overhead["name"] == "extensionOverhead" and overhead["durationMs"] >= 250
    assert done["metrics"]["durationMs"] < 250 <= report["metrics"]["durationMs"]
    assert report["metrics"]["durationMs"] >= done["metrics"]["durationMs"] + overhead["durationMs"] - 1


def test_extension_still_working_at_the_timeout(probe):
    log = probe.path / "ext.log"
    # Busy for 1.5 s on a function with a 1 s timeout: the SHUTDOWN waits for its next
    # /event/next, within the 2 s it has to leave.
    srv = serve(probe, fn("f", timeout=1, PROBE_EXT_LOG=log, PROBE_EXT_DELAY_MS=1500))
    r = srv.invoke("f", {"n": 1})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert "FunctionError" not in r and r["Json"]["echo"] == {"n": 1}  # the runtime's answer stands
    srv.wait_for_log(f"REPORT RequestId: {rid}")
    report = next(l for l in srv.stdout().splitlines() if f"REPORT RequestId: {rid}" in l)
    assert report.endswith("Status: timeout")
    # The environment is reset: the extension gets SHUTDOWN (reason timeout), the next
    # invocation is a cold start.
    shutdown = wait_for(lambda: [e for e in ext_log(log) if e["kind"] == "event"
                                 and e["event"]["eventType"] == "SHUTDOWN"])
    assert shutdown[0]["event"]["shutdownReason"] == "timeout"
    r2 = srv.invoke("f", {"n": 2}, LogType="Tail")
    assert "\tInit Duration: " in tail(r2)  # a cold start


def test_extension_memory_counts_against_the_function(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_ALLOC_MB=200))  # memory: 128 MB
    r = srv.invoke("f", {"n": 1})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert "FunctionError" not in r  # the runtime had answered
    srv.wait_for_log(f"REPORT RequestId: {rid}")
    report = next(l for l in srv.stdout().splitlines() if f"REPORT RequestId: {rid}" in l)
    assert "Max Memory Used: 128 MB" in report
    assert report.endswith("Status: error\tError Type: Runtime.OutOfMemory")


def test_extension_crash_fails_the_invocation(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", handler="handlers.slow", PROBE_EXT_LOG=log, PROBE_EXT_CRASH_ON_INVOKE=1))
    r = srv.invoke("f", {"sleep": 1.5}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": f"RequestId: {rid} Error: exit status 3", "errorType": "Extension.Crash"}
    lines = tail(r).splitlines()
    assert f"RequestId: {rid} Error: exit status 3" in lines and "Extension.Crash" in lines
    assert lines[-1].endswith("Status: error\tError Type: Extension.Crash")
    # A new environment (with a new extension process) serves the next invocation.
    r2 = srv.invoke("f", {"sleep": 0}, LogType="Tail")
    assert "\tInit Duration: " in tail(r2)  # a cold start


def test_extension_init_error(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_INIT_ERROR=1))
    r = srv.invoke("f", {}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": f"RequestId: {rid} Error: exit code 0", "errorType": "Extension.InitError"}
    posted = next(e for e in ext_log(log) if e["kind"] == "init_error")
    assert posted["status"] == 202 and json.loads(posted["body"]) == {"status": "OK"}
    lines = tail(r).splitlines()
    assert ("EXTENSION\tName: probe-ext\tState: InitError\tEvents: [INVOKE, SHUTDOWN]"
            "\tError Type: Extension.ConfigInvalid") in lines
    assert any(l.startswith("INIT_REPORT Init Duration: ") and
               l.endswith("\tPhase: init\tStatus: error\tError Type: Extension.InitError") for l in lines)


def test_extension_that_cannot_be_executed(probe):
    bad = probe.path / "probe" / "layer" / "extensions" / "aaa-not-executable"
    bad.write_text("#!/bin/sh\necho never\n")
    os.chmod(bad, 0o644)
    srv = serve(probe, fn("f"))
    r = srv.invoke("f", {}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["Json"]["errorType"] == "Extension.LaunchError"
    assert re.fullmatch(rf"RequestId: {rid} Error: fork/exec .*/extensions/aaa-not-executable: permission denied",
                        r["Json"]["errorMessage"]), r["Json"]
    lines = tail(r).splitlines()
    assert "EXTENSION\tName: aaa-not-executable\tState: LaunchError\tEvents: []\tError Type: PermissionDenied" in lines
    # Extensions after it in name order were never started.
    assert not any("probe-ext" in l for l in lines)


def test_internal_extension_and_api_errors(probe):
    srv = serve(probe, fn("internal", handler="handlers.internal", INTERNAL_EXTENSION=1) +
                fn("errors", handler="handlers.api_errors", INTERNAL_EXTENSION=1))
    r = srv.invoke("internal", {}, LogType="Tail")
    out = r["Json"]
    # Registered from the runtime process during its init: INVOKE only.
    assert out["register"]["status"] == 200 and UUID.match(out["register"]["headers"]["Lambda-Extension-Identifier"])
    assert json.loads(out["shutdown_attempt"]["body"]) == {
        "errorMessage": "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
        "errorType": "Extension.InvalidEventType"}
    assert out["shutdown_attempt"]["status"] == 403
    assert "EXTENSION\tName: in-process-ext\tState: Ready\tEvents: [INVOKE]" in tail(r).splitlines()
    r2 = srv.invoke("internal", {})
    got = [e["requestId"] for e in r2["Json"]["events"]]
    assert got == [out["request_id"], r2["Json"]["request_id"]]

    e = srv.invoke("errors", {})["Json"]

    def err(name):
        return e[name]["status"], json.loads(e[name]["body"])

    assert err("no_name") == (403, {"errorMessage": "Empty extension name",
                                    "errorType": "Extension.InvalidExtensionName"})
    assert err("bad_json")[0] == 403 and err("bad_json")[1]["errorType"] == "InvalidRequestFormat"
    assert err("bad_event") == (403, {"errorMessage": "FOO: ErrorInvalidEventType",
                                      "errorType": "Extension.InvalidEventType"})
    assert err("late") == (403, {"errorMessage": "Extension registration closed already",
                                 "errorType": "Extension.RegistrationClosed"})
    assert err("no_id") == (403, {"errorMessage": "Missing Lambda-Extension-Identifier header",
                                  "errorType": "Extension.MissingExtensionIdentifier"})
    assert err("bad_id") == (403, {"errorMessage": "Invalid Lambda-Extension-Identifier",
                                   "errorType": "Extension.InvalidExtensionIdentifier"})
    assert err("unknown_id") == (403, {"errorMessage": "Unknown extension 00000000-0000-4000-8000-000000000000",
                                       "errorType": "Extension.UnknownExtensionIdentifier"})
    assert err("init_error_no_type") == (403, {"errorMessage": "Lambda-Extension-Function-Error-Type not found",
                                               "errorType": "Extension.MissingHeader"})
    status, body = err("init_error_late")
    assert status == 403 and body["errorType"] == "Extension.InvalidExtensionState"
    assert re.match(r"State transition from (Ready|Running) to InitError failed for extension [0-9a-f-]{36}\. "
                    r"Error: State transition is not allowed$", body["errorMessage"]), body
    assert err("subscribe_late") == (403, {"errorMessage": "Telemetry API subscription is closed already",
                                           "errorType": "Telemetry.SubscriptionClosed"})


def telemetry_batches(log):
    return [e for e in ext_log(log) if e["kind"] == "telemetry"]


def telemetry_records(log):
    return [r for b in telemetry_batches(log) for r in b["batch"]]


def test_telemetry_api_delivers_platform_function_and_extension_records(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_SUBSCRIBE="platform,function,extension",
                          PROBE_EXT_BAD_SUBSCRIBE=1))
    rids = []
    for i in range(2):
        r = invoke_settled(srv, "f", {"i": i})
        rids.append(r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    srv.invoke("f", {"i": 2})  # thaws the environment: the records of the second one go out
    wait_for(lambda: any(r["type"] == "platform.report" and r["record"]["requestId"] == rids[1]
                         for r in telemetry_records(log)))

    bad = next(e for e in ext_log(log) if e["kind"] == "bad_subscribe")
    assert bad["status"] == 400 and bad["body"]["errorType"] == "ValidationError"
    for problem in ("types should not be empty", "buffering.maxItems", "host must be sandbox.localdomain",
                    "URI port is not provided"):
        assert problem in bad["body"]["errorMessage"], bad["body"]
    sub = next(e for e in ext_log(log) if e["kind"] == "subscribe")
    assert sub["status"] == 200 and json.loads(sub["body"]) == "OK"

    records = telemetry_records(log)
    assert all(b["path"] == "/telemetry" for b in telemetry_batches(log))
    types = [r["type"] for r in records]
    # Init events from before the subscription are replayed to it.
    assert types[0] == "platform.initStart"
    assert types.index("platform.telemetrySubscription") < types.index("platform.extension")
    sub_rec = next(r["record"] for r in records if r["type"] == "platform.telemetrySubscription")
    assert sub_rec == {"name": "probe-ext", "state": "Subscribed", "types": ["platform", "function", "extension"]}
    assert next(r["record"] for r in records if r["type"] == "platform.extension") == {
        "name": "probe-ext", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    for rid in rids:
        mine = [r for r in records if isinstance(r["record"], dict) and r["record"].get("requestId") == rid]
        assert [r["type"] for r in mine] == ["platform.start", "platform.runtimeDone", "platform.report"]
        assert {"record": f"handler {rid}", "type": "function"}.items() <= next(
            r for r in records if r["type"] == "function" and r["record"] == f"handler {rid}").items()
        assert any(r["type"] == "extension" and r["record"] == f"[probe-ext] INVOKE {rid}" for r in records)
        report = mine[-1]["record"]
        assert report["status"] == "success" and report["metrics"]["memorySizeMB"] == 128
        assert [s["name"] for s in report["spans"]] == ["extensionOverhead"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)
    # Text logs show the subscription as AWS writes it.
    assert "TELEMETRY\tName: probe-ext\tState: Subscribed\tTypes: [Platform, Function, Extension]" in srv.stdout()


def test_telemetry_function_records_are_objects_with_json_logs(probe):
    log = probe.path / "ext.log"
    functions = fn("f", handler="handlers.json_log", PROBE_EXT_LOG=log, PROBE_EXT_SUBSCRIBE="function")
    functions += "    logging: {format: JSON}\n"
    functions += fn("old", handler="handlers.json_log", PROBE_EXT_LOG=probe.path / "old.log",
                    PROBE_EXT_SUBSCRIBE="function", PROBE_EXT_SCHEMA="2022-07-01") + "    logging: {format: JSON}\n"
    srv = serve(probe, functions)
    for name in ("f", "old"):
        invoke_settled(srv, name, {})
        srv.invoke(name, {})
    new = wait_for(lambda: [r for r in telemetry_records(log) if r["type"] == "function"
                            and isinstance(r["record"], dict) and r["record"].get("message") == "structured"])
    assert new[0]["record"]["level"] == "INFO"
    old = wait_for(lambda: [r for r in telemetry_records(probe.path / "old.log") if r["type"] == "function"
                            and "structured" in str(r["record"])])
    assert isinstance(old[0]["record"], str)  # schema 2022-07-01: always the line as a string
    assert {r["type"] for r in telemetry_records(log)} == {"function"}


def test_a_logged_record_of_several_lines_stays_one_record(probe):
    # Managed runtimes log through Lambda's descriptor 62 (_LAMBDA_TELEMETRY_LOG_FD, which they
    # take out of the environment): a logging / console record is one event however many lines
    # it holds, where stdout is cut at each newline.
    log, node_log = probe.path / "ext.log", probe.path / "node.log"
    srv = serve(probe, fn("py", handler="handlers.multi_line", PROBE_EXT_LOG=log, PROBE_EXT_SUBSCRIBE="function") +
                fn("js", handler="node_handler.multiLine", runtime="nodejs20.x", PROBE_EXT_LOG=node_log,
                   PROBE_EXT_SUBSCRIBE="function"))
    for name, path, logged, other in (("py", log, "logged first\nlogged second", "printed"),
                                      ("js", node_log, "logged first\nlogged second", "written")):
        r = invoke_settled(srv, name, {})
        assert r["Json"]["variable"] is None and r["Json"]["fd"].startswith("pipe:"), r["Json"]
        srv.invoke(name, {})  # thaws the environment: the first invocation's records go out
        records = wait_for(lambda: (lambda got: got if len(got) >= 3 else None)(
            [x["record"] for x in telemetry_records(path) if x["type"] == "function"]))
        mine = [x for x in records if "logged" in x]
        assert len(mine) == 1 and mine[0].endswith(logged), records
        assert f"{other} first" in records and f"{other} second" in records, records
        tail_text = tail(srv.invoke(name, {}, LogType="Tail"))
        assert logged in tail_text and logged.replace("\n", "\r") not in tail_text


def test_exec_wrapper_runs_the_runtime(probe):
    srv = serve(probe, fn("wrapped", layers="[wrapper-layer/]", AWS_LAMBDA_EXEC_WRAPPER="/opt/wrapper.sh") +
                fn("missing", layers="[wrapper-layer/]", AWS_LAMBDA_EXEC_WRAPPER="/opt/nowhere.sh") +
                fn("not-executable", layers="[wrapper-layer/]", AWS_LAMBDA_EXEC_WRAPPER="/opt/not-executable.sh") +
                fn("node-wrapped", handler="node_handler.env", runtime="nodejs20.x", layers="[wrapper-layer/]",
                   AWS_LAMBDA_EXEC_WRAPPER="/opt/wrapper.sh"))
    r = srv.invoke("wrapped", {}, LogType="Tail")
    env = r["Json"]["env"]
    assert env["WRAPPED_BY"] == "wrapper.sh"
    args = env["WRAPPER_ARGS"].split()
    assert "python" in os.path.basename(args[0]) and args[-1].endswith("bootstrap.py")
    assert "wrapper.sh starting the runtime" in tail(r).splitlines()
    node_env = srv.invoke("node-wrapped", {})["Json"]["env"]
    node_args = node_env["WRAPPER_ARGS"].split()
    assert node_env["WRAPPED_BY"] == "wrapper.sh"
    assert os.path.basename(node_args[0]).startswith("node") and node_args[-1].endswith("bootstrap.js")
    assert "--max-http-header-size" in node_args  # the interpreter's own flags come along
    for name, status, says in (("missing", 127, "does not exist"), ("not-executable", 126, "is not an executable")):
        r = srv.invoke(name, {}, LogType="Tail")
        rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert r["Json"] == {"errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status {status}",
                             "errorType": "Runtime.ExitError"}
        assert any(l.endswith(f".sh: {says}") for l in tail(r).splitlines())


def test_extensions_are_frozen_between_invocations(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log))
    srv.invoke("f", {})
    from conftest import processes_mentioning
    ext_pids = [p for p in processes_mentioning(str(probe.path))
                if "probe-ext" in open(f"/proc/{p}/cmdline").read()]
    assert len(ext_pids) == 1

    def state():
        return open(f"/proc/{ext_pids[0]}/stat").read().rsplit(")", 1)[1].split()[0]

    assert wait_for(lambda: state() == "T")  # stopped while the environment is idle
    srv.invoke("f", {})
    assert wait_for(lambda: len([e for e in ext_log(log) if e["kind"] == "event"]) == 2)  # thawed for the INVOKE
    assert wait_for(lambda: state() == "T")


def test_logs_api_subscription_gets_its_own_record_shapes(probe):
    log = probe.path / "ext.log"
    srv = serve(probe, fn("f", PROBE_EXT_LOG=log, PROBE_EXT_SUBSCRIBE="platform,function", PROBE_EXT_LOGS_API=1))
    r = invoke_settled(srv, "f", {})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    srv.invoke("f", {})  # thaws: the first one's records go out
    records = wait_for(lambda: [r for r in telemetry_records(log) if r["type"] == "platform.report"])
    records = telemetry_records(log)
    sub = next(e for e in ext_log(log) if e["kind"] == "subscribe")
    assert sub["status"] == 200 and json.loads(sub["body"]) == "OK"
    types = [r["type"] for r in records]
    assert not any(t.startswith("platform.init") for t in types)  # no init events in the Logs API
    assert "platform.logsSubscription" in types and "platform.telemetrySubscription" not in types
    mine = [r for r in records if isinstance(r["record"], dict) and r["record"].get("requestId") == rid]
    assert [r["type"] for r in mine] == ["platform.start", "platform.runtimeDone", "platform.end", "platform.report"]
    assert mine[0]["record"] == {"requestId": rid}
    assert mine[1]["record"] == {"requestId": rid, "status": "success"}  # schema 2021-03-18 only
    assert set(mine[3]["record"]) == {"requestId", "metrics"}
    assert {"type": "function", "record": f"handler {rid}"}.items() <= next(
        r for r in records if r["type"] == "function" and r["record"] == f"handler {rid}").items()
    assert "LOGS\tName: probe-ext\tState: Subscribed\tTypes: [Platform, Function]" in srv.stdout()


def test_json_logs_show_extensions_as_platform_extension_records(probe):
    srv = serve(probe, fn("f") + "    logging: {format: JSON}\n")
    r = srv.invoke("f", {}, LogType="Tail")
    recs = [json.loads(l) for l in tail(r).splitlines() if l.startswith("{")]
    types = [x.get("type") for x in recs]
    assert types.index("platform.initStart") < types.index("platform.extension") < types.index("platform.start")
    ext = next(x for x in recs if x.get("type") == "platform.extension")
    assert ext["record"] == {"name": "probe-ext", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    assert not any(l.startswith("EXTENSION") for l in tail(r).splitlines())
