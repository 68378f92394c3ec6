"""Differential test: sluice's SigV4 signer (through tests/deploy/sigv4_probe, the same
add_auth the deploy client uses) against botocore's SigV4Auth / S3SigV4Auth on many
generated requests: methods, paths needing encoding (unicode, reserved characters, dot
segments, repeated slashes), query strings with repeated and empty keys and values,
unsigned-payload S3 uploads, session tokens, services lambda/s3/iam/apigateway/sts/events,
at fixed timestamps."""
import datetime
import json
import os
import random
import subprocess
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ROOT = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build"))
PROBE = BUILD / "tests" / "deploy" / "sigv4_probe"

SEGMENT_CHARS = list("abcXYZ019-_.~ :+=&?#%$@*'!(),;[]\"<>^`{|}") + ["é", "ሴ", "😀", "ü", "\u00a0"]
QUERY_CHARS = SEGMENT_CHARS + ["/", "\\"]
SERVICES = {
    "lambda": "lambda.{r}.amazonaws.com",
    "s3": "s3.{r}.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "apigateway": "apigateway.{r}.amazonaws.com",
    "sts": "sts.{r}.amazonaws.com",
    "events": "events.{r}.amazonaws.com",
}
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"]


def rand_text(rng, chars, lo=0, hi=8):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def gen_request(rng, i):
    service = rng.choice(list(SERVICES))
    region = "us-east-1" if service == "iam" else rng.choice(REGIONS)
    segments = []
    for _ in range(rng.randint(0, 5)):
        kind = rng.random()
        if kind < 0.08:
            segments.append("")  # repeated slash
        elif kind < 0.14 and service != "s3":
            segments.append(rng.choice([".", ".."]))
        else:
            segments.append(rand_text(rng, SEGMENT_CHARS, 1, 10))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    query = []
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
        key = rng.choice(["a", "A", "b", "Param", "list", "x-id", "", rand_text(rng, QUERY_CHARS, 1, 6)])
        value = rng.choice(["", "1", "z", "a b", rand_text(rng, QUERY_CHARS, 0, 8)])
        query.append([key, value])
        if rng.random() < 0.3:
            query.append([key, rng.choice(["", "0", value + "x"])])  # repeated key
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])
    body = ""
    if method in ("POST", "PUT", "PATCH") and rng.random() < 0.8:
        body = rand_text(rng, SEGMENT_CHARS + ["\n", "{", "}"], 0, 200)
    headers = []
    if body:
        headers.append(["Content-Type", rng.choice(["application/json", "application/x-amz-json-1.1",
                                                     "application/x-www-form-urlencoded; charset=utf-8"])])
    if rng.random() < 0.3:
        headers.append(["X-Amz-Target", "AWSEvents.PutRule"])
    if rng.random() < 0.3:
        headers.append(["X-Custom-Header", "  spaced   out\tvalue  "])
    if rng.random() < 0.3:
        headers.append(["User-Agent", "sluice-test/1.0"])  # never signed
    if rng.random() < 0.2:
        headers.append(["x-amz-meta-Owner", "Ünïcode value"])
    token = rng.choice(["", "", "FwoGZXIvYXdzEJr//////////wEaDOTOKEN+/=" + str(i)])
    unsigned = service == "s3" and method in ("PUT", "POST") and rng.random() < 0.6
    when = datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 400 * 86400))
    return {
        "method": method,
        "host": SERVICES[service].format(r=region),
        "path": path,
        "query": query,
        "headers": headers,
        "body": body,
        "unsigned_payload": unsigned,
        "service": service,
        "region": region,
        "access_key": rng.choice(["AKIDEXAMPLE", "ASIAXXXXXXXXXXXXXXXX"]),
        "secret_key": rng.choice(["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "s3cr3t+/="]),
        "token": token,
        "amz_date": when.strftime("%Y%m%dT%H%M%SZ"),
        "_when": when,
    }


def botocore_sign(r):
    url = "https://" + r["host"] + quote(r["path"], safe="/~")
    if r["query"]:
        url += "?" + "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~") for k, v in r["query"])
    headers = {}
    request = AWSRequest(method=r["method"], url=url, data=r["body"].encode("utf-8"))
    for k, v in r["headers"]:
        request.headers[k] = v
    creds = Credentials(r["access_key"], r["secret_key"], r["token"] or None)
    if r["service"] == "s3":
        signer = botocore.auth.S3SigV4Auth(creds, "s3", r["region"])
        request.context["client_config"] = Config(s3={"payload_signing_enabled": not r["unsigned_payload"]})
    else:
        signer = botocore.auth.SigV4Auth(creds, r["service"], r["region"])
        if r["unsigned_payload"]:
            request.context["payload_signing_enabled"] = False
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=r["_when"]):
        signer.add_auth(request)
        canonical = signer.canonical_request(request)
    del headers
    return request.headers["Authorization"], canonical


def run_probe(requests):
    assert PROBE.exists(), f"build the probe first: cmake --build build --target sigv4_probe ({PROBE})"
    lines = "\n".join(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) for r in requests) + "\n"
    out = subprocess.run([str(PROBE)], input=lines.encode(), capture_output=True, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


def test_generated_requests_match_botocore():
    rng = random.Random(20240517)
    requests = [gen_request(rng, i) for i in range(600)]
    answers = run_probe(requests)
    assert len(answers) == len(requests)
    mismatches = []
    for r, ours in zip(requests, answers):
        theirs, canonical = botocore_sign(r)
        if ours["authorization"] != theirs:
            mismatches.append((r, ours["canonical_request"], canonical))
    assert not mismatches, "first mismatch:\nrequest %r\nours:\n%s\nbotocore:\n%s" % mismatches[0]
    # The sample really covers what matters.
    assert sum(r["service"] == "s3" and r["unsigned_payload"] for r in requests) > 20
    assert sum(bool(r["token"]) for r in requests) > 100
    assert sum(len({k for k, _ in r["query"]}) < len(r["query"]) for r in requests) > 20
    assert sum(any(v == "" for _, v in r["query"]) for r in requests) > 20
    assert sum(any(ord(c) > 127 for c in r["path"]) for r in requests) > 100


def test_known_lambda_and_s3_requests():
    base = {"headers": [], "body": "", "unsigned_payload": False, "access_key": "AKID", "secret_key": "SECRET",
            "token": "", "amz_date": "20240517T123456Z", "_when": datetime.datetime(2024, 5, 17, 12, 34, 56)}
    requests = [
        dict(base, method="POST", host="lambda.eu-west-3.amazonaws.com",
             path="/2015-03-31/functions/arn:aws:lambda:eu-west-3:123456789012:function:f:live/invocations",
             query=[], service="lambda", region="eu-west-3", body='{"a": 1}'),
        dict(base, method="PUT", host="s3.eu-west-3.amazonaws.com", path="/bucket/packages/ab cd/pkg+1.zip",
             query=[], service="s3", region="eu-west-3", body="PK\u0003\u0004", unsigned_payload=True,
             token="TOKEN"),
        dict(base, method="GET", host="s3.eu-west-3.amazonaws.com", path="/bucket",
             query=[["list-type", "2"], ["prefix", ""], ["prefix", "a/b"]], service="s3", region="eu-west-3"),
        dict(base, method="GET", host="iam.amazonaws.com", path="/",
             query=[["Action", "GetRole"], ["RoleName", "r"], ["Version", "2010-05-08"]], service="iam",
             region="us-east-1"),
    ]
    for r, ours in zip(requests, run_probe(requests)):
        theirs, canonical = botocore_sign(r)
        assert ours["authorization"] == theirs, (ours["canonical_request"], canonical)
    # Lambda's ARN path is encoded twice in the canonical request, once on the wire.
    ours = run_probe(requests[:1])[0]
    assert "arn%3Aaws%3Alambda" in ours["wire_path"]
    assert "arn%253Aaws%253Alambda" in ours["canonical_request"]
