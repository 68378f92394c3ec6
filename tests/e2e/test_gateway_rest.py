"""REST APIs (payload 1.0) through the real binary and real handler processes:
the exact Lambda proxy event, response mapping, binary media types, AWS's
error answers and headers, routing precedence, stages mapped to aliases and
weighted versions, and the integration timeout.

Expected values come from AWS itself wherever it has been recorded:
shared/vectors/aws-recorded/test_apigateway_lambda.snapshot.json (the proxy
event for the requests of LocalStack's AWS-validated
test_lambda_aws_proxy_integration, and the proxy response validation of
test_aws_proxy_response_payload_format_validation), and
test_apigateway_common.snapshot.json (error types, response headers, trace ids)."""
import base64
import http.client
import json
import re
import socket
import subprocess
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlparse

import pytest

from conftest import ROOT

RECORDED = ROOT.parent / "shared" / "vectors" / "aws-recorded" / "test_apigateway_lambda.snapshot.json"

# The key sets of the recorded AWS event (invocation-payload-without-trailing-slash);
# checked against the recording itself below when it is present.
EVENT_KEYS = {"body", "headers", "httpMethod", "isBase64Encoded", "multiValueHeaders",
              "multiValueQueryStringParameters", "path", "pathParameters", "queryStringParameters",
              "requestContext", "resource", "stageVariables"}
CONTEXT_KEYS = {"accountId", "apiId", "deploymentId", "domainName", "domainPrefix", "extendedRequestId",
                "httpMethod", "identity", "path", "protocol", "requestId", "requestTime", "requestTimeEpoch",
                "resourceId", "resourcePath", "stage"}
IDENTITY_KEYS = {"accessKey", "accountId", "caller", "cognitoAuthenticationProvider", "cognitoAuthenticationType",
                 "cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId", "sourceIp", "user", "userAgent",
                 "userArn"}

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACE_RE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}")
INTERNAL_ERROR = b'{"message": "Internal server error"}'
MISSING_TOKEN = b'{"message":"Missing Authentication Token"}'

STACK = """
name: gwrest
region: eu-west-3
account_id: "210987654321"
defaults: {runtime: python3.11, memory: 128, timeout: 5}
functions:
  echo: {code: fn/, handler: handlers.echo}
  other: {code: fn/, handler: handlers.echo}
  mirror: {code: fn/, handler: handlers.from_body}
  broken: {code: fn/, handler: handlers.fail}
  slow: {code: fn/, handler: handlers.sleep, timeout: 10}
  raw: {runtime: provided.al2023, code: raw/}
apis:
  shop:
    type: rest
    binary_media_types: [image/png]
    routes:
      ANY /{proxy+}: echo
      GET /items/{id}: echo
      GET /items/special: other
      GET /things: echo
      ANY /things: other
      POST /mirror: mirror
      POST /raw: raw
      GET /broken: broken
      GET /slow: slow
    stages:
      test: {}
      prod: {variables: {color: blue, url: "https://example.com/a?b=c"}}
  plain:
    type: rest
    routes:
      GET /only: echo
      GET /only/{id}: echo
    stages:
      v1: {}
"""

ALIASES = """
name: aliases
defaults: {runtime: python3.11, memory: 128, timeout: 5}
functions:
  catalog:
    code: fn/
    handler: handlers.echo
    aliases:
      sandbox: $LATEST
      production: 1
      canary: {version: 1, weights: {"2": 0.3}}
apis:
  store:
    type: rest
    routes:
      GET /catalog: catalog:${stageVariables.environment}
      GET /by-name: ${stageVariables.fn}
    stages:
      sandbox: {variables: {environment: sandbox, fn: catalog}}
      production: {variables: {environment: production, fn: "catalog:production"}}
      canary: {variables: {environment: canary, fn: nope}}
      broken: {variables: {environment: ghost}}
      bare: {}
"""


# ---------------------------------------------------------------- HTTP helpers

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(name, value)] in wire order, names as sent
        self.body = body

    def header(self, name):
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self):
        return [k for k, _ in self.headers]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def call(base, method, target, headers=None, body=None, conn=None):
    """One request with http.client: the target is sent exactly as given."""
    u = urlparse(base)
    c = conn or http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request(method, target, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    out = Resp(r.status, r.getheaders(), data)
    if conn is None:
        c.close()
    return out


def raw_call(base, request_bytes):
    """Sends bytes as they are on a fresh connection; parses one response."""
    u = urlparse(base)
    s = socket.create_connection((u.hostname, u.port), timeout=60)
    s.sendall(request_bytes)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(k, v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
    length = int(next(v for k, v in headers if k.lower() == "content-length"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    return Resp(status, headers, rest[:length])


def proxied(r):
    """The echo handler's answer: the event and what ran."""
    assert r.status == 200, r
    return r.json()


def assert_aws_headers(r, error_type=None, traced=True):
    """AWS's headers on a REST answer. traced=None: AWS's recorded answers
    disagree on whether this kind carries X-Amzn-Trace-Id, so it is not checked."""
    rid = r.header("x-amzn-RequestId")
    assert rid and UUID_RE.match(rid), r
    assert r.header("x-amz-apigw-id"), r
    if traced:
        assert TRACE_RE.match(r.header("X-Amzn-Trace-Id") or ""), r
    elif traced is False:
        assert r.header("X-Amzn-Trace-Id") is None, r
    assert r.header("x-amzn-ErrorType") == error_type, r
    assert r.header("Date"), r


@pytest.fixture
def rest(ws):
    ws.copy_function("gateway-rest-echo", "fn")
    ws.copy_function("gateway-rest-raw", "raw")
    ws.write_stack(STACK)
    return ws


def api_url(server, name="shop"):
    return server.endpoints["apis"][name]["url"]


# ---------------------------------------------------------------- the event

def test_the_recorded_key_sets_are_aws_own():
    if not RECORDED.exists():
        pytest.skip(f"{RECORDED} is not there")
    data = json.loads(RECORDED.read_text())
    key = next(k for k in data if k.endswith("::test_lambda_aws_proxy_integration"))
    event = data[key]["recorded-content"]["invocation-payload-without-trailing-slash"]
    assert set(event) == EVENT_KEYS
    assert set(event["requestContext"]) == CONTEXT_KEYS
    assert set(event["requestContext"]["identity"]) == IDENTITY_KEYS


def test_every_field_of_the_proxy_event(rest):
    s = rest.serve()
    url = api_url(s)
    port = urlparse(url).port
    body = '{"message": "hello world", "n": [1, 2]}'
    query = "a=1&a=2&plus=test+alias@gmail.com&email=test%2Balias@gmail.com&sp=foo%20bar&empty="
    request = (f"POST /prod/orders/42/lines?{query} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\n"
               "User-Agent: raw-client/1.0\r\n"
               "accept: */*\r\n"
               "tEsT-HEADeR: aValUE\r\n"
               "X-Multi: one\r\n"
               "X-Multi: two\r\n"
               "authorization: random-value\r\n"
               "Content-Type: application/json\r\n"
               "X-Forwarded-For: 203.0.113.9\r\n"
               f"Content-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n" + body).encode()
    before = time.time()
    r = raw_call(url, request)
    after = time.time()
    assert_aws_headers(r)
    assert r.header("Content-Type") == "application/json"
    event = proxied(r)["event"]

    assert set(event) == EVENT_KEYS
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/orders/42/lines"
    assert event["httpMethod"] == "POST"
    trace = r.header("X-Amzn-Trace-Id")
    # Client casing kept, Authorization title-cased, the last of repeated values;
    # Content-Length and Connection are not forwarded; AWS adds the X-Forwarded-*
    # headers (the client's X-Forwarded-For chain, then the source address) and
    # X-Amzn-Trace-Id (the one the response carries).
    expected_headers = {
        "Host": f"127.0.0.1:{port}", "User-Agent": "raw-client/1.0", "accept": "*/*", "tEsT-HEADeR": "aValUE",
        "X-Multi": "two", "Authorization": "random-value", "Content-Type": "application/json",
        "X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Port": str(port), "X-Forwarded-Proto": "http",
        "X-Amzn-Trace-Id": trace,
    }
    assert event["headers"] == expected_headers
    multi = {k: [v] for k, v in expected_headers.items()}
    multi["X-Multi"] = ["one", "two"]
    assert event["multiValueHeaders"] == multi
    # '+' is a space, %2B a plus, the last value wins in the single-value map.
    assert event["queryStringParameters"] == {"a": "2", "plus": "test alias@gmail.com",
                                              "email": "test+alias@gmail.com", "sp": "foo bar", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "plus": ["test alias@gmail.com"],
                                                        "email": ["test+alias@gmail.com"], "sp": ["foo bar"],
                                                        "empty": [""]}
    assert event["pathParameters"] == {"proxy": "orders/42/lines"}
    assert event["stageVariables"] == {"color": "blue", "url": "https://example.com/a?b=c"}
    assert event["body"] == body and event["isBase64Encoded"] is False

    rc = event["requestContext"]
    assert set(rc) == CONTEXT_KEYS
    assert rc["accountId"] == "210987654321"
    assert re.fullmatch(r"[a-z0-9]{10}", rc["apiId"])
    assert re.fullmatch(r"[a-z0-9]{6}", rc["deploymentId"])
    assert re.fullmatch(r"[a-z0-9]{6}", rc["resourceId"])
    assert rc["domainName"] == f"127.0.0.1:{port}"
    assert rc["domainPrefix"] == "127"
    assert rc["extendedRequestId"] == r.header("x-amz-apigw-id")
    assert rc["httpMethod"] == "POST"
    assert rc["path"] == "/prod/orders/42/lines"
    assert rc["protocol"] == "HTTP/1.1"
    assert rc["requestId"] == r.header("x-amzn-RequestId")
    assert rc["resourcePath"] == "/{proxy+}"
    assert rc["stage"] == "prod"
    assert before * 1000 - 1000 <= rc["requestTimeEpoch"] <= after * 1000 + 1000
    when = datetime.fromtimestamp(rc["requestTimeEpoch"] // 1000, timezone.utc)
    assert rc["requestTime"] == when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    identity = rc["identity"]
    assert set(identity) == IDENTITY_KEYS
    assert identity == {k: None for k in IDENTITY_KEYS} | {"sourceIp": "127.0.0.1", "userAgent": "raw-client/1.0"}

    # The same API on a stage without variables, no query, no body: nulls, not {}.
    # The domain is the Host the client asked for (an execute-api name here).
    host = "abc123defg.execute-api.eu-west-3.amazonaws.com"
    r2 = call(url, "GET", "/test/items/7", headers={"User-Agent": "second", "Host": host})
    e2 = proxied(r2)["event"]
    assert e2["headers"]["Host"] == host
    assert (e2["requestContext"]["domainName"], e2["requestContext"]["domainPrefix"]) == (host, "abc123defg")
    assert set(e2) == EVENT_KEYS
    assert e2["stageVariables"] is None
    assert e2["queryStringParameters"] is None and e2["multiValueQueryStringParameters"] is None
    assert e2["body"] is None and e2["isBase64Encoded"] is False
    assert e2["pathParameters"] == {"id": "7"}
    assert e2["resource"] == "/items/{id}" and e2["requestContext"]["resourcePath"] == "/items/{id}"
    assert e2["requestContext"]["path"] == "/test/items/7"
    assert e2["requestContext"]["stage"] == "test"
    assert e2["requestContext"]["apiId"] == rc["apiId"], "one API, one id"
    assert e2["requestContext"]["requestId"] == r2.header("x-amzn-RequestId") != rc["requestId"]
    assert e2["requestContext"]["resourceId"] != rc["resourceId"]
    assert e2["headers"]["X-Amzn-Trace-Id"] == r2.header("X-Amzn-Trace-Id") != trace
    assert "Content-Length" not in e2["headers"] and "Connection" not in e2["headers"]


def test_paths_and_encodings_as_aws_recorded_them(rest):
    """The requests of the recorded AWS test, on a {proxy+} route: trailing,
    double and leading slashes, a percent-encoded path kept encoded, and the
    query string decoding."""
    s = rest.serve()
    url = api_url(s)
    conn = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=60)

    def ev(target):
        return proxied(call(url, "GET", target, headers={"User-Agent": "python-requests/testing"}, conn=conn))["event"]

    cases = [  # target, path, proxy, requestContext.path
        ("/test/proxy-value", "/proxy-value", "proxy-value", "/test/proxy-value"),
        ("/test/proxy-value/", "/proxy-value/", "proxy-value", "/test/proxy-value/"),
        ("/test/proxy-value//double-slash", "/proxy-value//double-slash", "proxy-value//double-slash",
         "/test/proxy-value//double-slash"),
        ("//test/proxy-value", "/proxy-value", "proxy-value", "/test/proxy-value"),
        ("/test//proxy-value", "/proxy-value", "proxy-value", "/test//proxy-value"),
        ("/test/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
         "/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
         "proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
         "/test/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com"),
    ]
    for target, path, proxy, rc_path in cases:
        e = ev(target)
        assert (e["path"], e["pathParameters"], e["requestContext"]["path"]) == (path, {"proxy": proxy}, rc_path), target
        assert e["resource"] == "/{proxy+}" and e["queryStringParameters"] is None, target

    query = ("dateTimeOffset=2023-06-12T18:05:10.123456+00:00&email=test%2Balias@gmail.com&plus=test+alias@gmail.com"
             "&url=https://www.google.com/&whitespace=foo%20bar&zhash=abort/")
    e = ev("/test/proxy-value/api?" + query)
    assert e["path"] == "/proxy-value/api"
    assert e["queryStringParameters"] == {
        "dateTimeOffset": "2023-06-12T18:05:10.123456 00:00", "email": "test+alias@gmail.com",
        "plus": "test alias@gmail.com", "url": "https://www.google.com/", "whitespace": "foo bar", "zhash": "abort/"}
    assert e["multiValueQueryStringParameters"] == {k: [v] for k, v in e["queryStringParameters"].items()}

    e = ev("/test/proxy-value?category=electronics&category=books&price=10&price=20&price=30")
    assert e["queryStringParameters"] == {"category": "books", "price": "30"}
    assert e["multiValueQueryStringParameters"] == {"category": ["electronics", "books"], "price": ["10", "20", "30"]}
    conn.close()


def test_client_trace_header_is_continued(rest):
    """AWS-validated (test_invocation_trace_id): a full X-Amzn-Trace-Id from the
    client comes back whole; with a Root alone, AWS adds a Parent of its own."""
    s = rest.serve()
    url = api_url(s)
    full = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"
    r = call(url, "GET", "/test/traced", headers={"X-Amzn-Trace-Id": full})
    assert full in r.header("X-Amzn-Trace-Id"), r
    assert r.header("X-Amzn-Trace-Id").split(";")[1] == "Parent=7fa8c0f79203be72"
    assert proxied(r)["event"]["headers"]["X-Amzn-Trace-Id"] == r.header("X-Amzn-Trace-Id")

    small = "Root=1-3152b799-8954dae64eda91bc9a23a7e8"
    r = call(url, "GET", "/test/traced", headers={"X-Amzn-Trace-Id": small})
    got = r.header("X-Amzn-Trace-Id")
    assert got.startswith(small + ";"), r
    assert re.fullmatch(r"Parent=[0-9a-f]{16}", got.split(";")[1]) and got.split(";")[1] != "Parent=7fa8c0f79203be72"
    assert proxied(r)["event"]["headers"]["X-Amzn-Trace-Id"] == got


# ---------------------------------------------------------------- responses

def test_proxy_response_mapping_as_aws_recorded_it(rest):
    """The cases of AWS's recorded test_aws_proxy_response_payload_format_validation,
    through a function that answers with the JSON document the client posts."""
    s = rest.serve()
    url = api_url(s)
    conn = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=60)

    def send(doc):
        return call(url, "POST", "/test/mirror", body=json.dumps(doc),
                    headers={"Content-Type": "application/json", "User-Agent": "python/test"}, conn=conn)

    def joined(r, name):
        return ", ".join(r.all(name))

    r = send({"statusCode": 200})
    assert (r.status, r.body, r.header("Content-Type")) == (200, b"", "application/json")
    assert_aws_headers(r)

    r = send({"statusCode": 200, "headers": {"test-header": "value", "header-bool": True}})
    assert (r.status, r.header("test-header"), r.header("header-bool")) == (200, "value", "true")

    r = send({"statusCode": 200, "headers": None})
    assert (r.status, r.body) == (200, b"")

    b64 = base64.b64encode(b"test-data").decode()
    r = send({"statusCode": 200, "body": b64, "isBase64Encoded": True})
    assert (r.status, r.body) == (200, b"dGVzdC1kYXRh"), "no Accept matches binaryMediaTypes: the text as is"
    r = send({"statusCode": 200, "body": b64})
    assert (r.status, r.body) == (200, b"dGVzdC1kYXRh")

    r = send({"statusCode": 200, "multiValueHeaders": {"test-multi": ["value1", "value2"]}})
    assert joined(r, "test-multi") == "value1, value2"
    r = send({"statusCode": 200, "multiValueHeaders": {"test-multi": ["value-multi"]},
              "headers": {"test-multi": "value-solo"}})
    assert joined(r, "test-multi") == "value-multi, value-solo"
    r = send({"statusCode": 200, "multiValueHeaders": {"tesT-Multi": ["value-multi"]},
              "headers": {"test-multi": "value-solo"}})
    assert joined(r, "test-multi") == "value-multi, value-solo"
    assert {k for k in r.names() if k.lower() == "test-multi"} == {"tesT-Multi"}, "the multiValueHeaders casing"

    r = send({"statusCode": "201"})
    assert (r.status, r.body) == (201, b"")
    r = send({"headers": {"test-header": "value"}})
    assert (r.status, r.body, r.header("test-header")) == (200, b"", "value"), "no statusCode: 200"

    # Anything API Gateway cannot read: 502, AWS's body, InternalServerErrorException.
    for bad in ({"statusCode": 200, "wrongValue": "value"},
                {"statusCode": 200, "multiValueHeaders": {"test-multi-invalid": "value1"}},
                {"statusCode": "test"},
                "justAString",
                {"statusCode": 200, "body": {"not": "a string"}},
                [{"statusCode": 200}]):
        r = send(bad)
        assert (r.status, r.body) == (502, INTERNAL_ERROR), bad
        assert_aws_headers(r, "InternalServerErrorException")
        assert r.header("Content-Type") == "application/json"

    # The function's own statuses, headers, cookies and body pass through.
    r = send({"statusCode": 418, "headers": {"Content-Type": "text/plain", "X-Single": "one"},
              "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2; HttpOnly"], "X-Many": ["x", "y"]},
              "body": "short and stout"})
    assert (r.status, r.body) == (418, b"short and stout")
    assert r.header("Content-Type") == "text/plain" and r.header("X-Single") == "one"
    assert r.all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"], "each cookie its own header line"
    assert joined(r, "X-Many") == "x, y"
    assert_aws_headers(r)

    # Headers the gateway owns are not the function's to set: they come back
    # as x-amzn-Remapped-*, Transfer-Encoding is dropped, and the framing holds.
    r = send({"statusCode": 200, "body": "hello",
              "headers": {"Server": "fn", "Date": "d", "WWW-Authenticate": "Basic", "Authorization": "tok",
                          "Connection": "close", "Content-Length": "3", "Transfer-Encoding": "chunked",
                          "X-Ok": "1"}})
    assert (r.status, r.body, r.header("X-Ok")) == (200, b"hello", "1")
    for name, value in [("Server", "fn"), ("Date", "d"), ("WWW-Authenticate", "Basic"), ("Authorization", "tok"),
                        ("Connection", "close"), ("Content-Length", "3")]:
        assert r.header("x-amzn-Remapped-" + name) == value, (name, r)
    assert r.header("Server") is None and r.header("WWW-Authenticate") is None and r.header("Authorization") is None
    assert r.header("Transfer-Encoding") is None and r.all("Content-Length") == ["5"]
    assert r.header("Date") != "d" and len(r.all("Date")) == 1
    r = send({"statusCode": 200})  # the same connection still works
    assert r.status == 200
    conn.close()


def test_function_errors_and_unreadable_output_answer_502(rest):
    s = rest.serve()
    url = api_url(s)
    r = call(url, "GET", "/test/broken")
    assert (r.status, r.body) == (502, INTERNAL_ERROR)
    assert_aws_headers(r, "InternalServerErrorException")
    # Output that is not JSON at all (a custom runtime posting plain text).
    r = call(url, "POST", "/test/raw", body="this is not JSON", headers={"Content-Type": "text/plain"})
    assert (r.status, r.body) == (502, INTERNAL_ERROR)
    assert_aws_headers(r, "InternalServerErrorException")
    # The same runtime with a proper proxy response works: the 502 was about the output.
    r = call(url, "POST", "/test/raw", body='{"statusCode": 202, "body": "raw ok"}')
    assert (r.status, r.body) == (202, b"raw ok")
    s.wait_for_log("GET /test/broken -> 502")
    s.wait_for_log("POST /test/raw -> 502")
    log = s.stdout()
    assert re.search(r"GET /test/broken -> 502 .*\[function error", log), log[-3000:]
    assert re.search(r"POST /test/raw -> 502 .*\[malformed Lambda proxy response", log, re.I), log[-3000:]


def test_a_body_over_lambdas_limit_answers_413_request_too_long(rest):
    # Between Lambda's 6 MB and API Gateway's 10 MB the event is refused by Lambda, and a REST
    # API answers as AWS was recorded answering (31 bytes, BadRequestException), not 502.
    s = rest.serve()
    url = api_url(s)
    r = call(url, "POST", "/test/anything", body=b"x" * (7 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert (r.status, r.body) == (413, b'{"message": "Request Too Long"}'), r
    assert_aws_headers(r, "BadRequestException", traced=None)
    s.wait_for_log("POST /test/anything -> 413")
    assert re.search(r"POST /test/anything -> 413 .*Lambda answered 413 RequestEntityTooLargeException", s.stdout()), \
        s.stdout()[-2000:]
    # Just under the limit the function gets it all.
    r = call(url, "POST", "/test/anything", body=b"y" * (5 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert r.status == 200 and len(proxied(r)["event"]["body"]) == 5 * 1024 * 1024


def test_binary_media_types(rest):
    s = rest.serve()
    url = api_url(s)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01binary"
    # Request: a Content-Type listed in binaryMediaTypes arrives base64-encoded.
    e = proxied(call(url, "POST", "/test/upload", body=png, headers={"Content-Type": "image/png"}))["event"]
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == png
    e = proxied(call(url, "POST", "/test/upload", body=b"plain words", headers={"Content-Type": "text/plain"}))["event"]
    assert (e["isBase64Encoded"], e["body"]) == (False, "plain words")

    # Response: decoded only when the first Accept type is a binary media type.
    doc = json.dumps({"statusCode": 200, "headers": {"Content-Type": "image/png"},
                      "body": base64.b64encode(png).decode(), "isBase64Encoded": True})
    b64 = base64.b64encode(png)

    def fetch(accept):
        headers = {"Content-Type": "application/json"}
        if accept:
            headers["Accept"] = accept
        r = call(url, "POST", "/test/mirror", body=doc, headers=headers)
        assert r.status == 200 and r.header("Content-Type") == "image/png", r
        return r.body

    assert fetch("image/png") == png
    assert fetch("image/png, text/html;q=0.9") == png
    assert fetch(None) == b64
    assert fetch("application/json") == b64
    assert fetch("text/html, image/png") == b64, "only the first Accept type counts"
    # curl, as a browser or a script would fetch the image
    out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Accept: image/png", "-H", "Content-Type: application/json",
                          "--data-binary", doc, url + "/test/mirror"], capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == png


# ---------------------------------------------------------------- routing and errors

def test_no_route_no_method_and_unknown_stage(rest):
    s = rest.serve()
    url = api_url(s, "plain")
    for method, target in [("GET", "/v1/nothing"), ("GET", "/v1/only/1/more"), ("POST", "/v1/only"),
                           ("DELETE", "/v1/only/3"), ("GET", "/v1"), ("GET", "/v1/")]:
        r = call(url, method, target)
        assert (r.status, r.body) == (403, MISSING_TOKEN), (method, target, r)
        assert_aws_headers(r, "MissingAuthenticationTokenException", traced=None)
        assert r.header("Content-Type") == "application/json"
    assert call(url, "GET", "/v1/only").status == 200
    assert call(url, "GET", "/v1/only/").status == 200, "a trailing slash is ignored"

    # A stage that does not exist
    for target in ["/v2/only", "/only", "/"]:
        r = call(url, "GET", target)
        assert (r.status, r.body) == (403, b'{"message":"Forbidden"}'), (target, r)
        assert_aws_headers(r, "ForbiddenException", traced=None)

    # curl sees the same bytes
    out = subprocess.run(["curl", "-s", "-i", url + "/v1/missing"], capture_output=True, timeout=60)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403") and body == MISSING_TOKEN
    assert b"\r\nx-amzn-ErrorType: MissingAuthenticationTokenException" in head
    s.wait_for_log("GET /v1/missing -> 403")
    assert re.search(r"POST /v1/only -> 403 .*\[no POST method on this resource\]", s.stdout())


def test_routing_precedence(rest):
    s = rest.serve()
    url = api_url(s)
    conn = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=60)

    def route(method, target):
        body = proxied(call(url, method, target, conn=conn))
        e = body["event"]
        return e["resource"], e["pathParameters"], body["invoked_function_arn"].split(":")[-1]

    # static over {param} over {proxy+}
    assert route("GET", "/test/items/special") == ("/items/special", None, "other")
    assert route("GET", "/test/items/special/") == ("/items/special", None, "other")
    assert route("GET", "/test/items/42") == ("/items/{id}", {"id": "42"}, "echo")
    assert route("GET", "/test/items/42/reviews") == ("/{proxy+}", {"proxy": "items/42/reviews"}, "echo")
    assert route("GET", "/test/elsewhere/deep/down") == ("/{proxy+}", {"proxy": "elsewhere/deep/down"}, "echo")
    # a method over ANY; ANY covers the others
    assert route("GET", "/test/things") == ("/things", None, "echo")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert route(method, "/test/things") == ("/things", None, "other"), method
        assert proxied(call(url, method, "/test/things", conn=conn))["event"]["httpMethod"] == method
    # A resource that exists without the method: 403, no fallback to {proxy+}
    r = call(url, "POST", "/test/items/42", conn=conn)
    assert (r.status, r.body) == (403, MISSING_TOKEN)
    # {proxy+} needs at least one segment: the root has no method
    r = call(url, "GET", "/test/", conn=conn)
    assert (r.status, r.body) == (403, MISSING_TOKEN)
    conn.close()


def test_integration_timeout_answers_504(rest):
    s = rest.serve(args=["--integration-timeout", "1"])
    url = api_url(s)
    started = time.monotonic()
    r = call(url, "GET", "/test/slow?seconds=3")
    elapsed = time.monotonic() - started
    assert (r.status, r.body) == (504, b'{"message": "Endpoint request timed out"}'), r
    # AWS does not document the error type of a timeout; it is a gateway error, so it has one.
    assert r.header("x-amzn-ErrorType")
    assert_aws_headers(r, r.header("x-amzn-ErrorType"))
    assert elapsed >= 0.9, elapsed
    # A quick answer within the limit is unaffected.
    r = call(url, "GET", "/test/slow?seconds=0.05")
    assert (r.status, r.body) == (200, b"slept 0.05")
    s.wait_for_log("GET /test/slow?seconds=3 -> 504")
    assert re.search(r"GET /test/slow\?seconds=3 -> 504 .*\[integration timed out after 1000 ms\]", s.stdout())


# ---------------------------------------------------------------- stages, aliases, versions

@pytest.fixture
def aliases(ws):
    ws.copy_function("gateway-rest-echo", "fn")
    ws.write_stack(ALIASES)
    return ws


def set_marker(ws, text):
    (ws.path / "fn" / "marker.py").write_text(f"MARK = {text!r}\n")


def publish(ws, expect_version):
    out = ws.run("publish", "catalog")
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout)["Version"] == expect_version, out.stdout


def test_stages_route_to_aliases_and_weighted_versions(aliases):
    # Three different codes: version 1, version 2, $LATEST (markers of different
    # lengths, so that no bytecode cache can mistake one for another).
    set_marker(aliases, "one")
    publish(aliases, "1")
    set_marker(aliases, "two!")
    publish(aliases, "2")
    set_marker(aliases, "three")
    s = aliases.serve()
    url = api_url(s, "store")
    conn = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=60)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:catalog"

    def ran(target):
        b = proxied(call(url, "GET", target, conn=conn))
        return b["marker"], b["function_version"], b["invoked_function_arn"]

    assert ran("/sandbox/catalog") == ("three", "$LATEST", arn + ":sandbox")
    assert ran("/production/catalog") == ("one", "1", arn + ":production")
    # The whole target from a stage variable, with or without a qualifier
    assert ran("/sandbox/by-name") == ("three", "$LATEST", arn)
    assert ran("/production/by-name") == ("one", "1", arn + ":production")
    # API Gateway does not expose the executed version: the handler had to say it.
    r = call(url, "GET", "/production/catalog", conn=conn)
    assert r.header("X-Amz-Executed-Version") is None

    # The canary stage: alias version 1 with 30% to version 2.
    seen = Counter()
    for _ in range(200):
        marker, version, invoked = ran("/canary/catalog")
        assert invoked == arn + ":canary"
        assert (marker, version) in {("one", "1"), ("two!", "2")}, (marker, version)
        seen[version] += 1
    share = seen["2"] / 200
    assert 0.3 - 0.13 <= share <= 0.3 + 0.13, seen
    # The access log names the executed version of each request.
    s.wait_for_log(f"GET /canary/catalog -> 200")
    deadline = time.time() + 10
    while time.time() < deadline:
        logged = Counter(re.findall(r"\[api store/canary\] GET /canary/catalog -> 200 .*\(catalog:(\d+), (?:cold|warm)\)",
                                    s.stdout()))
        if sum(logged.values()) >= 200:
            break
        time.sleep(0.05)
    assert logged == seen, (logged, seen)

    # An edit reaches the stage on $LATEST and not the one on version 1.
    set_marker(aliases, "four!!")
    deadline = time.time() + 15
    while ran("/sandbox/catalog")[0] != "four!!":
        assert time.time() < deadline, "the edit never reached $LATEST"
        time.sleep(0.1)
    assert ran("/production/catalog") == ("one", "1", arn + ":production")
    conn.close()


def test_targets_that_resolve_to_nothing_answer_500(aliases):
    set_marker(aliases, "one")
    publish(aliases, "1")
    s = aliases.serve()
    url = api_url(s, "store")
    cases = [
        ("/bare/catalog", r'stage variable "environment" is not defined on stage bare'),
        ("/broken/catalog", r"ResourceNotFoundException"),  # alias "ghost" does not exist
        ("/canary/by-name", r"ResourceNotFoundException"),  # function "nope" does not exist
    ]
    for target, why in cases:
        r = call(url, "GET", target)
        assert (r.status, r.body) == (500, INTERNAL_ERROR), (target, r)
        assert_aws_headers(r, "InternalServerErrorException", traced=None)
        s.wait_for_log(f"GET {target} -> 500")
        line = next(l for l in s.stdout().splitlines() if f"GET {target} -> 500" in l)
        assert re.search(why, line), line
    assert call(url, "GET", "/production/catalog").status == 200
