"""HTTP API authorizers end to end: Lambda authorizers with payload 2.0 (simple
responses and IAM policies, identity sources, the result cache) and JWT
authorizers that really verify RS256 and ES256 signatures, issuer, audience,
expiry, not-before and scopes. Tokens are signed here with the openssl CLI: RS256
with the fixture key pair (fixtures/stacks/jwt), ES256 with a P-256 key made for
the test. Real handler processes throughout."""
import base64
import http.client
import json
import re
import shutil
import subprocess
import time
from urllib.parse import urlparse

import pytest

from conftest import FIXTURES

ISSUER = "https://issuer.example.com/"
RSA_KEY = FIXTURES / "stacks" / "jwt" / "private-key.pem"

LAMBDA_STACK = """
name: gwauth
region: eu-west-3
account_id: "210987654321"
defaults: {runtime: python3.11, timeout: 10}
functions:
  echo: {code: py/, handler: handlers.echo}
  simple-authz:
    code: py/
    handler: handlers.authorize_simple
    environment: {CALLS_FILE: "%(calls)s"}
  policy-authz:
    code: py/
    handler: handlers.authorize_policy
    environment: {CALLS_FILE: "%(calls)s"}
apis:
  app:
    type: http
    authorizers:
      simple: &simple
        type: request
        function: simple-authz
        identity_source: $request.header.Authorization
        payload_format: "2.0"
        simple_responses: true
        ttl: 0
      cached:
        type: request
        function: simple-authz
        identity_source: [$request.header.Authorization, $request.querystring.tenant]
        payload_format: "2.0"
        simple_responses: true
        ttl: 300
      policy:
        type: request
        function: policy-authz
        identity_source: $request.header.Authorization
        payload_format: "2.0"
        ttl: 0
    routes:
      GET /private/{id}: {function: echo, authorizer: simple}
      GET /cached/a: {function: echo, authorizer: cached}
      GET /cached/b: {function: echo, authorizer: cached}
      GET /policy/{id}: {function: echo, authorizer: policy}
      GET /public: echo
    stages:
      $default: {}
      live: {variables: {tier: gold}}
  guarded:
    type: http
    cors: {allow_origins: ["https://app.example.com"], allow_methods: [GET]}
    authorizers:
      simple: *simple
    routes:
      $default: {function: echo, authorizer: simple}
"""


@pytest.fixture
def lam(ws):
    ws.copy_function("gateway-http-python", "py")
    ws.calls = ws.path / "authorizer-calls.txt"
    ws.write_stack(LAMBDA_STACK % {"calls": ws.calls})
    return ws


def calls(ws):
    if not ws.calls.exists():
        return []
    return [json.loads(line) for line in ws.calls.read_text().splitlines()]


def get(url, path, headers=()):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path, headers=dict(headers))
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def get_json(url, path, headers=()):
    status, hdrs, body = get(url, path, headers)
    return status, hdrs, json.loads(body)


# ---------------------------------------------------------------------- Lambda authorizers


def test_simple_responses(lam):
    s = lam.serve()
    url = s.endpoints["apis"]["app"]["url"]
    status, hdrs, body = get_json(url, "/private/7?x=1", [("Authorization", "allow-alice"), ("Cookie", "k=v")])
    assert status == 200, body
    ev = body["event"]
    auth = ev["requestContext"]["authorizer"]
    assert set(auth) == {"lambda"}
    ctx = auth["lambda"]
    facts = ctx.pop("facts")
    # The context reaches the integration with its JSON types intact.
    assert ctx == {"user": "alice", "level": 3, "admin": False, "tags": ["a", "b"]}
    # What the authorizer function was given: a payload 2.0 REQUEST event.
    api_id = ev["requestContext"]["apiId"]
    assert facts == {
        "eventType": "REQUEST",
        "eventVersion": "2.0",
        "routeArn": f"arn:aws:execute-api:eu-west-3:210987654321:{api_id}/$default/GET/private/7",
        "identitySource": ["allow-alice"],
        "routeKey": "GET /private/{id}",
        "rawPath": "/private/7",
        "authorization": "allow-alice",
        # What the gateway adds, as the integration gets it; the request's one time.
        "added": {k: ev["headers"][k] for k in ("x-forwarded-for", "x-forwarded-port", "x-forwarded-proto",
                                                "x-amzn-trace-id")},
        "timeEpoch": ev["requestContext"]["timeEpoch"],
    }
    assert facts["added"]["x-forwarded-for"] == "127.0.0.1" and facts["added"]["x-forwarded-proto"] == "http"
    # On a named stage the route ARN names it.
    status, _, body = get_json(url, "/live/private/8", [("Authorization", "allow-bob")])
    assert status == 200
    assert body["event"]["requestContext"]["authorizer"]["lambda"]["facts"]["routeArn"] == \
        f"arn:aws:execute-api:eu-west-3:210987654321:{api_id}/live/GET/private/8"
    assert body["event"]["requestContext"]["authorizer"]["lambda"]["user"] == "bob"
    # isAuthorized false: 403 Forbidden; the integration does not run.
    status, hdrs, body = get_json(url, "/private/7", [("Authorization", "deny")])
    assert (status, body) == (403, {"message": "Forbidden"})
    assert hdrs["content-type"] == "application/json" and hdrs["apigw-requestid"]
    # No identity source: 401 Unauthorized without invoking the authorizer.
    before = len(calls(lam))
    status, hdrs, body = get_json(url, "/private/7")
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert hdrs["apigw-requestid"]
    status, _, body = get_json(url, "/private/7", [("Authorization", "")])
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert len(calls(lam)) == before
    # ttl 0: every request asks the authorizer again.
    n = len(calls(lam))
    for _ in range(2):
        assert get(url, "/private/1", [("Authorization", "allow-carol")])[0] == 200
    assert len(calls(lam)) == n + 2
    # A route without an authorizer has no authorizer in its event.
    status, _, body = get_json(url, "/public")
    assert status == 200 and "authorizer" not in body["event"]["requestContext"]
    s.wait_for_log("GET /private/7 -> 401")
    assert "identity source missing" in s.stdout()


def test_iam_policy_responses(lam):
    s = lam.serve()
    url = s.endpoints["apis"]["app"]["url"]
    status, _, body = get_json(url, "/policy/1", [("Authorization", "allow")])
    assert status == 200, body
    assert body["event"]["requestContext"]["authorizer"]["lambda"] == {"token": "allow", "number": 7, "flag": True}
    # A wildcard resource allows every GET, on any stage.
    for path in ("/policy/2", "/live/policy/3"):
        status, _, body = get_json(url, path, [("Authorization", "wildcard")])
        assert status == 200, (path, body)
    # An explicit Deny, or an Allow for another route only: 403 Forbidden.
    for token in ("deny", "elsewhere"):
        status, _, body = get_json(url, "/policy/1", [("Authorization", token)])
        assert (status, body) == (403, {"message": "Forbidden"}), token
    status, _, body = get_json(url, "/policy/1")
    assert (status, body) == (401, {"message": "Unauthorized"})


def test_results_are_cached_by_identity_source_for_the_ttl(lam):
    s = lam.serve()
    url = s.endpoints["apis"]["app"]["url"]
    first = get_json(url, "/cached/a?tenant=t1", [("Authorization", "allow-dave")])
    assert first[0] == 200, first[2]
    assert len(calls(lam)) == 1
    assert calls(lam)[0]["identitySource"] == ["allow-dave", "t1"]
    # Same identity: the cached answer, on this route and on another route of the same authorizer.
    for path in ("/cached/a?tenant=t1", "/cached/b?tenant=t1", "/cached/a?tenant=t1&other=1"):
        status, _, body = get_json(url, path, [("Authorization", "allow-dave")])
        assert status == 200, (path, body)
        assert body["event"]["requestContext"]["authorizer"]["lambda"]["user"] == "dave"
    assert len(calls(lam)) == 1, "the authorizer ran again despite the cache"
    # Any identity source differing: a new decision.
    assert get(url, "/cached/a?tenant=t2", [("Authorization", "allow-dave")])[0] == 200
    assert get(url, "/cached/a?tenant=t1", [("Authorization", "allow-erin")])[0] == 200
    assert len(calls(lam)) == 3
    # A refusal is cached as well.
    for _ in range(2):
        status, _, body = get_json(url, "/cached/b?tenant=t1", [("Authorization", "deny")])
        assert (status, body) == (403, {"message": "Forbidden"})
    assert len(calls(lam)) == 4
    # A missing identity source: 401, nothing invoked, nothing cached.
    status, _, body = get_json(url, "/cached/a", [("Authorization", "allow-dave")])
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert len(calls(lam)) == 4
    # The cache belongs to a stage: the same identity on another stage asks the authorizer again.
    assert get(url, "/live/cached/a?tenant=t1", [("Authorization", "allow-dave")])[0] == 200
    assert len(calls(lam)) == 5
    assert get(url, "/live/cached/b?tenant=t1", [("Authorization", "allow-dave")])[0] == 200
    assert len(calls(lam)) == 5


def test_a_slow_authorizer_fails_the_request(lam):
    # AWS gives an HTTP API authorizer 10 s, then 500; --integration-timeout lowers it for tests.
    s = lam.serve(args=["--integration-timeout", "1"])
    url = s.endpoints["apis"]["app"]["url"]
    started = time.time()
    status, _, body = get_json(url, "/private/1", [("Authorization", "slow-3-allow")])
    assert (status, body) == (500, {"message": "Internal Server Error"})
    assert time.time() - started < 2.5
    s.wait_for_log("GET /private/1 -> 500")
    assert "did not answer within 1000 ms" in next(l for l in s.stdout().splitlines() if "GET /private/1 -> 500" in l)
    assert get(url, "/private/1", [("Authorization", "slow-0.1-allow")])[0] == 200


def test_a_preflight_caught_by_an_authorized_default_route(lam):
    # With CORS and a $default route that has an authorizer, the route catches OPTIONS: its
    # authorizer answers an unauthenticated preflight (reference §4.9).
    s = lam.serve()
    url = s.endpoints["apis"]["guarded"]["url"]
    preflight = [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "GET")]
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("OPTIONS", "/anything", headers=dict(preflight))
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 401 and json.loads(body) == {"message": "Unauthorized"}
    assert r.getheader("access-control-allow-origin") == "https://app.example.com"
    assert calls(lam) == []


# ---------------------------------------------------------------------- JWT authorizers


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def der_to_jose(der):
    """An ECDSA-Sig-Value (DER) as JOSE's R || S, 32 bytes each."""
    assert der[0] == 0x30
    i = 3 if der[1] & 0x80 else 2  # P-256 signatures are short enough for one length byte
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def sign(claims, key, alg="RS256", kid="fixture-key-1", header_extra=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(header_extra or {})
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = openssl("dgst", "-sha256", "-sign", str(key), data=signing_input.encode())
    if alg == "ES256":
        sig = der_to_jose(sig)
    return signing_input + "." + b64url(sig)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": "web-client", "sub": "user-1", "iat": now, "nbf": now - 5, "exp": now + 600,
         "scope": "read write", "groups": ["a", "b"], "email_verified": True, "n": 5}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


JWT_STACK = """
name: gwjwt
defaults: {runtime: python3.11, timeout: 10}
functions:
  echo: {code: py/, handler: handlers.echo}
apis:
  secure:
    type: http
    authorizers:
      rsa:
        type: jwt
        issuer: "%(issuer)s"
        audience: [web-client, mobile-client]
        jwks_file: jwks.json
      ec:
        type: jwt
        issuer: "%(issuer)s"
        audience: web-client
        jwks: %(ec_jwks)s
      query:
        type: jwt
        issuer: "%(issuer)s"
        audience: web-client
        identity_source: $request.querystring.token
        jwks_file: jwks.json
    routes:
      GET /me: {function: echo, authorizer: rsa}
      GET /admin: {function: echo, authorizer: rsa, authorization_scopes: [admin, superuser]}
      GET /es: {function: echo, authorizer: ec}
      GET /q: {function: echo, authorizer: query}
"""


@pytest.fixture
def jwt(ws):
    ws.copy_function("gateway-http-python", "py")
    shutil.copy(FIXTURES / "stacks" / "jwt" / "jwks.json", ws.path / "jwks.json")
    ec_key = ws.path / "ec-key.pem"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ec_key))
    point = openssl("ec", "-in", str(ec_key), "-pubout", "-outform", "DER")[-65:]
    assert point[0] == 4
    ec_jwks = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec-key-1", "use": "sig", "alg": "ES256",
                         "x": b64url(point[1:33]), "y": b64url(point[33:])}]}
    ws.write_stack(JWT_STACK % {"issuer": ISSUER, "ec_jwks": json.dumps(ec_jwks)})
    ws.ec_key = ec_key
    return ws


def bearer(token):
    return [("Authorization", "Bearer " + token)]


def invalid_token(hdrs):
    """The www-authenticate of a refused token, checked for AWS's shape; returns its description."""
    m = re.fullmatch(r'Bearer scope="" error="invalid_token" error_description="([^"]+)"', hdrs["www-authenticate"])
    assert m, hdrs["www-authenticate"]
    return m.group(1)


def test_jwt_valid_tokens_reach_the_integration_with_their_claims(jwt):
    s = jwt.serve()
    url = s.endpoints["apis"]["secure"]["url"]
    c = claims()
    c["org"] = {"name": "acme", "tier": 2, "tags": ["x", "y"]}
    status, _, body = get_json(url, "/me", bearer(sign(c, RSA_KEY)))
    assert status == 200, body
    auth = body["event"]["requestContext"]["authorizer"]
    # Claims as API Gateway writes them: every value a string, printed as Go prints it (lists as
    # "[a b]", objects as "map[k:v]"); scopes null on a route that names no authorization scopes,
    # whatever the token's scope claim.
    assert auth == {"jwt": {
        "claims": {"iss": ISSUER, "aud": "web-client", "sub": "user-1", "iat": str(c["iat"]), "nbf": str(c["nbf"]),
                   "exp": str(c["exp"]), "scope": "read write", "groups": "[a b]", "email_verified": "true",
                   "n": "5", "org": "map[name:acme tags:[x y] tier:2]"},
        "scopes": None}}
    # Without the "Bearer " prefix too; another accepted audience, in a list.
    status, _, body = get_json(url, "/me", [("Authorization", sign(claims(aud=["other", "mobile-client"]), RSA_KEY))])
    assert status == 200, body
    assert body["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["aud"] == "[other mobile-client]"
    # No scope claim at all: null too.
    status, _, body = get_json(url, "/me", bearer(sign(claims(scope=None), RSA_KEY)))
    assert status == 200 and body["event"]["requestContext"]["authorizer"]["jwt"]["scopes"] is None
    # The token from a query string identity source.
    status, _, body = get_json(url, "/q?token=" + sign(claims(), RSA_KEY))
    assert status == 200, body
    # ES256 with a key generated for this test, from an inline JWKS.
    status, _, body = get_json(url, "/es", bearer(sign(claims(), jwt.ec_key, alg="ES256", kid="ec-key-1")))
    assert status == 200, body
    assert body["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "user-1"
    # AWS verifies RSA signatures only: sluice says so once.
    deadline = time.time() + 5
    while "ES256" not in s.stderr() and time.time() < deadline:
        time.sleep(0.05)
    assert s.stderr().count("accepted an ES256 token") == 1
    assert get(url, "/es", bearer(sign(claims(), jwt.ec_key, alg="ES256", kid="ec-key-1")))[0] == 200
    assert s.stderr().count("accepted an ES256 token") == 1


def test_jwt_refusals(jwt):
    s = jwt.serve()
    url = s.endpoints["apis"]["secure"]["url"]
    now = int(time.time())
    good = sign(claims(), RSA_KEY)
    head, payload, sig = good.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    forged_payload = b64url(json.dumps(claims(sub="admin")).encode())

    refused = {
        "expired": sign(claims(exp=now - 60), RSA_KEY),
        "not yet valid": sign(claims(nbf=now + 600), RSA_KEY),
        "wrong issuer": sign(claims(iss="https://evil.example.com/"), RSA_KEY),
        "wrong audience": sign(claims(aud="someone-else"), RSA_KEY),
        "bad signature": ".".join((head, payload, flipped)),
        "payload swapped": ".".join((head, forged_payload, sig)),
        "no kid": sign(claims(), RSA_KEY, kid=None),
        "unknown kid": sign(claims(), RSA_KEY, kid="other-key"),
        "EC key named for an RSA token": sign(claims(), jwt.ec_key, alg="ES256", kid="fixture-key-1"),
        "not a JWT": "abc.def",
        "alg none": b64url(json.dumps({"alg": "none", "kid": "fixture-key-1"}).encode()) + "." + payload + ".",
    }
    descriptions = {}
    for what, token in refused.items():
        status, hdrs, body = get_json(url, "/me", bearer(token))
        assert (status, body) == (401, {"message": "Unauthorized"}), what
        descriptions[what] = invalid_token(hdrs)
    # AWS's own wording where it is documented (http-api-troubleshooting-jwt).
    assert descriptions["wrong audience"] == "the token does not have a valid audience"
    assert "expired" in descriptions["expired"]
    assert "issuer" in descriptions["wrong issuer"]
    assert "signature" in descriptions["bad signature"] and "signature" in descriptions["payload swapped"]

    # No token at all: 401 with a bare Bearer challenge.
    status, hdrs, body = get_json(url, "/me")
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert hdrs["www-authenticate"] == "Bearer"
    status, hdrs, body = get_json(url, "/q")
    assert (status, body) == (401, {"message": "Unauthorized"}) and hdrs["www-authenticate"] == "Bearer"

    # A valid token without any of the route's scopes: 403 Forbidden.
    status, hdrs, body = get_json(url, "/admin", bearer(good))
    assert (status, body) == (403, {"message": "Forbidden"})
    m = re.fullmatch(r'Bearer scope="admin superuser" error="insufficient_scope" error_description="([^"]+)"',
                     hdrs["www-authenticate"])
    assert m, hdrs["www-authenticate"]
    # One of them is enough.
    status, _, body = get_json(url, "/admin", bearer(sign(claims(scope="read superuser"), RSA_KEY)))
    assert status == 200, body
    assert body["event"]["requestContext"]["authorizer"]["jwt"]["scopes"] == ["read", "superuser"]
    # The ES256 route refuses an RS256 token (its JWKS has no such key).
    status, hdrs, _ = get_json(url, "/es", bearer(good))
    assert status == 401 and invalid_token(hdrs)
    s.wait_for_log("GET /me -> 401")
    assert "JWT rejected: " in s.stdout()
