"""API keys, usage plans and throttling on REST APIs, through the real binary:
api_key_required routes, keys that are missing, unknown, disabled or of a plan
bound to another stage, the key in requestContext.identity, usage plan
throttles and quotas per key, stage-level and route-level throttles, with
AWS's status codes, bodies and error types (reference §4.5, §4.7).

Throttles use burst 1 and check that a second request right after the first
is refused: a bucket of one token refills after 1/rate seconds, so the checks
hold on a slow machine as long as two requests take less than that."""
import http.client
import json
import re
import subprocess
from urllib.parse import urlparse

import pytest

STACK = """
name: keyed
defaults: {runtime: python3.11, memory: 128, timeout: 5}
functions:
  echo: {code: fn/, handler: handlers.echo}
  authz: {code: fn/, handler: authorizers.token}
apis:
  shop:
    type: rest
    routes:
      GET /open: echo
      GET /keyed: {function: echo, api_key_required: true}
      GET /keyed/{id}: {function: echo, api_key_required: true}
      GET /route-limited: {function: echo, throttle: {rate: 0.2, burst: 1}}
      GET /stage-limited: echo
    stages:
      dev:
        route_throttles:
          GET /stage-limited: {rate: 0.2, burst: 1}
      other: {}
      strict:
        throttle: {rate: 0.2, burst: 1}
  back:
    type: rest
    routes:
      GET /keyed: {function: echo, api_key_required: true}
    stages:
      dev: {}
  sourced:
    type: rest
    api_key_source: AUTHORIZER
    authorizers:
      keys: {type: token, function: authz, ttl: 0}
    routes:
      GET /keyed: {function: echo, api_key_required: true, authorizer: keys}
    stages:
      dev: {}
api_keys:
  gold: {value: gold-key-0123456789abcdef}
  silver: {value: silver-key-0123456789abcdef}
  slow: {value: slow-key-0123456789abcdef}
  metered: {value: metered-key-0123456789abcdef}
  stranger: {value: stranger-key-0123456789abcdef}
  retired: {value: retired-key-0123456789abcdef, enabled: false}
usage_plans:
  unlimited:
    stages: [shop/dev, shop/strict, back/dev, sourced/dev]
    keys: [gold, retired]
  routes:
    stages: [shop/dev]
    keys: [silver]
    route_throttles:
      shop/dev/GET /keyed/{id}: {rate: 0.2, burst: 1}
  throttled:
    stages: [shop/dev, back/dev]
    throttle: {rate: 0.5, burst: 1}
    keys: [slow]
  quota:
    stages: [shop/dev]
    quota: {limit: 2, period: DAY}
    keys: [metered]
  elsewhere:
    stages: [shop/other]
    keys: [stranger]
"""

FORBIDDEN = b'{"message":"Forbidden"}'
TOO_MANY = b'{"message":"Too Many Requests"}'
LIMIT = b'{"message":"Limit Exceeded"}'


class Client:
    """One keep-alive connection to an API."""

    def __init__(self, base):
        u = urlparse(base)
        self.base = base
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def get(self, target, key=None, headers=None):
        h = dict(headers or {})
        if key is not None:
            h["x-api-key"] = key
        self.conn.request("GET", target, headers=h)
        r = self.conn.getresponse()
        body = r.read()
        r.body = body
        return r

    def close(self):
        self.conn.close()


def check_error(r, status, body, error_type):
    assert (r.status, r.body) == (status, body), (r.status, r.getheaders(), r.body)
    assert r.getheader("x-amzn-ErrorType") == error_type, r.getheaders()
    assert r.getheader("Content-Type") == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", r.getheader("x-amzn-RequestId") or "")
    assert r.getheader("x-amz-apigw-id")


def event_of(r):
    assert r.status == 200, (r.status, r.getheaders(), r.body)
    return json.loads(r.body)["event"]


@pytest.fixture
def keyed(ws):
    ws.copy_function("gateway-rest-echo", "fn")
    ws.write_stack(STACK)
    s = ws.serve()
    s.shop = Client(s.endpoints["apis"]["shop"]["url"])
    s.back = Client(s.endpoints["apis"]["back"]["url"])
    yield s
    s.shop.close()
    s.back.close()


def log_line(s, text):
    s.wait_for_log(text)
    return next(line for line in s.stdout().splitlines() if text in line)


def test_api_keys_are_required_where_the_route_says(keyed):
    c = keyed.shop
    # Routes without api_key_required ignore keys entirely.
    e = event_of(c.get("/dev/open"))
    assert "apiKey" not in e["requestContext"]["identity"] and "apiKeyId" not in e["requestContext"]["identity"]

    # Missing, empty, unknown, disabled, or a key whose plan is not bound to this stage.
    for key in [None, "", "not-a-key-0123456789abcdef", "retired-key-0123456789abcdef",
                "stranger-key-0123456789abcdef", "GOLD-KEY-0123456789ABCDEF"]:
        check_error(c.get("/dev/keyed", key), 403, FORBIDDEN, "ForbiddenException")
    assert "API key missing" in log_line(keyed, "GET /dev/keyed -> 403")

    # A valid key: 200, the key and its id in requestContext.identity.
    r = c.get("/dev/keyed", "gold-key-0123456789abcdef")
    identity = event_of(r)["requestContext"]["identity"]
    assert identity["apiKey"] == "gold-key-0123456789abcdef"
    assert re.fullmatch(r"[a-z0-9]{10}", identity["apiKeyId"]), identity
    assert r.getheader("x-amzn-ErrorType") is None
    again = event_of(c.get("/dev/keyed/5", "gold-key-0123456789abcdef"))["requestContext"]["identity"]
    assert again["apiKeyId"] == identity["apiKeyId"], "one key, one id"
    silver = event_of(c.get("/dev/keyed", "silver-key-0123456789abcdef"))["requestContext"]["identity"]
    assert silver["apiKey"] == "silver-key-0123456789abcdef" and silver["apiKeyId"] != identity["apiKeyId"]

    # The header name is case-insensitive, as HTTP header names are.
    assert c.get("/dev/keyed", headers={"X-API-Key": "gold-key-0123456789abcdef"}).status == 200
    # A key is valid on the stages its plan covers, and only there.
    assert c.get("/other/keyed", "stranger-key-0123456789abcdef").status == 200
    check_error(c.get("/other/keyed", "gold-key-0123456789abcdef"), 403, FORBIDDEN, "ForbiddenException")
    assert keyed.back.get("/dev/keyed", "gold-key-0123456789abcdef").status == 200
    check_error(keyed.back.get("/dev/keyed", "silver-key-0123456789abcdef"), 403, FORBIDDEN, "ForbiddenException")

    # curl, as a client script would send it
    url = keyed.endpoints["apis"]["shop"]["url"]
    out = subprocess.run(["curl", "-s", "-i", url + "/dev/keyed"], capture_output=True, timeout=60)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403") and body == FORBIDDEN
    assert b"\r\nx-amzn-ErrorType: ForbiddenException" in head
    out = subprocess.run(["curl", "-s", "-H", "x-api-key: gold-key-0123456789abcdef", url + "/dev/keyed"],
                         capture_output=True, timeout=60)
    assert json.loads(out.stdout)["event"]["requestContext"]["identity"]["apiKey"] == "gold-key-0123456789abcdef"


def test_usage_plan_throttle_is_per_key(keyed):
    c = keyed.shop
    assert c.get("/dev/keyed", "slow-key-0123456789abcdef").status == 200
    r = c.get("/dev/keyed", "slow-key-0123456789abcdef")
    check_error(r, 429, TOO_MANY, "TooManyRequestsException")
    assert "throttled" in log_line(keyed, "GET /dev/keyed -> 429")
    # The plan's bucket is the key's across the plan's stages and APIs ...
    check_error(keyed.back.get("/dev/keyed", "slow-key-0123456789abcdef"), 429, TOO_MANY, "TooManyRequestsException")
    # ... and nobody else's.
    for _ in range(3):
        assert c.get("/dev/keyed", "gold-key-0123456789abcdef").status == 200
    assert c.get("/dev/open").status == 200
    # A plan's per-method throttle applies to that method only.
    assert c.get("/dev/keyed/1", "silver-key-0123456789abcdef").status == 200
    check_error(c.get("/dev/keyed/2", "silver-key-0123456789abcdef"), 429, TOO_MANY, "TooManyRequestsException")
    assert c.get("/dev/keyed", "silver-key-0123456789abcdef").status == 200
    assert c.get("/dev/keyed", "silver-key-0123456789abcdef").status == 200


def test_usage_plan_quota(keyed):
    c = keyed.shop
    assert c.get("/dev/keyed", "metered-key-0123456789abcdef").status == 200
    assert c.get("/dev/keyed/1", "metered-key-0123456789abcdef").status == 200
    for _ in range(2):
        check_error(c.get("/dev/keyed", "metered-key-0123456789abcdef"), 429, LIMIT, "LimitExceededException")
    assert "quota exceeded" in log_line(keyed, "GET /dev/keyed -> 429")
    # Refused requests never reached the function: two invocations in all.
    starts = re.findall(r"^\[echo [0-9a-f]{8}\] START RequestId", keyed.stdout(), re.M)
    assert len(starts) == 2, keyed.stdout()[-3000:]
    # Another key has its own quota.
    assert c.get("/dev/keyed", "gold-key-0123456789abcdef").status == 200


def test_stage_and_route_throttles(keyed):
    c = keyed.shop
    # A route's own throttle
    assert c.get("/dev/route-limited").status == 200
    check_error(c.get("/dev/route-limited"), 429, TOO_MANY, "TooManyRequestsException")
    # A stage's setting for one route
    assert c.get("/dev/stage-limited").status == 200
    check_error(c.get("/dev/stage-limited"), 429, TOO_MANY, "TooManyRequestsException")
    # Each method has its bucket: the other routes of the stage are untouched ...
    for _ in range(3):
        assert c.get("/dev/open").status == 200
    # ... and the same route on another stage too.
    assert c.get("/other/stage-limited").status == 200
    assert c.get("/other/stage-limited").status == 200
    # A stage default throttle: per method, for every method of the stage.
    assert c.get("/strict/open").status == 200
    check_error(c.get("/strict/open"), 429, TOO_MANY, "TooManyRequestsException")
    assert c.get("/strict/stage-limited").status == 200
    check_error(c.get("/strict/stage-limited"), 429, TOO_MANY, "TooManyRequestsException")
    # Throttling comes after the key check: a keyless request is refused as Forbidden.
    check_error(c.get("/strict/keyed"), 403, FORBIDDEN, "ForbiddenException")
    assert c.get("/strict/keyed", "gold-key-0123456789abcdef").status == 200
    check_error(c.get("/strict/keyed", "gold-key-0123456789abcdef"), 429, TOO_MANY, "TooManyRequestsException")


def test_keys_from_the_authorizer(keyed):
    # api_key_source AUTHORIZER: the key is the usageIdentifierKey the authorizer returns; an
    # x-api-key header counts for nothing there.
    c = Client(keyed.endpoints["apis"]["sourced"]["url"])
    try:
        e = event_of(c.get("/dev/keyed", headers={"Authorization": "Bearer key-gold-key-0123456789abcdef"}))
        assert e["requestContext"]["identity"]["apiKey"] == "gold-key-0123456789abcdef"
        assert e["requestContext"]["authorizer"]["principalId"] == "user-keyed"
        check_error(c.get("/dev/keyed", "gold-key-0123456789abcdef", headers={"Authorization": "Bearer allow-x"}),
                    403, FORBIDDEN, "ForbiddenException")
        assert "API key missing (the authorizer's usageIdentifierKey)" in log_line(keyed, "GET /dev/keyed -> 403")
        for key in ("silver-key-0123456789abcdef", "retired-key-0123456789abcdef"):  # another plan's; disabled
            check_error(c.get("/dev/keyed", headers={"Authorization": "Bearer key-" + key}), 403, FORBIDDEN,
                        "ForbiddenException")
    finally:
        c.close()


def test_the_account_throttle_can_be_raised_or_lowered(ws):
    # AWS's default account-level limit (10,000 rps, burst 5,000) is a quota an account can have
    # changed; --account-throttle sets it. Here burst 2 at 0.2 rps: every API of the account
    # shares the one bucket, so the third request is throttled whichever API it reaches.
    ws.copy_function("gateway-rest-echo", "fn")
    ws.write_stack(STACK)
    s = ws.serve(["--account-throttle", "0.2,2"])
    shop = Client(s.endpoints["apis"]["shop"]["url"])
    back = Client(s.endpoints["apis"]["back"]["url"])
    try:
        assert shop.get("/dev/open").status == 200
        assert shop.get("/other/open").status == 200
        check_error(back.get("/dev/keyed", "gold-key-0123456789abcdef"), 429, TOO_MANY, "TooManyRequestsException")
        check_error(shop.get("/dev/open"), 429, TOO_MANY, "TooManyRequestsException")
    finally:
        shop.close()
        back.close()
    for bad in ("100", "0,5", "10,0", "x,1", "10,5,1"):
        p = ws.run("serve", "--port", "0", "--lambda-port", "0", "--account-throttle", bad, timeout=30)
        assert p.returncode == 2 and b"--account-throttle expects RATE,BURST" in p.stderr, (bad, p.stderr)
