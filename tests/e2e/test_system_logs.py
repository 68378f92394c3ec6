"""The platform's own log lines as AWS writes them today: Text (START / END / REPORT,
INIT_START, INIT_REPORT) and, with a function's log format set to JSON, the Telemetry API
records (platform.initStart, platform.start, platform.report, ...) filtered by the system log
level, with the function's own output filtered by the application log level. Billed Duration
includes the init phase (AWS bills it since August 2025); a timeout is a REPORT with
"Status: timeout" and no "Task timed out" line. Real processes, read through the Invoke API's
LogType=Tail and sluice's console."""
import base64
import json
import math
import re

import pytest

STACK = """
name: syslogs
functions:
  text: {runtime: python3.11, code: py/, handler: handlers.echo}
  text-slow: {runtime: python3.11, code: py/, handler: handlers.sleep, timeout: 1}
  json: {runtime: python3.11, code: py/, handler: handlers.echo, memory: 256, logging: {format: JSON}}
  json-debug:
    runtime: python3.11
    code: py/
    handler: handlers.echo
    logging: {format: JSON, system_log_level: DEBUG}
  json-warn:
    runtime: python3.11
    code: py/
    handler: handlers.sleep
    timeout: 1
    logging: {format: JSON, system_log_level: WARN}
  json-app-warn:
    runtime: python3.11
    code: py/
    handler: handlers.log_lines
    logging: {format: JSON, application_log_level: WARN}
  env-json: {runtime: python3.11, code: py/, handler: handlers.introspect, logging: {format: JSON, application_log_level: ERROR}}
  env-default-json: {runtime: python3.11, code: py/, handler: handlers.introspect, logging: {format: JSON}}
  env-text: {runtime: python3.11, code: py/, handler: handlers.introspect}
  printer-json: {runtime: provided.al2023, code: probe/, logging: {format: JSON}}
  printer-text: {runtime: provided.al2023, code: probe/}
"""

RID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def srv(ws):
    ws.copy_function("python-basic", "py")
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(STACK)
    return ws.serve()


def tail(r):
    return base64.b64decode(r.get("LogResult", "")).decode()


def records(text):
    """Every line of a JSON-format log tail as an object (each must parse)."""
    return [json.loads(line) for line in text.splitlines() if line]


def system(recs):
    return [r for r in recs if "type" in r and "record" in r]


def billed_covers(billed, *parts):
    total = sum(parts)
    return total - 0.01 <= billed <= math.ceil(total) + 1


def test_json_system_logs_at_the_default_info_level(srv):
    cold = srv.invoke("json", {"n": 1}, LogType="Tail")
    rid = cold["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    recs = records(tail(cold))  # every line is JSON: no START / END / REPORT text
    sys_recs = system(recs)
    assert [r["type"] for r in sys_recs] == ["platform.initStart", "platform.start", "platform.report"]
    for r in sys_recs:
        assert TIME.match(r["time"]) and list(r) == ["time", "type", "record"]
    init = sys_recs[0]["record"]
    assert list(init) == ["initializationType", "phase", "runtimeVersion", "runtimeVersionArn", "functionName",
                          "functionVersion", "instanceId", "instanceMaxMemory"]
    assert init["initializationType"] == "on-demand" and init["phase"] == "init"
    assert init["functionName"] == "json" and init["functionVersion"] == "$LATEST"
    assert init["instanceMaxMemory"] == 256 * 1024 * 1024
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/json\[\$LATEST\][0-9a-f]{32}", init["instanceId"])
    assert init["runtimeVersionArn"].startswith("arn:aws:lambda:us-east-1::runtime:")
    start = sys_recs[1]["record"]
    assert start == {"requestId": rid, "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:json",
                     "version": "$LATEST"}
    rep = sys_recs[2]["record"]
    assert list(rep) == ["requestId", "metrics", "status"]
    assert rep["requestId"] == rid and rep["status"] == "success"
    m = rep["metrics"]
    assert list(m) == ["durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"]
    assert m["memorySizeMB"] == 256 and 1 <= m["maxMemoryUsedMB"] <= 256
    assert m["initDurationMs"] > 1 and isinstance(m["billedDurationMs"], int)
    assert billed_covers(m["billedDurationMs"], m["durationMs"], m["initDurationMs"])

    warm = srv.invoke("json", {"n": 2}, LogType="Tail")
    wrecs = system(records(tail(warm)))
    assert [r["type"] for r in wrecs] == ["platform.start", "platform.report"]
    assert "initDurationMs" not in wrecs[1]["record"]["metrics"]
    # The console carries the same records.
    srv.wait_for_log('"type":"platform.report","record":{"requestId":"' + warm["ResponseMetadata"]["HTTPHeaders"][
        "x-amzn-requestid"])


def test_json_debug_level_adds_init_and_runtime_done_records(srv):
    r = srv.invoke("json-debug", {"n": 1}, LogType="Tail")
    sys_recs = system(records(tail(r)))
    types = [x["type"] for x in sys_recs]
    assert types == ["platform.initStart", "platform.initRuntimeDone", "platform.initReport", "platform.start",
                     "platform.runtimeDone", "platform.report"]
    assert sys_recs[1]["record"] == {"initializationType": "on-demand", "phase": "init", "status": "success"}
    init_report = sys_recs[2]["record"]
    assert init_report["status"] == "success" and init_report["metrics"]["durationMs"] > 1
    done = sys_recs[4]["record"]
    assert done["status"] == "success" and done["metrics"]["producedBytes"] == len(r["Body"])
    assert done["metrics"]["durationMs"] == sys_recs[5]["record"]["metrics"]["durationMs"]


def test_json_warn_level_keeps_only_failures(srv):
    ok = srv.invoke("json-warn", {"seconds": 0}, LogType="Tail")
    assert ok.get("FunctionError") is None
    assert system(records(tail(ok))) == []
    late = srv.invoke("json-warn", {"seconds": 3}, LogType="Tail")
    assert late["FunctionError"] == "Unhandled" and late["Json"]["errorType"] == "Sandbox.Timedout"
    recs = system(records(tail(late)))
    assert [x["type"] for x in recs] == ["platform.report"]
    assert recs[0]["record"]["status"] == "timeout" and recs[0]["record"]["metrics"]["durationMs"] >= 1000


def test_text_timeout_is_a_report_status_not_a_task_timed_out_line(srv):
    r = srv.invoke("text-slow", {"seconds": 3}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["Json"] == {"errorType": "Sandbox.Timedout",
                         "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds"}
    log = tail(r)
    assert "Task timed out" not in log
    report = [line for line in log.splitlines() if line.startswith("REPORT ")][0]
    assert report.endswith("\tStatus: timeout"), report  # the status ends the line, no trailing tab


def test_text_billed_duration_includes_the_init_phase(srv):
    cold = tail(srv.invoke("text", {"n": 1}, LogType="Tail"))
    m = re.search(r"\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\t.*\tInit Duration: ([\d.]+) ms\t$", cold, re.M)
    assert m, cold
    duration, billed, init = float(m.group(1)), int(m.group(2)), float(m.group(3))
    assert billed_covers(billed, duration, init) and billed > duration + 1
    warm = tail(srv.invoke("text", {"n": 2}, LogType="Tail"))
    m = re.search(r"\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: \d+ MB\tMax Memory Used: \d+ MB\t$",
                  warm, re.M)
    assert m, warm
    d = float(m.group(1))  # printed to 0.01 ms; a warm start bills the duration alone
    assert max(1, math.ceil(d - 0.005)) <= int(m.group(2)) <= math.ceil(d + 0.005)


def test_application_log_level_filters_the_functions_output(srv):
    # Python's logging at WARN: the INFO record and the plain print (INFO for Lambda) are dropped.
    r = srv.invoke("json-app-warn", {}, LogType="Tail")
    app = [x for x in records_or_text(tail(r)) if not (isinstance(x, dict) and "record" in x)]
    assert [x["message"] for x in app] == ["warning via logging"]
    assert app[0]["level"] == "WARNING"


def records_or_text(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(line)
    return out


def test_lambda_filters_any_runtimes_json_lines_by_their_level(srv):
    lines = ['{"level": "debug", "msg": "hidden"}', '{"level": "INFO", "msg": "shown"}', "plain text line",
             '{"level": "error", "msg": "bad"}', '{"msg": "no level"}', "{not json"]
    r = srv.invoke("printer-json", {"action": "print", "lines": lines}, LogType="Tail")
    out = [x for x in records_or_text(tail(r)) if not (isinstance(x, dict) and "record" in x)]
    assert out == [{"level": "INFO", "msg": "shown"}, "plain text line", {"level": "error", "msg": "bad"},
                   {"msg": "no level"}, "{not json"]
    # Text format: nothing is filtered.
    t = srv.invoke("printer-text", {"action": "print", "lines": lines}, LogType="Tail")
    assert all(line in tail(t) for line in lines)


def test_the_runtimes_see_the_format_and_the_application_level(srv):
    env = srv.invoke("env-json", {})["Json"]["env"]
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and env["AWS_LAMBDA_LOG_LEVEL"] == "ERROR"
    env = srv.invoke("env-default-json", {})["Json"]["env"]
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and env["AWS_LAMBDA_LOG_LEVEL"] == "INFO"  # AWS's default level
    env = srv.invoke("env-text", {})["Json"]["env"]
    assert "AWS_LAMBDA_LOG_FORMAT" not in env and "AWS_LAMBDA_LOG_LEVEL" not in env  # as recorded on AWS


def test_log_format_on_the_command_line_overrides_the_stack(ws):
    ws.copy_function("python-basic", "py")
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(STACK)
    # The stack says JSON; --log-format Text wins for every function.
    p = ws.run("invoke", "json", "--event", "-", "--log-format", "Text", input=b'{"n": 1}')
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode()
    assert re.search(r"^START RequestId: \S+ Version: \$LATEST$", err, re.M) and "platform." not in err
    # And the other way round: a Text function gets JSON system records.
    p = ws.run("invoke", "text", "--event", "-", "--log-format", "JSON", input=b'{"n": 1}')
    assert p.returncode == 0, p.stderr
    types = [json.loads(line)["type"] for line in p.stderr.decode().splitlines() if line.startswith('{"time"')]
    assert types == ["platform.initStart", "platform.start", "platform.report"]
