"""End to end: sluice's AWS client (deploy/aws) through tests/deploy/aws_call against a real
moto_server on an ephemeral loopback port, a scripted local HTTP server (throttling,
failures, rejected credentials, timeouts, keep-alive) and a local TLS server with a
self-signed certificate (verification refused, then accepted with AWS_CA_BUNDLE or
SSL_CERT_FILE)."""
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port
from test_deploy import Moto

ROOT = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build"))
AWS_CALL = BUILD / "tests" / "deploy" / "aws_call"


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["HOME"] = str(tmp_path)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDTESTING", "AWS_SECRET_ACCESS_KEY": "testing-secret"})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def aws_call(env, *args, timeout=60):
    assert AWS_CALL.exists(), f"build it first: cmake --build build --target aws_call ({AWS_CALL})"
    p = subprocess.run([str(AWS_CALL), *args], env=env, capture_output=True, timeout=timeout)
    out = json.loads(p.stdout.decode()) if p.stdout.strip() else {}
    return p.returncode, out, p.stderr.decode()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = Moto(tmp_path_factory.mktemp("moto"))
    yield m.url
    m.stop()


class Scripted:
    """A loopback HTTP/1.1 server answering from a script: each entry (status, headers,
    body) is used once, then `final` forever. Counts requests and connections."""

    def __init__(self, script, final=(200, {"content-type": "application/json"}, b'{"ok": true}'), delay=0.0,
                 tls_context=None):
        self.script = list(script)
        self.final = final
        self.delay = delay
        self.requests = []
        self.connections = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                outer.connections.add(self.client_address)
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, payload = outer.script.pop(0) if outer.script else outer.final
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme="http", host="127.0.0.1"):
        return f"{scheme}://{host}:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(*a, **kw):
        s = Scripted(*a, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


JSON_THROTTLE = (429, {"content-type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
                 b'{"message": "Rate exceeded", "Type": "User"}')
XML_UNAVAILABLE = (503, {"content-type": "application/xml"},
                   b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                   b"<RequestId>R1</RequestId></Error>")
PLAIN_503 = (503, {"content-type": "text/plain"}, b"Service Unavailable")


# --- moto -------------------------------------------------------------------------------


def test_lambda_s3_iam_sts_against_moto(moto, tmp_path):
    env = clean_env(tmp_path)
    rc, out, err = aws_call(env, "--endpoint-url", moto, "GET", "lambda", "/2015-03-31/functions/")
    assert rc == 0, out
    assert out["status"] == 200 and "Functions" in json.loads(out["body"])
    assert out["credentials_source"] == "environment variables"

    rc, out, _ = aws_call(env, "--endpoint-url", moto, "PUT", "s3", "/sluice-e2e-bucket")
    assert rc == 0, out
    payload = tmp_path / "pkg.zip"
    payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    key = "/sluice-e2e-bucket/packages/a b+c/ü.zip"
    rc, out, err = aws_call(env, "--endpoint-url", moto, "--unsigned-payload", "--body-file", str(payload),
                            "--header", "content-type:application/zip", "PUT", "s3", key)
    assert rc == 0, out
    assert "progress: 3145745/3145745" in err
    # The object really is there, byte for byte, under the unencoded key.
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    assert s3.get_object(Bucket="sluice-e2e-bucket", Key="packages/a b+c/ü.zip")["Body"].read() == payload.read_bytes()

    rc, out, _ = aws_call(env, "--endpoint-url", moto, "HEAD", "s3", "/sluice-e2e-bucket")
    assert rc == 0 and out["body"] == "", out
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "HEAD", "s3", "/no-such-bucket-here")
    assert rc == 3 and out["code"] == "404" and out["status"] == 404, out
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "GET", "s3", "/no-such-bucket-here/x")
    assert rc == 3 and out["code"] == "NoSuchBucket" and out["status"] == 404 and not out["auth"]

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    from urllib.parse import urlencode
    form = urlencode({"Action": "CreateRole", "Version": "2010-05-08", "RoleName": "sluice-e2e-role",
                      "AssumeRolePolicyDocument": trust})
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "--header",
                          "content-type:application/x-www-form-urlencoded; charset=utf-8", "--body", form,
                          "POST", "iam", "/")
    assert rc == 0, out
    assert "<RoleName>sluice-e2e-role</RoleName>" in out["body"]
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "--header",
                          "content-type:application/x-www-form-urlencoded; charset=utf-8", "--body", form,
                          "POST", "iam", "/")
    assert rc == 3 and out["code"] == "EntityAlreadyExists", out

    rc, out, _ = aws_call(env, "--endpoint-url", moto, "--query", "Action=GetCallerIdentity", "--query",
                          "Version=2011-06-15", "GET", "sts", "/")
    assert rc == 0 and "<Account>" in out["body"], out

    rc, out, _ = aws_call(env, "--endpoint-url", moto, "GET", "lambda", "/2015-03-31/functions/missing-fn")
    assert rc == 3 and out["code"] == "ResourceNotFoundException" and "missing-fn" in out["message"]


def test_role_from_profile_is_assumed_through_sts(moto, tmp_path):
    (tmp_path / "credentials").write_text("[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n")
    (tmp_path / "config").write_text("[profile deployer]\nregion = eu-west-3\n"
                                     "role_arn = arn:aws:iam::123456789012:role/deployer\nsource_profile = base\n")
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                    AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_CONFIG_FILE=str(tmp_path / "config"))
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "--profile", "deployer", "GET", "lambda",
                          "/2015-03-31/functions/")
    assert rc == 0, out
    assert out["region"] == "eu-west-3"
    assert out["credentials_source"].startswith("role arn:aws:iam::123456789012:role/deployer")
    assert out["access_key_id"] != "AKIDBASE"
    # --role-arn on top of environment credentials.
    env = clean_env(tmp_path)
    rc, out, _ = aws_call(env, "--endpoint-url", moto, "--role-arn", "arn:aws:iam::123456789012:role/ci",
                          "GET", "lambda", "/2015-03-31/functions/")
    assert rc == 0 and "role/ci" in out["credentials_source"] and out["access_key_id"] != "AKIDTESTING"


# --- credentials --------------------------------------------------------------------------


def test_missing_credentials_are_one_sentence(tmp_path):
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    rc, out, err = aws_call(env, "--endpoint-url", "http://127.0.0.1:9", "GET", "lambda", "/")
    assert rc == 2
    msg = out["message"]
    assert msg.startswith("No AWS credentials found") and "AWS_ACCESS_KEY_ID" in msg and "aws configure" in msg
    assert str(tmp_path / ".aws" / "credentials") in msg and "\n" not in msg
    rc, out, _ = aws_call(env, "--profile", "nope", "GET", "lambda", "/")
    assert rc == 2 and 'profile "nope"' in out["message"]


def test_profile_files_give_credentials_and_region(tmp_path, scripted):
    srv = scripted([])
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id=AKIDDEFAULT\naws_secret_access_key=x\n"
                                     "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = y\n"
                                     "aws_session_token = TOKDEV\n")
    (aws / "config").write_text("[default]\nregion = us-west-2\n[profile dev]\nregion = eu-central-1\n")
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    rc, out, _ = aws_call(env, "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert rc == 0 and out["access_key_id"] == "AKIDDEFAULT" and out["region"] == "us-west-2"
    rc, out, _ = aws_call(dict(env, AWS_PROFILE="dev"), "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert rc == 0 and out["access_key_id"] == "AKIDDEV" and out["region"] == "eu-central-1"
    assert "profile dev" in out["credentials_source"]
    sent = srv.requests[-1]["headers"]
    assert sent["x-amz-security-token"] == "TOKDEV"
    assert "/eu-central-1/lambda/aws4_request" in sent["authorization"]
    # The environment wins over AWS_PROFILE, an explicit --profile wins over the environment.
    env2 = dict(env, AWS_PROFILE="dev", AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="z", AWS_REGION="sa-east-1")
    rc, out, _ = aws_call(env2, "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert out["access_key_id"] == "AKIDENV" and out["region"] == "sa-east-1"
    rc, out, _ = aws_call(env2, "--profile", "dev", "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert out["access_key_id"] == "AKIDDEV"


# --- retries and errors ---------------------------------------------------------------------


def test_throttled_call_succeeds_on_retry(tmp_path, scripted):
    srv = scripted([JSON_THROTTLE, XML_UNAVAILABLE])
    rc, out, err = aws_call(clean_env(tmp_path), "--endpoint-url", srv.url(), "GET", "lambda", "/2015-03-31/functions/")
    assert rc == 0, out
    assert len(srv.requests) == 3
    retries = [l for l in err.splitlines() if l.startswith("retry: ")]
    assert len(retries) == 2
    assert "TooManyRequestsException" in retries[0] and "attempt 2 of 3" in retries[0]
    assert "SlowDown" in retries[1] and "attempt 3 of 3" in retries[1]


def test_call_that_keeps_failing_gives_up_after_three_attempts(tmp_path, scripted):
    srv = scripted([], final=PLAIN_503)
    started = time.time()
    rc, out, err = aws_call(clean_env(tmp_path), "--endpoint-url", srv.url(), "GET", "lambda", "/x")
    assert rc == 3 and out["status"] == 503 and out["code"] == "503"
    assert len(srv.requests) == 3
    assert time.time() - started < 5  # 100 ms then 200 ms ceilings, full jitter
    srv2 = scripted([], final=PLAIN_503)
    rc, out, err = aws_call(clean_env(tmp_path), "--max-attempts", "5", "--endpoint-url", srv2.url(), "GET",
                            "lambda", "/x")
    assert rc == 3 and len(srv2.requests) == 5


def test_client_errors_are_not_retried(tmp_path, scripted):
    srv = scripted([], final=(400, {"content-type": "application/json"},
                              b'{"__type": "com.amazonaws#InvalidParameterValueException", "message": "bad"}'))
    rc, out, _ = aws_call(clean_env(tmp_path), "--endpoint-url", srv.url(), "POST", "lambda", "/x")
    assert rc == 3 and out["code"] == "InvalidParameterValueException" and out["message"] == "bad"
    assert len(srv.requests) == 1


@pytest.mark.parametrize("answer,code", [
    ((403, {"content-type": "application/json", "x-amzn-ErrorType": "UnrecognizedClientException:http://internal"},
      b'{"message": "The security token included in the request is invalid."}'), "UnrecognizedClientException"),
    ((403, {"content-type": "text/xml"},
      b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
      b"<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid"
      b"</Message></Error><RequestId>abc-123</RequestId></ErrorResponse>"), "InvalidClientTokenId"),
    ((403, {"content-type": "application/xml"},
      b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match"
      b" &amp; so on</Message><RequestId>R</RequestId></Error>"), "SignatureDoesNotMatch"),
])
def test_rejected_credentials_are_recognised(tmp_path, scripted, answer, code):
    srv = scripted([], final=answer)
    rc, out, _ = aws_call(clean_env(tmp_path), "--endpoint-url", srv.url(), "GET", "iam", "/")
    assert rc == 3 and out["code"] == code and out["auth"] is True
    assert out["sentence"].startswith("AWS refused the credentials") and "\n" not in out["sentence"]
    assert len(srv.requests) == 1  # never retried
    if code == "InvalidClientTokenId":
        assert out["request_id"] == "abc-123"
    if code == "SignatureDoesNotMatch":
        assert "& so on" in out["message"]


def test_connection_refused_is_retried_then_reported(tmp_path):
    port = free_port()  # nothing listens there
    rc, out, err = aws_call(clean_env(tmp_path), "--endpoint-url", f"http://127.0.0.1:{port}", "GET", "lambda", "/")
    assert rc == 4 and "refused" in out["message"].lower() and "after 3 attempts" in out["message"]
    assert len([l for l in err.splitlines() if l.startswith("retry: ")]) == 2


def test_read_timeout(tmp_path, scripted):
    srv = scripted([], delay=1.5)
    rc, out, err = aws_call(clean_env(tmp_path), "--read-timeout", "300", "--max-attempts", "2",
                            "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert rc == 4 and "timed out" in out["message"]
    assert len(srv.requests) == 2


def test_keep_alive_reuses_one_connection(tmp_path, scripted):
    srv = scripted([])
    rc, out, _ = aws_call(clean_env(tmp_path), "--repeat", "4", "--endpoint-url", srv.url(), "GET", "lambda", "/")
    assert rc == 0 and len(srv.requests) == 4
    assert len(srv.connections) == 1
    h = srv.requests[0]["headers"]
    assert "authorization" in h and h["host"] == f"127.0.0.1:{srv.port}"


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_cert(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return cert, ctx


def test_tls_verification(tmp_path, scripted, tls_cert):
    cert, ctx = tls_cert
    srv = scripted([], tls_context=ctx)
    url = srv.url("https", "localhost")
    # A self-signed certificate is refused, at once (no retries).
    rc, out, err = aws_call(clean_env(tmp_path), "--endpoint-url", url, "GET", "lambda", "/")
    assert rc == 4 and "certificate verification failed" in out["message"], out
    assert "AWS_CA_BUNDLE" in out["message"] and "retry: " not in err
    # Trusted through AWS_CA_BUNDLE, as the SDKs do, or OpenSSL's SSL_CERT_FILE.
    rc, out, _ = aws_call(clean_env(tmp_path, AWS_CA_BUNDLE=str(cert)), "--endpoint-url", url, "GET", "lambda", "/")
    assert rc == 0 and out["status"] == 200, out
    rc, out, _ = aws_call(clean_env(tmp_path, SSL_CERT_FILE=str(cert)), "--endpoint-url", url, "GET", "lambda", "/")
    assert rc == 0, out
    # The name must match too: the certificate is for localhost, not 127.0.0.1.
    rc, out, _ = aws_call(clean_env(tmp_path, AWS_CA_BUNDLE=str(cert)), "--endpoint-url",
                          srv.url("https", "127.0.0.1"), "GET", "lambda", "/")
    assert rc == 4 and "certificate verification failed" in out["message"], out
