"""HTTP APIs end to end: the payload 2.0 event field by field (and 1.0 when a route
asks for it), response mapping, routing and its precedence, stages, CORS and the
integration timeout, through the real binary and real Python and Node.js handler
processes, with plain HTTP clients (http.client with headers under our control)."""
import base64
import calendar
import http.client
import json
import re
import time
from urllib.parse import urlparse

import pytest

STACK = """
name: gwhttp
region: eu-west-3
account_id: "210987654321"
defaults: {runtime: python3.11, timeout: 10}
functions:
  echo: {code: py/, handler: handlers.echo}
  echo-v1: {code: py/, handler: handlers.echo_v1}
  respond: {code: py/, handler: handlers.respond}
  fail: {code: py/, handler: handlers.fail}
  slow: {code: py/, handler: handlers.slow}
  cors-fn: {code: py/, handler: handlers.cors_headers}
  node-echo: {runtime: nodejs20.x, code: node/, handler: index.echo}
  node-structured: {runtime: nodejs20.x, code: node/, handler: index.structured}
  node-respond: {runtime: nodejs20.x, code: node/, handler: index.respond}
apis:
  web:
    type: http
    routes:
      GET /items/{id}: echo
      POST /items/{id}: echo
      GET /node/{id}: node-echo
      POST /v1/{id}: {function: echo-v1, payload_format: "1.0"}
      POST /respond: respond
      POST /node-respond: node-respond
      GET /structured: node-structured
      GET /fail: fail
      GET /slow: slow
    stages:
      $default: {}
      beta: {variables: {flag: "on", color: green}}
  router:
    type: http
    routes:
      GET /pets/dog/1: echo
      GET /pets/dog/{id}: echo
      GET /pets/{proxy+}: echo
      ANY /{proxy+}: echo
      GET /things/{id}: echo
      ANY /things/{id}: echo
      $default: echo
  strict:
    type: http
    routes:
      GET /only: echo
    stages:
      v1: {}
  corsy:
    type: http
    cors:
      allow_origins: [https://app.example.com]
      allow_methods: [GET, POST]
      allow_headers: [content-type, x-custom]
      expose_headers: [x-request-id]
      max_age: 600
      allow_credentials: true
    routes:
      GET /items: cors-fn
      POST /items: cors-fn
"""

REQUEST_ID = re.compile(r"^[A-Za-z0-9+/]{15}=$")
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$")
CLF = "%d/%b/%Y:%H:%M:%S +0000"


@pytest.fixture
def gw(ws):
    ws.copy_function("gateway-http-python", "py")
    ws.copy_function("gateway-http-node", "node")
    ws.write_stack(STACK)
    return ws


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def call(url, method="GET", path="/", headers=(), body=None, host=None, timeout=30):
    """One request with exactly the headers given (plus Host and, with a body, Content-Length)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"{u.hostname}:{u.port}")
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def api(s, name):
    return s.endpoints["apis"][name]["url"]


def check_time(rc, before_ms, after_ms):
    assert before_ms - 1000 <= rc["timeEpoch"] <= after_ms + 1000
    parsed = calendar.timegm(time.strptime(rc["time"], CLF))
    assert parsed == rc["timeEpoch"] // 1000


def test_v2_event_has_every_field_as_aws_sends_it(gw):
    s = gw.serve()
    url = api(s, "web")
    port = urlparse(url).port
    before = int(time.time() * 1000)
    r = call(url, "GET", "/items/42?b=2&a=1&a=3&q=hello%20world&empty=",
             headers=[("User-Agent", "sluice-e2e/1.0"), ("X-Multi", "one"), ("X-Multi", "two"),
                      ("X-Mixed-CASE", "Value"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3"),
                      ("X-Forwarded-For", "10.1.2.3")])
    after = int(time.time() * 1000)
    assert r.status == 200, r.body
    assert r.header("content-type") == "application/json"
    rid = r.header("apigw-requestid")
    assert REQUEST_ID.match(rid), rid
    ev = r.json()["event"]
    assert set(ev) == {"version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
                       "queryStringParameters", "pathParameters", "requestContext", "isBase64Encoded"}
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "GET /items/{id}"
    assert ev["rawPath"] == "/items/42"
    assert ev["rawQueryString"] == "b=2&a=1&a=3&q=hello%20world&empty="
    assert ev["cookies"] == ["a=1", "b=2", "c=3"]
    headers = ev["headers"]
    assert TRACE.match(headers.pop("x-amzn-trace-id"))
    assert headers == {
        "host": f"127.0.0.1:{port}",
        "user-agent": "sluice-e2e/1.0",
        "x-multi": "one,two",
        "x-mixed-case": "Value",
        "x-forwarded-for": "10.1.2.3, 127.0.0.1",
        "x-forwarded-port": str(port),
        "x-forwarded-proto": "http",
    }
    assert ev["queryStringParameters"] == {"b": "2", "a": "1,3", "q": "hello world", "empty": ""}
    assert ev["pathParameters"] == {"id": "42"}
    assert ev["isBase64Encoded"] is False
    rc = ev["requestContext"]
    assert set(rc) == {"accountId", "apiId", "domainName", "domainPrefix", "http", "requestId", "routeKey",
                       "stage", "time", "timeEpoch"}
    assert rc["accountId"] == "210987654321"
    assert re.fullmatch(r"[a-z0-9]{10}", rc["apiId"])
    assert rc["domainName"] == f"127.0.0.1:{port}"
    assert rc["domainPrefix"] == "127"
    assert rc["http"] == {"method": "GET", "path": "/items/42", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                          "userAgent": "sluice-e2e/1.0"}
    assert rc["requestId"] == rid
    assert rc["routeKey"] == "GET /items/{id}"
    assert rc["stage"] == "$default"
    check_time(rc, before, after)

    # An execute-api host name: domainName is the host, domainPrefix its first label.
    r2 = call(url, "GET", "/items/43", host="abc123defg.execute-api.eu-west-3.amazonaws.com")
    rc2 = r2.json()["event"]["requestContext"]
    assert rc2["domainName"] == "abc123defg.execute-api.eu-west-3.amazonaws.com"
    assert rc2["domainPrefix"] == "abc123defg"
    assert rc2["apiId"] == rc["apiId"], "one API keeps its id"
    assert rc2["requestId"] == r2.header("apigw-requestid") != rid
    # Nothing the client did not send: no user-agent header, no cookies, no query parameters.
    assert "user-agent" not in r2.json()["event"]["headers"]
    assert "cookies" not in r2.json()["event"] and "queryStringParameters" not in r2.json()["event"]

    # A Node.js handler receives the same event.
    r3 = call(url, "GET", "/node/42?b=2&a=1&a=3&q=hello%20world&empty=",
              headers=[("User-Agent", "sluice-e2e/1.0"), ("X-Multi", "one"), ("X-Multi", "two"),
                       ("X-Mixed-CASE", "Value"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3"),
                       ("X-Forwarded-For", "10.1.2.3")])
    assert r3.status == 200, r3.body
    node_ev = r3.json()["event"]
    for e in (ev, node_ev):
        e["headers"].pop("x-amzn-trace-id", None)
        for k in ("requestId", "time", "timeEpoch"):
            e["requestContext"].pop(k)
    node_ev["requestContext"]["http"]["path"] = ev["requestContext"]["http"]["path"]
    assert node_ev["routeKey"] == node_ev["requestContext"]["routeKey"] == "GET /node/{id}"
    node_ev["routeKey"] = node_ev["requestContext"]["routeKey"] = ev["routeKey"]
    assert node_ev.pop("rawPath") == "/node/42"
    ev.pop("rawPath")
    assert node_ev == ev


def test_paths_and_queries_decode_as_aws_does(gw):
    # Live AWS captures (hotsock/voker testdata: apigwv2-request.json, ingress-paths.json).
    s = gw.serve()
    url = api(s, "web")
    r = call(url, "GET", "/items/a+b?literalPlus=a+b&encodedPlus=a%2Bb&sp=x%20y")
    ev = r.json()["event"]
    assert ev["queryStringParameters"] == {"literalPlus": "a b", "encodedPlus": "a+b", "sp": "x y"}
    assert ev["rawQueryString"] == "literalPlus=a+b&encodedPlus=a%2Bb&sp=x%20y"
    assert ev["rawPath"] == "/items/a+b"  # a '+' in the path is a plus
    # The path is decoded twice: "%252F" arrives as "/", "%2525" as "%"; a '?' that the
    # first decoding yields ends it; "%25" followed by no hex digits is refused with 400.
    for sent, path in (("/items/space%20value", "/items/space value"), ("/items/q%3Fvalue", "/items/q"),
                       ("/items/lit%253Fvalue", "/items/lit?value"), ("/items/pc%2525value", "/items/pc%value"),
                       ("/items/uni-%CE%BB", "/items/uni-λ")):
        r = call(url, "GET", sent)
        assert r.status == 200, (sent, r.body)
        ev = r.json()["event"]
        assert ev["rawPath"] == path == ev["requestContext"]["http"]["path"], sent
        assert ev["pathParameters"] == {"id": path[len("/items/"):]}, sent
    r = call(url, "GET", "/items/a%2Fb")
    assert r.status == 404 and r.json() == {"message": "Not Found"}  # "/items/a/b" matches no route
    r = call(url, "GET", "/items/percent%25done")
    assert r.status == 400 and r.json() == {"message": "Bad Request"}
    assert r.header("apigw-requestid")
    s.wait_for_log("GET /items/percent%25done -> 400")


def test_named_stage_and_stage_variables(gw):
    s = gw.serve()
    url = api(s, "web")
    assert s.endpoints["apis"]["web"]["stages"] == ["$default", "beta"]
    r = call(url, "GET", "/beta/items/7?x=1")
    assert r.status == 200, r.body
    ev = r.json()["event"]
    assert ev["rawPath"] == "/beta/items/7"
    assert ev["rawQueryString"] == "x=1"
    assert ev["pathParameters"] == {"id": "7"}
    assert ev["stageVariables"] == {"flag": "on", "color": "green"}
    assert ev["requestContext"]["stage"] == "beta"
    assert ev["requestContext"]["http"]["path"] == "/beta/items/7"
    assert ev["routeKey"] == "GET /items/{id}"
    # The $default stage at URL/path; it has no variables, so the key is absent.
    ev = call(url, "GET", "/items/7").json()["event"]
    assert ev["rawPath"] == "/items/7" and ev["requestContext"]["stage"] == "$default"
    assert "stageVariables" not in ev
    # A first segment that names no stage is part of the path on the $default stage.
    r = call(url, "GET", "/gamma/items/7")
    assert r.status == 404 and r.json() == {"message": "Not Found"}
    # Without a $default stage, only the named stages answer.
    strict = api(s, "strict")
    assert call(strict, "GET", "/v1/only").status == 200
    r = call(strict, "GET", "/only")
    assert r.status == 404 and r.json() == {"message": "Not Found"}
    assert REQUEST_ID.match(r.header("apigw-requestid"))


def test_request_bodies_text_or_base64_by_content_type(gw):
    s = gw.serve()
    url = api(s, "web")

    def post(ctype, data):
        r = call(url, "POST", "/items/5", headers=[("Content-Type", ctype)], body=data)
        assert r.status == 200, r.body
        return r.json()["event"]

    ev = post("application/json", b'{"a": [1, 2]}')
    assert ev["body"] == '{"a": [1, 2]}' and ev["isBase64Encoded"] is False
    assert ev["headers"]["content-type"] == "application/json"
    assert ev["headers"]["content-length"] == "13"
    assert ev["routeKey"] == "POST /items/{id}" and ev["requestContext"]["http"]["method"] == "POST"
    text = "h\u00e9llo w\u00f6rld"
    ev = post("text/plain; charset=utf-8", text.encode())
    assert ev["body"] == text and ev["isBase64Encoded"] is False
    ev = post("application/xml", b"<a>1</a>")
    assert ev["body"] == "<a>1</a>" and ev["isBase64Encoded"] is False
    blob = bytes(range(256))
    for ctype in ("application/octet-stream", "image/png", "application/x-www-form-urlencoded"):
        data = b"a=1&b=2" if ctype.endswith("urlencoded") else blob
        ev = post(ctype, data)
        assert ev["isBase64Encoded"] is True, ctype
        assert base64.b64decode(ev["body"]) == data, ctype
    # A bigger binary body arrives whole.
    big = bytes(range(256)) * 4096  # 1 MiB
    ev = post("application/octet-stream", big)
    assert base64.b64decode(ev["body"]) == big


def test_payload_format_1_0_on_an_http_route(gw):
    s = gw.serve()
    url = api(s, "web")
    port = urlparse(url).port
    before = int(time.time() * 1000)
    r = call(url, "POST", "/beta/v1/9?x=1&x=2&y=3",
             headers=[("User-Agent", "sluice-e2e/1.0"), ("Content-Type", "application/json"), ("X-Multi", "one"),
                      ("X-Multi", "two"), ("Cookie", "a=1")],
             body=b'{"k": 1}')
    after = int(time.time() * 1000)
    assert r.status == 200, r.body
    # The 1.0 response: headers and multiValueHeaders both reach the client.
    assert r.header("x-single") == "one"
    assert r.header_all("x-multi") == ["a", "b"]
    assert r.header("content-type") == "application/json"
    ev = r.json()["event"]
    assert set(ev) == {"version", "resource", "path", "httpMethod", "headers", "multiValueHeaders",
                       "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
                       "stageVariables", "requestContext", "body", "isBase64Encoded"}
    assert ev["version"] == "1.0"
    assert ev["resource"] == "/v1/{id}"
    assert ev["path"] == "/beta/v1/9"
    assert ev["httpMethod"] == "POST"
    assert ev["headers"]["X-Multi"] == "two"
    assert ev["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert ev["headers"]["Content-Type"] == "application/json"
    assert ev["headers"]["User-Agent"] == "sluice-e2e/1.0"
    assert ev["headers"]["Cookie"] == "a=1", "payload 1.0 keeps cookies in the headers"
    assert ev["headers"]["X-Forwarded-Port"] == str(port)
    assert ev["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert ev["queryStringParameters"]["y"] == "3"
    assert ev["pathParameters"] == {"id": "9"}
    assert ev["stageVariables"] == {"flag": "on", "color": "green"}
    assert ev["body"] == '{"k": 1}' and ev["isBase64Encoded"] is False
    rc = ev["requestContext"]
    assert rc["accountId"] == "210987654321"
    assert re.fullmatch(r"[a-z0-9]{10}", rc["apiId"])
    assert rc["domainName"] == f"127.0.0.1:{port}" and rc["domainPrefix"] == "127"
    assert rc["httpMethod"] == "POST"
    assert rc["path"] == "/beta/v1/9"
    assert rc["protocol"] == "HTTP/1.1"
    assert rc["requestId"] == r.header("apigw-requestid")
    assert rc["extendedRequestId"] == rc["requestId"], "HTTP APIs use one id for both"
    assert rc["resourceId"] == "POST /v1/{id}"
    assert rc["resourcePath"] == "/v1/{id}"
    assert rc["stage"] == "beta"
    assert before - 1000 <= rc["requestTimeEpoch"] <= after + 1000
    assert calendar.timegm(time.strptime(rc["requestTime"], CLF)) == rc["requestTimeEpoch"] // 1000
    ident = rc["identity"]
    assert ident["sourceIp"] == "127.0.0.1" and ident["userAgent"] == "sluice-e2e/1.0"
    for k in ("accessKey", "accountId", "caller", "cognitoAuthenticationProvider", "cognitoAuthenticationType",
              "cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId", "user", "userArn"):
        assert ident[k] is None, k
    # No query string, no stage variables, binary body: nulls and base64.
    r = call(url, "POST", "/v1/10", headers=[("Content-Type", "application/octet-stream")], body=b"\x00\xff")
    ev = r.json()["event"]
    assert ev["queryStringParameters"] is None and ev["multiValueQueryStringParameters"] is None
    assert ev["stageVariables"] is None
    assert ev["path"] == "/v1/10" and ev["requestContext"]["stage"] == "$default"
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\x00\xff"


def respond(url, result, path="/respond"):
    return call(url, "POST", path, headers=[("Content-Type", "application/json")],
                body=json.dumps({"result": result}).encode())


def test_response_mapping(gw):
    s = gw.serve()
    url = api(s, "web")
    # A structured answer from Node.js: status, headers, every cookie its own Set-Cookie, base64 body decoded.
    r = call(url, "GET", "/structured")
    assert r.status == 201
    assert r.header("content-type") == "application/octet-stream"
    assert r.header("x-custom") == "custom-value"
    assert r.header("x-number") == "42" and r.header("x-bool") == "true"
    assert r.header_all("set-cookie") == ["session=abc123; Path=/; HttpOnly", "theme=dark; Max-Age=3600"]
    assert r.body == bytes([0, 1, 2, 253, 254, 255])
    assert int(r.header("content-length")) == 6

    # Valid JSON without statusCode: 200 with that JSON as the body (a string stays quoted).
    for path in ("/respond", "/node-respond"):
        for result, text in ((
                {"hello": "world", "n": [1, 2]}, None), ("just text", '"just text"'), (42, "42"),
                ([1, "two"], None), (True, "true")):
            r = respond(url, result, path)
            assert r.status == 200, (path, result, r.body)
            assert r.header("content-type") == "application/json"
            assert r.json() == result
            if text is not None:
                assert r.body.decode().strip() == text

    # statusCode present: the fields are the response.
    r = respond(url, {"statusCode": 404, "headers": {"content-type": "text/plain", "x-a": "b"}, "body": "nope"})
    assert (r.status, r.body, r.header("x-a"), r.header("content-type")) == (404, b"nope", "b", "text/plain")
    r = respond(url, {"statusCode": 302, "headers": {"location": "/elsewhere"}})
    assert r.status == 302 and r.header("location") == "/elsewhere" and r.body == b""
    r = respond(url, {"statusCode": 200, "cookies": ["only=1"], "body": "{\"ok\": true}"})
    assert r.status == 200 and r.header_all("set-cookie") == ["only=1"] and r.json() == {"ok": True}
    r = respond(url, {"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True,
                      "headers": {"content-type": "image/png"}})
    assert r.status == 200 and r.body == b"\x89PNG"

    # A 204 or 304 has no body in HTTP: the function's is dropped, the status kept.
    for code in (204, 304):
        r = respond(url, {"statusCode": code, "headers": {"x-a": "b"}, "body": "dropped"})
        assert (r.status, r.body, r.header("x-a")) == (code, b"", "b")
    # A 1xx is no final answer (a 101 would leave the client waiting): malformed, as below.
    for code in (100, 101, 199):
        r = respond(url, {"statusCode": code, "body": "x"})
        assert r.status == 500 and r.json() == {"message": "Internal Server Error"}, code

    # Invalid output and function errors: 500 Internal Server Error.
    ids = set()
    for r in (respond(url, {"statusCode": "teapot", "body": "x"}), call(url, "GET", "/fail")):
        assert r.status == 500
        assert r.json() == {"message": "Internal Server Error"}
        assert r.header("content-type") == "application/json"
        ids.add(r.header("apigw-requestid"))
    assert len(ids) == 2 and all(REQUEST_ID.match(i) for i in ids)
    s.wait_for_log("GET /fail -> 500")
    s.wait_for_log("POST /respond -> 500")
    line = next(l for l in s.stdout().splitlines() if "POST /respond -> 500" in l and "teapot" in l)
    assert "malformed Lambda proxy response" in line and "200 to 599" in line, line
    line = next(l for l in s.stdout().splitlines() if "GET /fail -> 500" in l)
    assert "function error" in line, line
    # No route: 404 Not Found.
    r = call(url, "DELETE", "/items/1")
    assert r.status == 404 and r.json() == {"message": "Not Found"}
    assert REQUEST_ID.match(r.header("apigw-requestid"))


def test_routing_precedence(gw):
    s = gw.serve()
    url = api(s, "router")

    def route(method, path):
        r = call(url, method, path)
        assert r.status == 200, (method, path, r.body)
        ev = r.json()["event"]
        assert ev["requestContext"]["routeKey"] == ev["routeKey"]
        return ev["routeKey"], ev.get("pathParameters")

    assert route("GET", "/pets/dog/1") == ("GET /pets/dog/1", None)
    assert route("GET", "/pets/dog/2") == ("GET /pets/dog/{id}", {"id": "2"})
    assert route("GET", "/pets/cat/3") == ("GET /pets/{proxy+}", {"proxy": "cat/3"})
    assert route("GET", "/pets/dog/1/toys") == ("GET /pets/{proxy+}", {"proxy": "dog/1/toys"})
    assert route("POST", "/pets/cat/3") == ("ANY /{proxy+}", {"proxy": "pets/cat/3"})
    assert route("DELETE", "/pets/dog/1") == ("ANY /{proxy+}", {"proxy": "pets/dog/1"})
    assert route("GET", "/things/5") == ("GET /things/{id}", {"id": "5"})
    assert route("PUT", "/things/5") == ("ANY /things/{id}", {"id": "5"})
    assert route("PATCH", "/anything/else") == ("ANY /{proxy+}", {"proxy": "anything/else"})
    assert route("GET", "/") == ("$default", None)


def test_cors_answered_by_the_gateway(gw):
    s = gw.serve()
    url = api(s, "corsy")
    origin = "https://app.example.com"

    def tokens(v):
        return sorted(t.strip().lower() for t in (v or "").split(",") if t.strip())

    # Preflight without any OPTIONS route: the gateway answers, the function is not called.
    for path in ("/items", "/no/such/route"):
        r = call(url, "OPTIONS", path, headers=[("Origin", origin), ("Access-Control-Request-Method", "POST"),
                                               ("Access-Control-Request-Headers", "content-type")])
        assert r.status == 204, (path, r.body)
        assert r.body == b""
        assert r.header("access-control-allow-origin") == origin
        assert r.header("access-control-allow-credentials") == "true"
        assert tokens(r.header("access-control-allow-methods")) == ["get", "post"]
        assert tokens(r.header("access-control-allow-headers")) == ["content-type", "x-custom"]
        assert r.header("access-control-max-age") == "600"
        assert REQUEST_ID.match(r.header("apigw-requestid"))
    # An origin or a method that is not allowed gets no CORS headers.
    for hdrs in ([("Origin", "https://evil.example.com"), ("Access-Control-Request-Method", "GET")],
                 [("Origin", origin), ("Access-Control-Request-Method", "DELETE")]):
        r = call(url, "OPTIONS", "/items", headers=hdrs)
        assert r.status == 204
        assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")], r.headers
    assert "cors-fn" not in s.stdout(), "a preflight never reaches the function"

    # Actual requests: the configured headers, and the function's own CORS headers dropped.
    r = call(url, "GET", "/items", headers=[("Origin", origin)])
    assert r.status == 200 and r.json() == {"routeKey": "GET /items"}
    assert r.header_all("access-control-allow-origin") == [origin]
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("access-control-expose-headers") == "x-request-id"
    assert r.header("access-control-allow-methods") is None and r.header("access-control-allow-headers") is None
    assert r.header("x-kept") == "yes"
    r = call(url, "GET", "/items", headers=[("Origin", "https://evil.example.com")])
    assert r.status == 200 and r.header("x-kept") == "yes"
    assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")], r.headers
    r = call(url, "GET", "/items")
    assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")], r.headers
    # An OPTIONS request that is not a preflight is routed as any other (no route here: 404).
    r = call(url, "OPTIONS", "/items")
    assert r.status == 404 and r.json() == {"message": "Not Found"}


def test_integration_timeout_is_503(gw):
    s = gw.serve(args=["--integration-timeout", "1"])
    url = api(s, "web")
    t0 = time.monotonic()
    r = call(url, "GET", "/slow?seconds=4")
    elapsed = time.monotonic() - t0
    assert r.status == 503, r.body
    assert r.json() == {"message": "Service Unavailable"}
    assert r.header("content-type") == "application/json"
    assert REQUEST_ID.match(r.header("apigw-requestid"))
    assert elapsed >= 0.9, "the gateway waits for the integration timeout"
    assert elapsed < 3.8, "and not for the function"
    s.wait_for_log("GET /slow?seconds=4 -> 503")
    assert "integration timed out after 1000 ms" in s.stdout()
