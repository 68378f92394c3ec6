"""Runtime API conformance, exercised from inside real execution environments by
the probe runtime (fixtures/functions/probe-runtime), which reports what the
server answered. Expected shapes: reference §1 (RIE wording) and AWS recordings."""
import base64
import json
import os
import re
import time

import pytest

STACK = """
name: probe
functions:
  probe:
    runtime: provided.al2023
    code: probe/
    timeout: 2
  probe-init-error:
    runtime: provided.al2023
    code: probe/
    environment: {PROBE_INIT: error}
  probe-init-exit:
    runtime: provided.al2023
    code: probe/
    environment: {PROBE_INIT: exit}
"""


@pytest.fixture
def srv(ws):
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(STACK)
    return ws.serve()


def call(srv, action, **kw):
    r = srv.invoke("probe", {"action": action, **kw}, LogType="Tail")
    r["Log"] = base64.b64decode(r["LogResult"]).decode()
    return r


def assert_warm_echo(srv):
    """The next invocation succeeds, in the same (warm) environment."""
    r = call(srv, "echo")
    assert "FunctionError" not in r, r["Json"]
    assert r["Json"]["action"] == "echo"
    assert "REPORT RequestId: " in r["Log"] and "Init Duration" not in r["Log"], r["Log"]


def test_next_carries_the_invocation_headers(srv):
    ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    r = srv.invoke("probe", {"action": "echo"}, ClientContext=ctx)
    h = r["Json"]["headers"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        h["lambda-runtime-aws-request-id"])
    assert h["lambda-runtime-aws-request-id"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert h["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]", h["lambda-runtime-trace-id"])
    assert json.loads(h["lambda-runtime-client-context"]) == {"custom": {"k": "v"}}
    import time
    deadline = int(h["lambda-runtime-deadline-ms"])
    assert 0 < deadline - time.time() * 1000 <= 2000 + 50
    # "Lambda passes the ClientContext object to your function for synchronous invocations only."
    r = srv.invoke("probe", {"action": "log_headers"}, ClientContext=ctx, InvocationType="Event")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    srv.wait_for_log(f'"lambda-runtime-aws-request-id": "{rid}"')
    line = next(l for l in srv.stdout().splitlines() if rid in l and "probe headers: " in l)
    assert "lambda-runtime-client-context" not in line, line


def test_invoked_arn_is_the_one_invoked(srv):
    r = srv.invoke("probe", {"action": "echo"}, Qualifier="$LATEST")
    assert r["Json"]["headers"]["lambda-runtime-invoked-function-arn"].endswith(":function:probe:$LATEST")
    r = srv.invoke("arn:aws:lambda:us-east-1:123456789012:function:probe", {"action": "echo"})
    assert r["Json"]["headers"]["lambda-runtime-invoked-function-arn"].endswith(":function:probe")


def test_wrong_id_second_response_and_late_error(srv):
    r = call(srv, "wrong_id")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["Json"]["wrong_id"] == {"status": 400, "body": {"errorMessage": "Invalid request ID",
                                                             "errorType": "InvalidRequestID"}}
    assert "probe first: 202 {\"status\":\"OK\"}" in r["Log"]
    assert ('probe second: 403 {"errorMessage":"State transition from RuntimeResponseSentState to '
            'InvocationResponse failed for runtime. Error: State transition is not allowed",'
            '"errorType":"InvalidStateTransition"}') in r["Log"]
    assert "probe error after response: 403" in r["Log"]
    assert "to InvocationErrorResponse failed" in r["Log"]
    # The caller got the first answer and only that.
    assert "second" not in r["Json"]


def test_response_over_6mb_is_413_to_the_runtime_and_an_error_to_the_caller(srv):
    r = call(srv, "too_large")
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                         "errorType": "Function.ResponseSizeTooLarge"}
    assert ('probe too large: 413 {"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
            '"errorType":"RequestEntityTooLarge"}') in r["Log"]
    # The environment keeps serving.
    assert call(srv, "echo")["StatusCode"] == 200


def test_non_json_response_passes_through_byte_for_byte(srv):
    r = srv.invoke("probe", {"action": "non_json"})
    assert r["Body"] == b"plain text, not JSON \x00\xff"
    assert r["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/plain"
    assert "FunctionError" not in r


def test_error_posts(srv):
    r = srv.invoke("probe", {"action": "error_body"})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": "it broke", "errorType": "Probe.Broken", "stackTrace": ["a", "b"]}
    r = srv.invoke("probe", {"action": "error_header_only"})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Probe.HeaderOnly"


def test_malformed_http_and_unknown_routes_get_clear_errors(srv):
    r = call(srv, "garbage_http")
    assert r["Json"] == {"survived": "garbage"}
    assert "probe garbage: 400" in r["Log"] and "Malformed HTTP request" in r["Log"]
    assert "probe unknown route: 404" in r["Log"] and "GET /2018-06-01/runtime/nonsense" in r["Log"]


def test_oversized_request_head_gets_a_431_the_runtime_can_read(srv):
    r = call(srv, "huge_header")
    assert r["Json"]["huge"]["status"] == 431
    assert r["Json"]["huge"]["body"] == {
        "errorType": "RequestHeaderFieldsTooLarge",
        "errorMessage": "Request header fields too large: the request line and headers exceed 65536 bytes"}
    assert "FunctionError" not in r  # the invocation goes on; the runtime answers it normally


def test_truncated_request_does_not_disturb_the_invocation(srv):
    r = srv.invoke("probe", {"action": "truncated"})
    assert r["Json"] == {"survived": "truncated"}


def test_chunked_body_with_trailers(srv):
    r = call(srv, "chunked_trailers")
    assert r["Json"] == {"chunked": "yes", "parts": 3}
    assert "probe chunked: 202" in r["Log"]


def test_streamed_response_plain_invoke_gets_the_whole_body(srv):
    r = srv.invoke("probe", {"action": "stream"})
    assert r["Body"] == b"part-1;part-2;part-3"


def test_streamed_response_reaches_invoke_with_response_stream_chunk_by_chunk(srv):
    c = srv.client()
    r = c.invoke_with_response_stream(FunctionName="probe", Payload=json.dumps({"action": "stream"}))
    events = list(r["EventStream"])
    chunks = [e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e]
    assert b"".join(chunks) == b"part-1;part-2;part-3"
    assert events[-1] == {"InvokeComplete": {}}
    assert r["ExecutedVersion"] == "$LATEST"


def test_mid_stream_error_trailers_are_passed_through(srv):
    c = srv.client()
    r = c.invoke_with_response_stream(FunctionName="probe", Payload=json.dumps({"action": "stream_error"}))
    events = list(r["EventStream"])
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e) == b"before-error;"
    done = events[-1]["InvokeComplete"]
    assert done["ErrorCode"] == "Probe.MidStream"
    assert json.loads(done["ErrorDetails"]) == {"errorType": "Probe.MidStream", "errorMessage": "broke mid-stream"}
    # A plain Invoke of the same function reports the failure as a function error.
    r = srv.invoke("probe", {"action": "stream_error"})
    assert r["FunctionError"] == "Unhandled" and r["Json"]["errorType"] == "Probe.MidStream"


def test_unknown_response_mode_is_refused(srv):
    r = call(srv, "bad_mode")
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.InvalidResponseModeHeader"
    assert "probe bad mode: 400" in r["Log"] and "InvalidFunctionResponseMode" in r["Log"]


def test_unknown_response_mode_ends_the_invocation_for_a_waiting_next(srv):
    # The runtime's next GET /next was already waiting (on another connection) when the
    # refused answer came: it ends the invocation, and the next event goes to it, warm.
    r = call(srv, "bad_mode_next_waiting")
    assert r["Json"]["errorType"] == "Runtime.InvalidResponseModeHeader"
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert f"REPORT RequestId: {rid}\tDuration: " in r["Log"], r["Log"]
    assert_warm_echo(srv)


def test_a_next_whose_connection_closed_while_waiting_gets_no_event(srv):
    # A second GET /next sent while the invocation runs and then given up: the event after
    # this one must reach the runtime's real GET /next, warm (it went into the dead
    # connection and timed out before).
    r = call(srv, "abandoned_next")
    assert r["Json"]["action"] == "abandoned_next"
    assert_warm_echo(srv)


def test_two_waiting_nexts_neither_spin_nor_get_the_next_event(srv):
    # Two GET /next waiting at once used to cancel each other's wait in turn: sluice spun at
    # 100% CPU for as long as they waited. Its CPU time over the probe's one-second wait says
    # whether it slept (a few ms) or spun (about a second).
    call(srv, "echo")
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds():
        fields = open(f"/proc/{srv.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    before = cpu_seconds()
    r = call(srv, "two_waiting_next")
    used = cpu_seconds() - before
    assert r["Json"]["action"] == "two_waiting_next"
    assert used < 0.5, f"sluice used {used:.2f} s of CPU while two GET /next waited for 1 s"
    assert_warm_echo(srv)


@pytest.mark.parametrize("action", ["retry_next", "late_next"])
def test_a_runtime_that_gives_up_on_next_and_asks_again_gets_the_event(ws, action):
    # Runtimes with a client-side timeout on GET /next close the connection and ask again on a
    # new one. retry_next: the second request comes at once, while the first still counts as
    # waiting. late_next: the first is closed 0.2 s in, the next event comes before the second
    # request (1.4 s in), and must wait for it. Without freezing, so that the runtime can close
    # its connection while idle (a frozen runtime's timer cannot fire).
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(STACK)
    srv = ws.serve(args=["--no-freeze"])
    first = call(srv, action)
    assert first["Json"]["action"] == action
    time.sleep(0.8 if action == "late_next" else 0.3)
    assert_warm_echo(srv)
    assert_warm_echo(srv)


def test_init_error_after_init_is_an_invalid_transition(srv):
    r = srv.invoke("probe", {"action": "init_error_late"})
    assert r["Json"]["late"]["status"] == 403
    assert r["Json"]["late"]["body"]["errorMessage"] == (
        "State transition from Running to InitError failed for runtime. Error: State transition is not allowed")


def test_init_error_is_served_to_the_first_invocation(srv):
    r = srv.invoke("probe-init-error", {}, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": "probe init failed", "errorType": "Probe.InitFailed"}
    # The probe's own line about its /init/error post reaches the console log.
    srv.wait_for_log("probe init/error: 202")
    srv.wait_for_log("INIT_REPORT Init Duration: ")
    assert re.search(r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: error\tError Type: Probe.InitFailed",
                     srv.stdout())


def test_exit_during_init(srv):
    r = srv.invoke("probe-init-exit", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.ExitError"
    assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3",
                        r["Json"]["errorMessage"])


def test_exit_in_the_middle_of_a_response(srv):
    r = srv.invoke("probe", {"action": "exit_mid_response"})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.ExitError"
    assert r["Json"]["errorMessage"].endswith("Error: Runtime exited with error: exit status 7")
    # The next invocation is a fresh environment.
    assert srv.invoke("probe", {"action": "echo"})["StatusCode"] == 200


def test_pipelined_response_and_next(srv):
    # The runtime sends POST /response and GET /next in one write; the caller
    # gets its answer at once, and the 202 reaches the runtime with the next event.
    first = srv.invoke("probe", {"action": "pipeline"})
    assert first["Json"]["pipelined"] is True
    second = srv.invoke("probe", {"action": "pipeline"})
    assert second["Json"].get("pid") == first["Json"]["pid"], second
    third = srv.invoke("probe", {"action": "echo"})
    assert third["StatusCode"] == 200
    srv.wait_for_log('probe pipelined response: 202 {"status":"OK"}')
