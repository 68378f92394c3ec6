"""The Lambda Invoke API with real clients: boto3, the aws CLI (v1) and the AWS
SDK for JavaScript v3; the name and ARN forms, versions and aliases, AWS's
error responses, payload limits and malformed HTTP."""
import json
import os
import re
import time
import socket
import subprocess
from collections import Counter
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from conftest import NODE_MODULES

STACK = """
name: api
functions:
  probe:
    runtime: provided.al2023
    code: probe/
    timeout: 3
    aliases:
      live: {version: 1}
      canary: {version: 1, weights: {"2": 0.3}}
      dev: $LATEST
      future: {version: 9}
"""


@pytest.fixture
def api(ws):
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(STACK)
    return ws


def raw_http(url, data, read_all=True):
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(data)
    if not read_all:
        return s
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf


def test_name_forms_all_reach_the_function(api):
    s = api.serve()
    arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    for name, qual, invoked in [("probe", None, arn), ("probe:$LATEST", None, arn + ":$LATEST"),
                                (arn, None, arn), ("123456789012:function:probe", None, arn),
                                ("probe", "$LATEST", arn + ":$LATEST"), (arn + ":$LATEST", "$LATEST", arn + ":$LATEST")]:
        kw = {"Qualifier": qual} if qual else {}
        r = s.invoke(name, {"action": "echo"}, **kw)
        assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST", name
        assert r["Json"]["headers"]["lambda-runtime-invoked-function-arn"] == invoked, name


def test_qualifier_mismatch_and_bad_names(api):
    s = api.serve()
    with pytest.raises(ClientError) as e:
        s.invoke("probe:live", {}, Qualifier="dev")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert e.value.response["message"] == "The derived qualifier from the function name does not match the specified qualifier."
    with pytest.raises(ClientError) as e:
        s.invoke("probe:nope", {})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Message"] == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:probe:nope"
    with pytest.raises(ClientError) as e:
        s.invoke("missing", {})
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Unqualified, the message names $LATEST (AWS-recorded test_invoke_exceptions, 2025).
    assert e.value.response["Message"] == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing:$LATEST"
    assert e.value.response["Type"] == "User"
    # A qualifier the parameter's pattern (|[a-zA-Z0-9$_-]+) allows but that names nothing: 404.
    with pytest.raises(ClientError) as e:
        s.invoke("probe", {}, Qualifier="$latest")
    assert e.value.response["Message"] == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:probe:$latest"
    # An ARN of another region is unreachable from this one; another account's names nothing here.
    with pytest.raises(ClientError) as e:
        s.invoke("arn:aws:lambda:eu-west-1:123456789012:function:probe", {})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["Message"] == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    with pytest.raises(ClientError) as e:
        s.invoke("arn:aws:lambda:us-east-1:999999999999:function:probe", {})
    assert e.value.response["Message"] == "Function not found: arn:aws:lambda:us-east-1:999999999999:function:probe:$LATEST"
    # LogType is Tail or None: a value outside Lambda's model is a ValidationException, without
    # the Type the other errors carry (AWS-recorded ListFunctions / invokeMode refusals).
    with pytest.raises(ClientError) as e:
        s.invoke("probe", {}, LogType="Bogus")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "'Bogus' at 'logType'" in e.value.response["Error"]["Message"]
    assert "Type" not in e.value.response


def test_invocation_types(api):
    s = api.serve()
    r = s.invoke("probe", {"action": "echo"}, InvocationType="DryRun")
    assert r["StatusCode"] == 204 and r["Body"] == b""
    r = s.invoke("probe", {"action": "echo"}, InvocationType="Event")
    assert r["StatusCode"] == 202 and r["Body"] == b""
    assert re.fullmatch(r"[0-9a-f-]{36}", r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    with pytest.raises(ClientError) as e:
        s.client().invoke(FunctionName="missing", InvocationType="DryRun")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # The legacy InvokeAsync (boto3's invoke_async): 202, and the event runs.
    r = s.client().invoke_async(FunctionName="probe", InvokeArgs=json.dumps({"action": "echo", "via": "invoke-async"}))
    assert r["Status"] == 202
    s.wait_for_log("START RequestId: " + r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    with pytest.raises(ClientError) as e:
        s.client().invoke_async(FunctionName="missing", InvokeArgs="{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_payload_rules(api):
    s = api.serve()
    # Empty payload is allowed: the function receives {}.
    r = s.invoke("probe")
    assert r["Json"]["event"] == {}
    with pytest.raises(ClientError) as e:
        s.invoke("probe", b'\x99\xeb,j\x07\xa1zYh')
    resp = e.value.response
    assert resp["Error"]["Code"] == "InvalidRequestContentException"
    assert resp["message"].startswith("Could not parse request body into json: Could not parse payload into json: "
                                      "Unexpected character ((CTRL-CHAR, code 153)): expected a valid value (JSON "
                                      "String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: "
                                      "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 1]")
    with pytest.raises(ClientError) as e:
        s.invoke("probe", b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert e.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    with pytest.raises(ClientError) as e:
        s.invoke("probe", b'"' + b"x" * (1024 * 1024 + 10) + b'"', InvocationType="Event")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    # In AWS's words for an event (ASFHyP3/hyp3#2241, with the limit of the day).
    assert e.value.response["Error"]["Message"] == \
        "1048588 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    # Just under the limit goes through.
    r = s.invoke("probe", json.dumps({"action": "echo", "pad": "y" * (5 * 1024 * 1024)}))
    assert len(r["Json"]["event"]["pad"]) == 5 * 1024 * 1024


def test_tail_log_is_the_last_4kb(api):
    s = api.serve()
    import base64
    r = s.invoke("probe", {"action": "flood", "lines": 100}, LogType="Tail")
    log = base64.b64decode(r["LogResult"])
    assert len(log) == 4096
    assert log.decode().rstrip("\n").splitlines()[-1].startswith("REPORT RequestId: ")


def test_malformed_and_truncated_http_get_clear_errors(api):
    s = api.serve()
    out = raw_http(s.lambda_url, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"Malformed HTTP request" in out
    sock = raw_http(s.lambda_url, b"POST /2015-03-31/functions/probe/invocations HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 100\r\n\r\n{\"action\":", read_all=False)
    sock.shutdown(socket.SHUT_WR)
    buf = sock.recv(65536)
    assert buf.startswith(b"HTTP/1.1 400 ") and b"Truncated request" in buf
    out = raw_http(s.lambda_url, b"GET /2015-03-31/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404 ") and b"UnknownOperationException" in out
    out = raw_http(s.lambda_url, b"POST /2015-03-31/functions/probe/invocations HTTP/1.1\r\nHost: x\r\n"
                                 b"X-Amz-Invocation-Type: Sometimes\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert out.startswith(b"HTTP/1.1 400 ") and b"invocationType" in out
    # Keep-alive and pipelining: two requests in one write, answered in order.
    req = (b"POST /2015-03-31/functions/probe/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s")
    a = json.dumps({"action": "echo", "n": 1}).encode()
    b = json.dumps({"action": "echo", "n": 2}).encode()
    sock = raw_http(s.lambda_url, req % (len(a), a) + req % (len(b), b), read_all=False)
    buf = b""
    while buf.count(b"HTTP/1.1 200") < 2 or not buf.rstrip().endswith(b"}"):
        buf += sock.recv(65536)
    sock.close()
    assert buf.index(b'"n": 1') < buf.index(b'"n": 2')


def test_versions_and_aliases(api):
    # Version 1 from the original code, version 2 from an edited copy.
    out = api.run("publish", "probe")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Version"] == "1" and json.loads(out.stdout)["Created"] is True
    again = api.run("publish", "probe")
    assert json.loads(again.stdout) == {**json.loads(out.stdout), "Created": False}
    s = api.serve()
    boot = api.path / "probe" / "bootstrap"
    boot.write_text(boot.read_text().replace('"api": API}', '"api": API, "edited": True}'))
    published = s.client().publish_version(FunctionName="probe", Description="edited")
    assert published["Version"] == "2"
    assert published["FunctionArn"].endswith(":function:probe:2")

    r = s.invoke("probe", {"action": "sleep", "seconds": 0}, Qualifier="1")
    assert r["ExecutedVersion"] == "1" and "edited" not in r["Json"]
    r = s.invoke("probe:2", {"action": "sleep", "seconds": 0})
    assert r["ExecutedVersion"] == "2" and r["Json"]["edited"] is True
    r = s.invoke("probe", {"action": "sleep", "seconds": 0})
    assert r["ExecutedVersion"] == "$LATEST" and r["Json"]["edited"] is True

    r = s.invoke("probe:live", {"action": "env"})
    assert r["ExecutedVersion"] == "1"
    assert r["Json"]["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[1\][0-9a-f]{32}", r["Json"]["env"]["AWS_LAMBDA_LOG_STREAM_NAME"])
    r = s.invoke("probe", {"action": "echo"}, Qualifier="live")
    assert r["Json"]["headers"]["lambda-runtime-invoked-function-arn"].endswith(":function:probe:live")
    assert s.invoke("probe:dev", {"action": "echo"})["ExecutedVersion"] == "$LATEST"

    # Weighted alias: about 30% of calls run version 2.
    counts = Counter(s.invoke("probe:canary", {"action": "echo"})["ExecutedVersion"] for _ in range(300))
    assert set(counts) == {"1", "2"}
    assert 0.2 <= counts["2"] / 300 <= 0.4, counts
    s.wait_for_log("Version: 2")

    # An alias naming a version that was never published here.
    with pytest.raises(ClientError) as e:
        s.invoke("probe:future", {})
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "has not been published" in s.stderr()
    with pytest.raises(ClientError) as e:
        s.invoke("probe:7", {})
    assert e.value.response["Message"].endswith(":function:probe:7")


def test_aws_cli(api, tmp_path):
    s = api.serve()
    out = tmp_path / "out.json"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run(["aws", "--endpoint-url", s.lambda_url, "lambda", "invoke", "--function-name", "probe",
                        "--payload", '{"action": "echo", "from": "cli"}', str(out)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    meta = json.loads(p.stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert json.loads(out.read_text())["event"] == {"action": "echo", "from": "cli"}
    p = subprocess.run(["aws", "--endpoint-url", s.lambda_url, "lambda", "invoke", "--function-name", "probe",
                        "--payload", '{"action": "error_body"}', str(out)], capture_output=True, text=True, env=env)
    assert json.loads(p.stdout)["FunctionError"] == "Unhandled"
    assert json.loads(out.read_text())["errorType"] == "Probe.Broken"
    p = subprocess.run(["aws", "--endpoint-url", s.lambda_url, "lambda", "invoke", "--function-name", "nope", str(out)],
                       capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "ResourceNotFoundException" in p.stderr


def test_javascript_sdk(api):
    s = api.serve()
    script = NODE_MODULES.parent / "invoke_sdk.js"
    assert (NODE_MODULES / "@aws-sdk" / "client-lambda").is_dir(), "run scripts/setup.sh (npm ci in tests/node)"

    def run(*args):
        p = subprocess.run(["node", str(script), s.lambda_url, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    r = run("probe", '{"action": "echo", "sdk": "js"}')
    assert r["statusCode"] == 200 and r["executedVersion"] == "$LATEST" and r["functionError"] is None
    assert json.loads(r["payload"])["event"]["sdk"] == "js"
    assert r["log"].startswith("START RequestId: ")  # a cold start's tail: START first, as AWS's
    assert "\tInit Duration: " in r["log"] and "\nREPORT RequestId: " in r["log"]
    r = run("probe", '{"action": "error_body"}')
    assert r["functionError"] == "Unhandled" and json.loads(r["payload"])["errorType"] == "Probe.Broken"
    r = run("nope", "{}")
    assert r["error"] == "ResourceNotFoundException" and r["status"] == 404


def test_control_plane_reads_answer_in_aws_shapes(api):
    """GetFunction & co. on the Invoke API's port: what boto3 callers look at before invoking,
    in the shapes recorded from AWS (tests/vectors/aws-recorded/test_lambda.snapshot.json)."""
    from conftest import ROOT
    recorded = json.loads((ROOT / "tests" / "vectors" / "aws-recorded" / "test_lambda.snapshot.json").read_text())
    got_fn = next(v for k, v in recorded.items() if k.endswith("test_lambda_concurrency_update"))[
        "recorded-content"]["get_function_concurrency_info"]
    alias_rec = next(v for k, v in recorded.items() if k.endswith("test_alias_routingconfig"))[
        "recorded-content"]["create_alias_response"]
    (api.path / "sluice.yaml").write_text(STACK.replace("    timeout: 3\n", "    timeout: 3\n    concurrency: 3\n"
                                                        "    environment: {MODE: test}\n"))
    s = api.serve()
    lam = s.client()
    published = lam.publish_version(FunctionName="probe")
    fn = lam.get_function(FunctionName="probe")
    # The same keys as AWS's answer, the configuration's too (a provided runtime has no
    # RuntimeVersionConfig here: its version is the bootstrap's own business).
    assert set(fn) == set(got_fn)
    c = fn["Configuration"]
    assert set(c) == set(got_fn["Configuration"]) - {"RuntimeVersionConfig"}
    assert c["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe"
    assert (c["Version"], c["Runtime"], c["Timeout"], c["MemorySize"]) == ("$LATEST", "provided.al2023", 3, 128)
    assert c["Environment"] == {"Variables": {"MODE": "test"}}
    assert c["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/probe"}
    assert fn["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    assert fn["Code"]["RepositoryType"] == "S3"
    # The same CodeSha256 as the version published from the same code.
    v1 = lam.get_function_configuration(FunctionName="probe", Qualifier="1")
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(":probe:1") and v1["CodeSha256"] == c["CodeSha256"]
    # PublishVersion answers with the version's configuration, the same one.
    assert {k: v for k, v in published.items() if k != "ResponseMetadata"} == {
        k: v for k, v in v1.items() if k != "ResponseMetadata"}
    assert lam.get_function_configuration(FunctionName="probe:live")["Version"] == "1"
    versions = lam.list_versions_by_function(FunctionName="probe")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    aliases = {a["Name"]: a for a in lam.list_aliases(FunctionName="probe")["Aliases"]}
    assert set(aliases) == {"live", "canary", "dev", "future"}
    canary = lam.get_alias(FunctionName="probe", Name="canary")
    assert set(canary) - {"ResponseMetadata"} == set(alias_rec) - {"ResponseMetadata"}
    assert canary["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    assert canary["AliasArn"] == "arn:aws:lambda:us-east-1:123456789012:function:probe:canary"
    assert lam.get_function_concurrency(FunctionName="probe")["ReservedConcurrentExecutions"] == 3
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["probe"]
    # boto3's waiter reads State / LastUpdateStatus.
    lam.get_waiter("function_active_v2").wait(FunctionName="probe")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName="nosuch")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName="probe", Name="nosuch")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.get_function_event_invoke_config(FunctionName="probe")  # never set: AWS's 404
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_control_plane_lists_filter_and_page(api):
    (api.path / "sluice.yaml").write_text(STACK + """  other:
    runtime: provided.al2023
    code: probe/
""")
    s = api.serve()
    lam = s.client()
    lam.publish_version(FunctionName="probe")
    (api.path / "probe" / "changed.txt").write_text("new code, a new version")
    lam.publish_version(FunctionName="probe")
    # FunctionVersion=ALL: each function's $LATEST, then its published versions.
    listed = [(f["FunctionName"], f["Version"]) for f in lam.list_functions(FunctionVersion="ALL")["Functions"]]
    assert listed == [("other", "$LATEST"), ("probe", "$LATEST"), ("probe", "1"), ("probe", "2")]
    assert [f["Version"] for f in lam.list_functions()["Functions"]] == ["$LATEST", "$LATEST"]
    # MaxItems pages with NextMarker; the paginator follows it.
    first = lam.list_functions(FunctionVersion="ALL", MaxItems=3)
    assert len(first["Functions"]) == 3 and first["NextMarker"]
    rest = lam.list_functions(FunctionVersion="ALL", MaxItems=3, Marker=first["NextMarker"])
    assert [f["Version"] for f in rest["Functions"]] == ["2"] and "NextMarker" not in rest
    pages = lam.get_paginator("list_versions_by_function").paginate(FunctionName="probe",
                                                                    PaginationConfig={"PageSize": 1})
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2"]
    # ListAliases: FunctionVersion keeps the aliases that invoke that version.
    assert sorted(a["Name"] for a in lam.list_aliases(FunctionName="probe", FunctionVersion="1")["Aliases"]) == \
        ["canary", "live"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName="probe", FunctionVersion="$LATEST")["Aliases"]] == ["dev"]
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as e:  # botocore refuses it before sending
        urllib.request.urlopen(s.lambda_url + "/2015-03-31/functions/?MaxItems=0", timeout=10)
    assert e.value.code == 400 and e.value.headers["x-amzn-ErrorType"] == "ValidationException"
    # $LATEST: one RevisionId however it is named, and a LastModified that is not the time of asking,
    # in Lambda's format.
    a = lam.get_function_configuration(FunctionName="probe")
    time.sleep(1.1)
    b = lam.get_function_configuration(FunctionName="probe", Qualifier="$LATEST")
    assert a["RevisionId"] == b["RevisionId"]
    assert a["LastModified"] == b["LastModified"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", a["LastModified"]), a["LastModified"]
    assert lam.get_function_configuration(FunctionName="probe", Qualifier="1")["LastModified"].endswith("+0000")
