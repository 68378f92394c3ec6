"""Function URLs (`url:` on a function): the function's own HTTP endpoint with payload 2.0
events, BUFFERED and RESPONSE_STREAM answers, AuthType NONE and AWS_IAM (SigV4 checked with
botocore as the signing client), CORS and aliases. Answers are compared with responses recorded
from real AWS (shared/vectors/aws-recorded/test_lambda.snapshot.json, TestLambdaURL)."""
import base64
import http.client
import json
import socket
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import ROOT

RECORDED = ROOT.parent / "shared" / "vectors" / "aws-recorded" / "test_lambda.snapshot.json"
RECORDED_PREFIX = "tests/aws/services/lambda_/test_lambda.py::TestLambdaURL::test_lambda_url_invocation["

# The return values of AWS's recorded test, one Python handler each.
RETURN_VALUES = {
    "dict": '{"hello": "world"}',
    "http-response": '{"statusCode": 200, "body": "body123"}',
    "http-response-json": '{"statusCode": 200, "body": "{\\"hello\\": \\"world\\"}"}',
    "list-mixed": '["hello", 3, True]',
    "string": '"hello"',
    "integer": "3",
    "float": "3.1",
    "boolean": "True",
}

ECHO = r'''
import json

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    if q.get("fail"):
        raise ValueError("from the handler")
    if q.get("status"):
        return {"statusCode": q["status"], "body": "i'm a teapot",
                "headers": {"My-Custom-Header": "Custom Value", "Access-Control-Allow-Origin": "https://evil.example"},
                "cookies": ["a=1; Path=/", "b=2"]}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": event, "request_id": context.aws_request_id,
                                "version": context.function_version})}
'''

STREAM = r'''
exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  stream = awslambda.HttpResponseStream.from(stream, {
    statusCode: 201, headers: { 'content-type': 'text/plain', 'x-custom': 'yes' }, cookies: ['s=1', 't=2; Path=/'] });
  for (const part of ['one;', 'two;', 'three']) {
    stream.write(part);
    await new Promise((r) => setTimeout(r, 300));
  }
  stream.end();
});
'''

PLAIN_NODE = "exports.handler = async (event) => ({ statusCode: 200, body: 'buffered' });\n"


@pytest.fixture
def project(ws):
    v = f"python3.{sys.version_info[1]}"
    functions = []
    for i, (case, value) in enumerate(RETURN_VALUES.items()):
        d = ws.path / f"ret{i}"
        d.mkdir()
        (d / "handler.py").write_text(f"def handler(event, ctx):\n    return {value}\n")
        functions.append(f"  ret{i}:\n    runtime: {v}\n    handler: handler.handler\n    code: ret{i}/\n    url: true\n")
    (ws.path / "echo").mkdir()
    (ws.path / "echo" / "app.py").write_text(ECHO)
    (ws.path / "node").mkdir()
    (ws.path / "node" / "stream.js").write_text(STREAM)
    (ws.path / "node" / "plain.js").write_text(PLAIN_NODE)
    ws.write_stack("name: urls\nfunctions:\n" + "".join(functions) + f"""  echo:
    runtime: {v}
    handler: app.handler
    code: echo/
    url:
      cors: {{allow_origins: ["https://example.com"], allow_methods: [GET, POST], max_age: 300}}
  echo-open:
    runtime: {v}
    handler: app.handler
    code: echo/
    url:
      cors: {{allow_origins: ["*"], allow_credentials: true, allow_methods: ["*"]}}
  echo-live:
    runtime: {v}
    handler: app.handler
    code: echo/
    aliases: {{live: "$LATEST"}}
    url: {{qualifier: live}}
  private:
    runtime: {v}
    handler: app.handler
    code: echo/
    url: {{auth: AWS_IAM}}
  stream:
    runtime: nodejs20.x
    handler: stream.handler
    code: node/
    url: {{invoke_mode: RESPONSE_STREAM}}
  plain-stream:
    runtime: nodejs20.x
    handler: plain.handler
    code: node/
    url: {{invoke_mode: RESPONSE_STREAM}}
""")
    return ws


@pytest.fixture
def srv(project):
    return project.serve(env={"AWS_ACCESS_KEY_ID": "AKIDSLUICETEST", "AWS_SECRET_ACCESS_KEY": "local-secret",
                              "AWS_SESSION_TOKEN": "", "AWS_PROFILE": ""})


def request(url, method="GET", path="/", body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.headers, data


def test_answers_match_aws_recorded_ones(srv):
    if not RECORDED.exists():
        pytest.skip(f"{RECORDED} is not there")
    recorded = json.loads(RECORDED.read_text())
    for i, case in enumerate(RETURN_VALUES):
        want = recorded[RECORDED_PREFIX + case + "]"]["recorded-content"]["lambda_url_invocation"]
        # The recorded test posts this body to this path.
        status, headers, body = request(srv.endpoints["urls"][f"ret{i}"], "POST", "/custom_path/extend?test_param=test_value",
                                        body=b"{'key':'value'}")
        # The recording kept JSON bodies parsed (their exact bytes show in Content-Length).
        content = body.decode() if isinstance(want["content"], str) else json.loads(body)
        assert (status, headers["Content-Type"], headers["Content-Length"], content) == (
            want["statuscode"], want["headers"]["Content-Type"], want["headers"]["Content-Length"], want["content"]), case


def test_event_is_payload_2_0_as_function_urls_send_it(srv):
    url = srv.endpoints["urls"]["echo"]
    status, headers, body = request(url, "POST", "/a/b%20c?x=1&x=2&y=&p=a+b&e=a%2Bb",
                                    body=b"\x00\x01binary", headers={"Content-Type": "application/octet-stream",
                                                                     "Cookie": "c1=v1; c2=v2", "X-Mixed-Case": "Value",
                                                                     "User-Agent": "tests/1.0"})
    assert status == 200
    out = json.loads(body)
    ev = out["event"]
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    # Live AWS captures (hotsock/voker testdata): rawPath stays as sent, only http.path is
    # decoded; '+' in the query is a space, "%2B" a plus; Cookie is in headers and in cookies.
    assert ev["rawPath"] == "/a/b%20c" and ev["rawQueryString"] == "x=1&x=2&y=&p=a+b&e=a%2Bb"
    assert ev["queryStringParameters"] == {"x": "1,2", "y": "", "p": "a b", "e": "a+b"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert ev["headers"]["x-mixed-case"] == "Value" and ev["headers"]["cookie"] == "c1=v1; c2=v2"
    assert ev["headers"]["x-forwarded-proto"] == "http" and ev["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\x00\x01binary"
    assert "pathParameters" not in ev and "stageVariables" not in ev
    rc = ev["requestContext"]
    # AuthType NONE: the caller is anonymous; no authorizer.
    assert rc["accountId"] == "anonymous" and "authorizer" not in rc
    assert len(rc["apiId"]) == 32 and rc["apiId"].isalnum() and rc["apiId"].lower() == rc["apiId"]
    assert rc["domainPrefix"] == rc["apiId"]  # the URL id, the first label of AWS's URL
    assert rc["routeKey"] == "$default" and rc["stage"] == "$default"
    assert rc["http"] == {"method": "POST", "path": "/a/b c", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                          "userAgent": "tests/1.0"}
    # One id: the event's, the invocation's and the x-amzn-RequestId header (AWS-recorded).
    assert rc["requestId"] == out["request_id"] == headers["x-amzn-RequestId"]
    assert headers["X-Amzn-Trace-Id"] == ev["headers"]["x-amzn-trace-id"]
    assert out["version"] == "$LATEST"
    srv.wait_for_log("[url echo] POST /a/b%20c?x=1&x=2&y=&p=a+b&e=a%2Bb -> 200")


def test_errors_status_codes_headers_and_cookies(srv):
    url = srv.endpoints["urls"]["echo"]
    status, headers, body = request(url, path="/?fail=1")
    # AWS-recorded: a function error is 502 with this text.
    assert (status, body) == (502, b"Internal Server Error")
    srv.wait_for_log("[function error")
    # statusCode as a string (AWS-validated), headers, cookies as Set-Cookie.
    status, headers, body = request(url, path="/?status=418")
    assert (status, body) == (418, b"i'm a teapot")
    assert headers["my-custom-header"] == "Custom Value"
    assert headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]


def test_cors_is_answered_by_the_url(srv):
    url = srv.endpoints["urls"]["echo"]
    status, headers, body = request(url, "OPTIONS", "/anything", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "POST"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert headers["Access-Control-Max-Age"] == "300"
    # The function's own CORS headers give way to the configuration's.
    status, headers, body = request(url, path="/?status=200", headers={"Origin": "https://example.com"})
    assert headers.get_all("Access-Control-Allow-Origin") == ["https://example.com"]
    status, headers, body = request(url, path="/?status=200", headers={"Origin": "https://other.example"})
    assert headers.get("Access-Control-Allow-Origin") is None
    # "*" with credentials: Lambda accepts it for a URL and answers each caller with its own
    # Origin and Allow-Credentials (as recorded from AWS in LeanerCloud/CUDly#390).
    url = srv.endpoints["urls"]["echo-open"]
    for origin in ("https://a.example", "http://localhost:3000"):
        status, headers, body = request(url, path="/", headers={"Origin": origin})
        assert status == 200
        assert (headers.get_all("Access-Control-Allow-Origin"), headers["Access-Control-Allow-Credentials"]) == (
            [origin], "true")
    status, headers, body = request(url, "OPTIONS", "/x", headers={
        "Origin": "https://b.example", "Access-Control-Request-Method": "DELETE"})
    assert (status, headers["Access-Control-Allow-Origin"], headers["Access-Control-Allow-Credentials"]) == (
        204, "https://b.example", "true")


def test_qualifier_routes_to_the_alias(srv):
    status, headers, body = request(srv.endpoints["urls"]["echo-live"], path="/")
    assert status == 200
    srv.wait_for_log("[url echo-live] GET / -> 200")
    srv.wait_for_log("(echo-live:$LATEST")


def test_response_stream_goes_out_as_it_comes(srv):
    u = urllib.parse.urlsplit(srv.endpoints["urls"]["stream"])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 201 and r.headers["content-type"] == "text/plain" and r.headers["x-custom"] == "yes"
    # Each cookie is a Set-Cookie of its own, as in a buffered answer.
    assert r.headers.get_all("set-cookie") == ["s=1", "t=2; Path=/"] and r.headers["Transfer-Encoding"] == "chunked"
    first = r.read1(100)
    t_first = time.time()
    rest = r.read()
    # The first part arrived long before the last: streamed, not buffered.
    assert first == b"one;" and rest == b"two;three" and time.time() - t_first > 0.4
    # HEAD: the streamed answer's head without its body; the connection goes on.
    conn.request("HEAD", "/")
    r = conn.getresponse()
    assert (r.status, r.read(), r.headers.get_all("set-cookie")) == (201, b"", ["s=1", "t=2; Path=/"])
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (201, b"one;two;three")
    conn.close()
    # A function that does not stream, behind a RESPONSE_STREAM URL: its payload as it is
    # (AWS-validated: the client gets the whole {"statusCode", "body"} object).
    status, headers, body = request(srv.endpoints["urls"]["plain-stream"])
    assert status == 200 and json.loads(body) == {"statusCode": 200, "body": "buffered"}
    srv.wait_for_log("[url stream] GET / -> 201 streamed")
    # The invocation lasts until the stream ends (three 300 ms waits), as its REPORT says.
    srv.wait_for_log("[stream ")
    deadline = time.time() + 10
    while time.time() < deadline and "REPORT" not in "".join(l for l in srv.stdout().splitlines() if l.startswith("[stream ")):
        time.sleep(0.05)
    report = [l for l in srv.stdout().splitlines() if l.startswith("[stream ") and "REPORT" in l][0]
    assert float(report.split("Duration: ")[1].split(" ms")[0]) >= 850, report


def signed(url, path, secret="local-secret", key="AKIDSLUICETEST", region="us-east-1", body=b'{"a": 1}', token=None):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=url + path, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(key, secret, token), "lambda", region).add_auth(req)
    return request(url, "POST", path, body=body, headers=dict(req.headers.items()))


FORBIDDEN = {"Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
                        "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}


def test_aws_iam_urls_check_the_sigv4_signature(srv):
    url = srv.endpoints["urls"]["private"]
    status, headers, body = request(url, path="/")
    # AWS-recorded answer of a refused function URL call.
    assert (status, json.loads(body), headers["x-amzn-ErrorType"]) == (403, FORBIDDEN, "AccessDeniedException")
    srv.wait_for_log("the request is not signed")
    status, headers, body = signed(url, "/x?y=1")
    assert status == 200, body
    ev = json.loads(body)["event"]
    rc = ev["requestContext"]
    assert rc["accountId"] == "123456789012"
    iam = rc["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIDSLUICETEST" and iam["accountId"] == "123456789012"
    assert iam["userArn"] == "arn:aws:iam::123456789012:user/AKIDSLUICETEST" and iam["callerId"] == iam["userId"]
    assert iam["cognitoIdentity"] is None and iam["principalOrgId"] is None
    assert ev["body"] == '{"a": 1}'
    for kw, why in ((dict(secret="wrong"), "the signature does not match"),
                    (dict(key="AKIDOTHER"), "signed with access key AKIDOTHER"),
                    (dict(region="eu-west-1"), "signed for lambda in eu-west-1"),
                    (dict(token="forged-token"), "the local credentials have no session token")):
        status, headers, body = signed(url, "/x?y=1", **kw)
        assert (status, json.loads(body)) == (403, FORBIDDEN)
        srv.wait_for_log(why)


def test_aws_iam_urls_check_the_session_token(project):
    # Temporary local credentials: a request must carry their session token, signed.
    s = project.serve(env={"AWS_ACCESS_KEY_ID": "AKIDSLUICETEST", "AWS_SECRET_ACCESS_KEY": "local-secret",
                           "AWS_SESSION_TOKEN": "local-token", "AWS_PROFILE": ""})
    url = s.endpoints["urls"]["private"]
    status, headers, body = signed(url, "/", token="local-token")
    assert status == 200, body
    for token, why in ((None, "carries no X-Amz-Security-Token"), ("other-token", "is not the local credentials'")):
        status, headers, body = signed(url, "/", token=token)
        assert (status, json.loads(body)) == (403, FORBIDDEN)
        s.wait_for_log(why)


def presigned(url, path, expires=300, secret="local-secret", when=None):
    """A presigned URL made by botocore's SigV4QueryAuth (the signature in the query)."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=url + path)
    auth = SigV4QueryAuth(Credentials("AKIDSLUICETEST", secret), "lambda", "us-east-1", expires=expires)
    if when is None:
        auth.add_auth(req)
    else:  # signed at a given time (botocore's clock is botocore.auth.get_current_datetime)
        from unittest import mock
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    parts = urllib.parse.urlsplit(req.url)
    return request(url, "GET", parts.path + "?" + parts.query)


def test_aws_iam_urls_take_presigned_urls(srv):
    import datetime
    url = srv.endpoints["urls"]["private"]
    status, headers, body = presigned(url, "/report?day=mon")
    assert status == 200, body
    ev = json.loads(body)["event"]
    assert ev["requestContext"]["authorizer"]["iam"]["accessKey"] == "AKIDSLUICETEST"
    assert ev["queryStringParameters"]["day"] == "mon"
    status, headers, body = presigned(url, "/report", secret="wrong")
    assert (status, json.loads(body)) == (403, FORBIDDEN)
    srv.wait_for_log("the signature does not match")
    # Signed 10 minutes ago for 60 s: expired.
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    status, headers, body = presigned(url, "/report", expires=60, when=past)
    assert (status, json.loads(body)) == (403, FORBIDDEN)
    srv.wait_for_log("the presigned URL expired")
    # The same age within its X-Amz-Expires is fine (a header-signed request would be refused
    # past 15 minutes; a presigned URL lives as long as it says, up to 7 days).
    long_ago = past - datetime.timedelta(minutes=50)
    status, headers, body = presigned(url, "/report", expires=7200, when=long_ago)
    assert status == 200, body


def test_oversized_request_and_python_package(srv, project):
    # Over Lambda's 6 MB: 413 as soon as the Content-Length is read.
    u = urllib.parse.urlsplit(srv.endpoints["urls"]["echo"])
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6291457\r\n\r\n" + b"x" * 65536)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"x-amzn-ErrorType: RequestEntityTooLargeException" in head
    assert "6291456" in json.loads(body)["Message"]
    import sluice

    with sluice.serve(project.path / "sluice.yaml") as app:
        status, headers, body = request(app.function_url("echo"), path="/py")
        assert status == 200 and json.loads(body)["event"]["rawPath"] == "/py"
        with pytest.raises(sluice.SluiceError, match="'ret0' has no|no function URL"):
            app.function_url("nosuch")


def test_generated_event_has_the_shape_of_a_served_one(srv, project):
    status, headers, body = request(srv.endpoints["urls"]["echo"], "POST", "/a/b?x=1", body=b'{"k": 1}',
                                    headers={"Content-Type": "application/json", "User-Agent": "curl/8.5.0",
                                             "Accept": "*/*"})
    served = json.loads(body)["event"]
    p = project.run("generate-event", "lambda", "function-url", "--set", "method=POST", "--set", "path=/a/b",
                    "--set", "query.x=1", "--set", 'body={"k": 1}')
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert sorted(made) == sorted(served)
    assert sorted(made["requestContext"]) == sorted(served["requestContext"])
    assert sorted(made["headers"]) == sorted(h for h in served["headers"] if h != "accept-encoding")
    for key in ("version", "routeKey", "rawPath", "rawQueryString", "queryStringParameters", "body", "isBase64Encoded"):
        assert made[key] == served[key], key
    rc = made["requestContext"]
    assert rc["accountId"] == "anonymous" and rc["stage"] == "$default" and rc["routeKey"] == "$default"
    assert rc["domainName"] == rc["apiId"] + ".lambda-url.us-east-1.on.aws" == made["headers"]["host"]
    assert len(rc["apiId"]) == 32 and made["headers"]["x-forwarded-proto"] == "https"
    # The generated event drives the function as the URL's does.
    out = project.run("invoke", "echo", "--event", "-", input=p.stdout)
    assert out.returncode == 0, out.stderr
    assert json.loads(json.loads(out.stdout)["body"])["event"]["rawPath"] == "/a/b"
    # AWS_IAM: the caller in requestContext.authorizer.iam, with the keys a signed request gets.
    iam = json.loads(project.run("generate-event", "lambda", "function-url", "--set", "auth=AWS_IAM").stdout)
    status, headers, body = signed(srv.endpoints["urls"]["private"], "/")
    assert sorted(iam["requestContext"]["authorizer"]["iam"]) == \
        sorted(json.loads(body)["event"]["requestContext"]["authorizer"]["iam"])
    assert iam["requestContext"]["accountId"] == "123456789012"
    p = project.run("generate-event", "lambda", "function-url", "--set", "stage=prod")
    assert p.returncode != 0 and b"unknown key 'stage' for lambda function-url" in p.stderr  # no stages
