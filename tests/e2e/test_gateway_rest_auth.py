"""REST API Lambda authorizers through the real binary and real authorizer
functions: TOKEN (with an identity validation expression) and REQUEST
(header + query string identity sources), the events they receive, what
their answers mean (Allow with context, explicit and implicit Deny,
"Unauthorized", failures), and the result cache keyed by identity, whose
cached policy is evaluated against each later request's method ARN.

AWS's answers: 401 {"message":"Unauthorized"} (UnauthorizedException), 403
{"Message":"User is not authorized to access this resource[ with an explicit
deny]"} (AccessDeniedException: note the capital M, as real responses show
it), 500 {"message": null} (AuthorizerConfigurationException); real captured
responses also carry X-Amzn-Trace-Id on these answers."""
import http.client
import itertools
import json
import re
import subprocess
from urllib.parse import urlparse

import pytest

STACK = """
name: guarded
region: eu-west-3
account_id: "210987654321"
defaults: {runtime: python3.11, memory: 128, timeout: 5}
functions:
  echo: {code: fn/, handler: handlers.echo}
  authz: {code: fn/, handler: authorizers.token}
  tenants: {code: fn/, handler: authorizers.request}
apis:
  shop:
    type: rest
    authorizers:
      tok:
        type: token
        function: authz
        identity_validation_expression: "^Bearer [-a-z]+$"
        ttl: 0
      cached:
        type: token
        function: authz
        identity_source: method.request.header.X-Token
        ttl: 300
      req:
        type: request
        function: tenants
        identity_source: [method.request.header.X-Tenant, method.request.querystring.tenant]
        ttl: 300
    routes:
      GET /pets/{id}: {function: echo, authorizer: tok}
      ANY /cached/{proxy+}: {function: echo, authorizer: cached}
      GET /tenants/{id}: {function: echo, authorizer: req}
      GET /public: echo
    stages:
      test: {variables: {env: test}}
      other: {}
"""

UNAUTHORIZED = b'{"message":"Unauthorized"}'
DENIED = b'{"Message":"User is not authorized to access this resource"}'
DENIED_EXPLICIT = b'{"Message":"User is not authorized to access this resource with an explicit deny"}'
CONFIG_ERROR = b'{"message": null}'
TRACE_RE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}")
REQUEST_EVENT_KEYS = {"type", "methodArn", "resource", "path", "httpMethod", "headers", "multiValueHeaders",
                      "queryStringParameters", "multiValueQueryStringParameters", "pathParameters",
                      "stageVariables", "requestContext"}


class Api:
    """A keep-alive client that numbers its requests (?n=...) so that each one
    has its own access-log line to wait for."""

    def __init__(self, server):
        self.s = server
        u = urlparse(server.endpoints["apis"]["shop"]["url"])
        self.url = server.endpoints["apis"]["shop"]["url"]
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.n = itertools.count(1)

    def send(self, method, path, headers=None, query=""):
        target = f"{path}?{query + '&' if query else ''}n={next(self.n)}"
        self.conn.request(method, target, headers=headers or {})
        r = self.conn.getresponse()
        r.body = r.read()
        r.target = target
        # Everything this request caused (authorizer START lines included) is
        # logged before its access-log line.
        self.s.wait_for_log(f"{method} {target} -> {r.status}")
        return r

    def starts(self, function):
        return len(re.findall(rf"^\[{function} [0-9a-f]{{8}}\] START RequestId", self.s.stdout(), re.M))

    def line(self, r):
        return next(l for l in self.s.stdout().splitlines() if f" {r.target} -> " in l)


@pytest.fixture
def api(ws):
    ws.copy_function("gateway-rest-echo", "fn")
    ws.write_stack(STACK)
    a = Api(ws.serve())
    yield a
    a.conn.close()


def refused(r, status, body, error_type):
    assert (r.status, r.body) == (status, body), (r.status, r.getheaders(), r.body)
    assert r.getheader("x-amzn-ErrorType") == error_type, r.getheaders()
    assert r.getheader("Content-Type") == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", r.getheader("x-amzn-RequestId") or "")
    assert r.getheader("x-amz-apigw-id")
    assert TRACE_RE.match(r.getheader("X-Amzn-Trace-Id") or ""), r.getheaders()


def allowed(r):
    assert r.status == 200, (r.status, r.getheaders(), r.body)
    return json.loads(r.body)["event"]


def test_token_authorizer(api):
    # No token, or one the validation expression refuses: 401, the function is not invoked.
    refused(api.send("GET", "/test/pets/1"), 401, UNAUTHORIZED, "UnauthorizedException")
    refused(api.send("GET", "/test/pets/1", {"Authorization": ""}), 401, UNAUTHORIZED, "UnauthorizedException")
    r = api.send("GET", "/test/pets/1", {"Authorization": "Bearer NOT-valid!"})
    refused(r, 401, UNAUTHORIZED, "UnauthorizedException")
    assert "identity source missing" in api.line(r)
    assert api.starts("authz") == 0

    # Allow: the route runs with the principal and the context, values as strings.
    r = api.send("GET", "/test/pets/1", {"Authorization": "Bearer allow-alice"})
    event = allowed(r)
    assert api.starts("authz") == 1
    auth = event["requestContext"]["authorizer"]
    authorizer_event = json.loads(auth.pop("event"))
    latency = auth.pop("integrationLatency")
    assert isinstance(latency, int) and latency >= 0
    assert auth == {"principalId": "user-allow-alice", "stringKey": "value", "numberKey": "123", "booleanKey": "true"}
    api_id = event["requestContext"]["apiId"]
    assert authorizer_event == {
        "type": "TOKEN", "authorizationToken": "Bearer allow-alice",
        "methodArn": f"arn:aws:execute-api:eu-west-3:210987654321:{api_id}/test/GET/pets/1"}
    # ttl 0: no cache, every request asks again.
    allowed(api.send("GET", "/test/pets/2", {"Authorization": "Bearer allow-alice"}))
    assert api.starts("authz") == 2

    # The function raising exactly "Unauthorized": 401.
    refused(api.send("GET", "/test/pets/1", {"Authorization": "Bearer unauthorized"}), 401, UNAUTHORIZED,
            "UnauthorizedException")
    # Explicit Deny, and an Allow that does not cover this method ARN (implicit deny).
    refused(api.send("GET", "/test/pets/1", {"Authorization": "Bearer deny"}), 403, DENIED_EXPLICIT,
            "AccessDeniedException")
    refused(api.send("GET", "/test/pets/1", {"Authorization": "Bearer elsewhere"}), 403, DENIED,
            "AccessDeniedException")
    # A wildcard resource covers it.
    assert allowed(api.send("GET", "/test/pets/3", {"Authorization": "Bearer wildcard"}))["requestContext"][
        "authorizer"]["principalId"] == "user-wildcard"
    # No policy, a failing function, a context value that is an object: 500.
    for token in ("no-policy", "crash", "nested-context"):
        r = api.send("GET", "/test/pets/1", {"Authorization": f"Bearer {token}"})
        refused(r, 500, CONFIG_ERROR, "AuthorizerConfigurationException")
        assert "failed" in api.line(r), api.line(r)
    assert api.starts("authz") == 2 + 7
    # Routes without an authorizer do not call it.
    assert "authorizer" not in allowed(api.send("GET", "/test/public"))["requestContext"]
    assert api.starts("authz") == 9

    # curl sees the same answers
    out = subprocess.run(["curl", "-s", "-i", "-H", "Authorization: Bearer deny", api.url + "/test/pets/9"],
                         capture_output=True, timeout=60)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403") and body == DENIED_EXPLICIT
    assert b"\r\nx-amzn-ErrorType: AccessDeniedException" in head


def test_cached_token_policy_is_evaluated_per_request(api):
    bob = {"X-Token": "allow-bob"}
    e = allowed(api.send("GET", "/test/cached/a", bob))
    assert e["requestContext"]["authorizer"]["principalId"] == "user-allow-bob"
    assert api.starts("authz") == 1
    # Same token within the TTL: the cached answer, no invocation.
    e = allowed(api.send("GET", "/test/cached/a", bob))
    assert api.starts("authz") == 1
    assert e["requestContext"]["authorizer"]["principalId"] == "user-allow-bob"
    assert isinstance(e["requestContext"]["authorizer"]["integrationLatency"], int)
    # The cached policy names GET /cached/a: another path or method is denied, as on AWS.
    refused(api.send("GET", "/test/cached/b", bob), 403, DENIED, "AccessDeniedException")
    refused(api.send("POST", "/test/cached/a", bob), 403, DENIED, "AccessDeniedException")
    assert api.starts("authz") == 1
    # Another token is another cache entry.
    allowed(api.send("GET", "/test/cached/b", {"X-Token": "allow-carol"}))
    assert api.starts("authz") == 2
    # A wildcard policy, once cached, covers every GET.
    wild = {"X-Token": "wildcard"}
    for path in ("/test/cached/x", "/test/cached/y/z", "/test/cached/a"):
        allowed(api.send("GET", path, wild))
    assert api.starts("authz") == 3
    refused(api.send("DELETE", "/test/cached/x", wild), 403, DENIED, "AccessDeniedException")
    # A Deny is cached too.
    for _ in range(2):
        refused(api.send("GET", "/test/cached/a", {"X-Token": "deny"}), 403, DENIED_EXPLICIT, "AccessDeniedException")
    assert api.starts("authz") == 4
    # Missing identity: 401 before any cache or invocation.
    refused(api.send("GET", "/test/cached/a", {"Authorization": "allow-bob"}), 401, UNAUTHORIZED,
            "UnauthorizedException")
    assert api.starts("authz") == 4
    # The cache belongs to a stage (FlushStageAuthorizersCache flushes one stage's): the same
    # token on another stage is a new decision.
    allowed(api.send("GET", "/other/cached/x", wild))
    assert api.starts("authz") == 5
    allowed(api.send("GET", "/other/cached/y", wild))
    assert api.starts("authz") == 5
    # The ARN of a method with authorization may not exceed 1,600 bytes: 414, nothing invoked.
    r = api.send("GET", "/test/cached/" + "a" * 1700, wild)
    assert r.status == 414, r.body
    assert api.starts("authz") == 5


def test_request_authorizer(api):
    # Any identity source missing: 401 without invoking.
    refused(api.send("GET", "/test/tenants/7", query="tenant=acme"), 401, UNAUTHORIZED, "UnauthorizedException")
    refused(api.send("GET", "/test/tenants/7", {"X-Tenant": "acme"}), 401, UNAUTHORIZED, "UnauthorizedException")
    refused(api.send("GET", "/test/tenants/7", {"X-Tenant": "acme"}, query="tenant="), 401, UNAUTHORIZED,
            "UnauthorizedException")
    assert api.starts("tenants") == 0

    r = api.send("GET", "/test/tenants/7", {"X-Tenant": "acme", "User-Agent": "tenant-client"}, query="tenant=acme")
    event = allowed(r)
    assert api.starts("tenants") == 1
    auth = event["requestContext"]["authorizer"]
    ev = json.loads(auth.pop("event"))
    assert isinstance(auth.pop("integrationLatency"), int)
    assert auth == {"principalId": "tenant-acme", "tenant": "acme"}
    # The REQUEST event: the request as the proxy event shows it, plus type and methodArn.
    api_id = event["requestContext"]["apiId"]
    assert set(ev) == REQUEST_EVENT_KEYS, set(ev) ^ REQUEST_EVENT_KEYS
    assert ev["type"] == "REQUEST"
    assert ev["methodArn"] == f"arn:aws:execute-api:eu-west-3:210987654321:{api_id}/test/GET/tenants/7"
    assert (ev["resource"], ev["path"], ev["httpMethod"]) == ("/tenants/{id}", "/tenants/7", "GET")
    assert ev["headers"]["X-Tenant"] == "acme" and ev["multiValueHeaders"]["X-Tenant"] == ["acme"]
    assert ev["headers"]["User-Agent"] == "tenant-client"
    assert ev["queryStringParameters"]["tenant"] == "acme"
    assert ev["multiValueQueryStringParameters"]["tenant"] == ["acme"]
    assert ev["pathParameters"] == {"id": "7"}
    assert ev["stageVariables"] == {"env": "test"}
    rc = ev["requestContext"]
    assert (rc["stage"], rc["resourcePath"], rc["httpMethod"], rc["path"]) == ("test", "/tenants/{id}", "GET",
                                                                                 "/test/tenants/7")
    assert rc["requestId"] == r.getheader("x-amzn-RequestId") == event["requestContext"]["requestId"]
    assert rc["accountId"] == "210987654321" and rc["apiId"] == api_id
    assert rc["identity"]["sourceIp"] == "127.0.0.1" and rc["identity"]["userAgent"] == "tenant-client"
    # One request, one id and one time, in the authorizer's event and the integration's alike.
    assert rc["extendedRequestId"] == event["requestContext"]["extendedRequestId"] == r.getheader("x-amz-apigw-id")
    assert rc["requestTimeEpoch"] == event["requestContext"]["requestTimeEpoch"]
    # The headers the gateway adds reach the authorizer too (AWS's REQUEST input example).
    port = str(urlparse(api.url).port)
    for name, value in (("X-Forwarded-For", "127.0.0.1"), ("X-Forwarded-Port", port), ("X-Forwarded-Proto", "http"),
                        ("X-Amzn-Trace-Id", event["headers"]["X-Amzn-Trace-Id"])):
        assert (ev["headers"][name], ev["multiValueHeaders"][name]) == (value, [value]), name

    # The same identity sources: cached. Other values: another entry.
    allowed(api.send("GET", "/test/tenants/7", {"X-Tenant": "acme"}, query="tenant=acme"))
    assert api.starts("tenants") == 1
    refused(api.send("GET", "/test/tenants/7", {"X-Tenant": "acme"}, query="tenant=other"), 403, DENIED_EXPLICIT,
            "AccessDeniedException")
    assert api.starts("tenants") == 2
    # Values that hold a comma are cached apart: ("q,r", "q,r") is allowed, ("q", "r,q,r") is not,
    # though both read "q,r,q,r" once joined with commas.
    allowed(api.send("GET", "/test/tenants/7", {"X-Tenant": "q,r"}, query="tenant=q,r"))
    assert api.starts("tenants") == 3
    refused(api.send("GET", "/test/tenants/7", {"X-Tenant": "q"}, query="tenant=r,q,r"), 403, DENIED_EXPLICIT,
            "AccessDeniedException")
    assert api.starts("tenants") == 4
    # The cached Allow names /tenants/7 only.
    refused(api.send("GET", "/test/tenants/8", {"X-Tenant": "acme"}, query="tenant=acme"), 403, DENIED,
            "AccessDeniedException")
    assert api.starts("tenants") == 4
