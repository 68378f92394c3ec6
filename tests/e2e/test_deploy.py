"""`sluice deploy` / `sluice rollback` end to end against moto_server on loopback.

Each test starts its own moto_server on an ephemeral port (and, for fault tests, a small
proxy in front of it that injects throttling, failures or a kill), deploys the watchlist
example (a REST API over a shared Python package, an HTTP API over a Node.js function, an
API key and a usage plan), and checks the result with boto3 against the same moto."""
import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from conftest import BIN, FIXTURES, free_port

REGION = "eu-west-3"
ACCOUNT = "123456789012"
STACK = "watchlist"
CORE_FUNCTIONS = ["movies-list", "movies-find", "favorites-list", "favorites-add"]
ALL_FUNCTIONS = CORE_FUNCTIONS + ["recommend"]


class Moto:
    """moto_server on 127.0.0.1:<ephemeral>, with its request recorder enabled."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # moto loads AWS managed policies (AWSLambdaBasicExecutionRole) only when asked to.
        env = dict(os.environ, MOTO_ENABLE_RECORDING="True", MOTO_IAM_LOAD_MANAGED_POLICIES="true",
                   MOTO_RECORDER_FILEPATH=str(Path(workdir) / "moto_recording"))
        self.log = open(Path(workdir) / "moto.log", "ab")
        try:
            import moto  # noqa: F401  (moto_server of the test interpreter itself)
        except ImportError:
            pytest.fail("these tests need moto 5 for the test interpreter (python3 -m moto.server)")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/moto-api/")
                c.getresponse().read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto_server exited")
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def _moto_api(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path)
        r = c.getresponse()
        return r.read()

    def start_recording(self):
        self._moto_api("POST", "/moto-api/recorder/reset-recording")
        self._moto_api("POST", "/moto-api/recorder/start-recording")

    def stop_recording(self):
        self._moto_api("POST", "/moto-api/recorder/stop-recording")
        text = self._moto_api("GET", "/moto-api/recorder/download-recording").decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def client(self, service, region=REGION):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def read_only_target(target):
    """JSON 1.1 APIs (EventBridge) are all POST: their X-Amz-Target says what they do."""
    action = (target or "").rpartition(".")[2]
    return action.startswith(("Describe", "List"))


def mutating(entry):
    """Whether a recorded request changes anything (query APIs: by their Action; JSON 1.1
    APIs: by their X-Amz-Target)."""
    if entry["method"] in ("GET", "HEAD"):
        return False
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    if "x-amz-target" in headers:
        return not read_only_target(headers["x-amz-target"])
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        import base64
        body = base64.b64decode(body).decode(errors="replace")
    if "Action=Get" in body or "Action=List" in body:
        return False
    return True


class FaultProxy:
    """An HTTP proxy in front of moto: forwards every request, except that rules may
    answer instead (429 / 503 / 403), and it may hold the Nth mutating request so the
    test can kill the deploy in the middle of its work."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.rules = []  # dicts: match(method, path, body) -> bool, status, body, headers, times
        self.calls = []  # (method, path, answered_status)
        self.mutations = 0
        self.hold_at = None
        self.rewrite = None  # (method, path, status, body bytes) -> body bytes: edits moto's answers
        # (method, path, body text) -> None (forward) or (status, headers, body bytes): stands in for moto
        self.intercept = None
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, every answer on a kept-alive
            # connection waits for the client's delayed ACK (about 40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                text = body.decode(errors="replace")
                is_mut = self.command not in ("GET", "HEAD") and "Action=Get" not in text and "Action=List" not in text
                if self.headers.get("x-amz-target"):
                    is_mut = not read_only_target(self.headers.get("x-amz-target"))
                if is_mut:
                    proxy.mutations += 1
                    if proxy.hold_at is not None and proxy.mutations >= proxy.hold_at:
                        proxy.held.set()
                        proxy.release.wait(60)
                        self.close_connection = True
                        return
                answer = proxy.intercept(self.command, self.path, text) if proxy.intercept else None
                if answer is not None:
                    self._answer(*answer)
                    return
                for rule in proxy.rules:
                    if rule["times"] != 0 and rule["match"](self.command, self.path, text):
                        if rule["times"] is not None:
                            rule["times"] -= 1
                        self._answer(rule["status"], rule.get("headers", {}), rule["body"].encode())
                        return
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                if proxy.rewrite:
                    data = proxy.rewrite(self.command, self.path, r.status, data)
                proxy.calls.append((self.command, self.path, r.status))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _answer(self, status, headers, out):
                """The proxy's own answer instead of moto's."""
                proxy.calls.append((self.command, self.path, status))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def credentials_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_CONFIG_FILE=str(home / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(home / "no-credentials"))
    env.update(extra)
    return env


class Project:
    """A copy of the watchlist example in its own git checkout."""

    def __init__(self, path, endpoint):
        self.path = Path(path)
        shutil.copytree(FIXTURES / "watchlist", self.path / "app",
                        ignore=shutil.ignore_patterns(".sluice", "__pycache__", "node_modules"))
        self.app = self.path / "app"
        self.home = self.path / "home"
        self.home.mkdir()
        self.endpoint = endpoint
        git = ["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com"]
        subprocess.run(git + ["init", "-q"], cwd=self.app, check=True)
        subprocess.run(git + ["add", "."], cwd=self.app, check=True)
        subprocess.run(git + ["commit", "-qm", "watchlist"], cwd=self.app, check=True)
        self.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.app, check=True,
                                     capture_output=True, text=True).stdout.strip()

    def cmd(self, *args, endpoint=None):
        return [str(BIN), *args, str(self.app / "sluice.yaml"), "--endpoint-url", endpoint or self.endpoint]

    def run(self, *args, endpoint=None, env=None, timeout=180):
        p = subprocess.run(self.cmd(*args, endpoint=endpoint), capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=env or credentials_env(self.home))
        return p

    def deploy(self, stage, *extra, **kw):
        return self.run("deploy", "--stage", stage, *extra, **kw)

    def edit_core(self, text):
        f = self.app / "src" / "watchlist" / "deploy_marker.py"
        f.write_text(f"MARKER = {text!r}\n")


@pytest.fixture
def moto(tmp_path):
    m = Moto(tmp_path)
    yield m
    m.stop()


@pytest.fixture
def project(tmp_path, moto):
    return Project(tmp_path, moto.url)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def alias_version(lam, fn, alias):
    return lam.get_alias(FunctionName=f"{STACK}-{fn}", Name=alias)["FunctionVersion"]


def versions(lam, fn):
    return sorted(v["Version"] for v in lam.list_versions_by_function(FunctionName=f"{STACK}-{fn}")["Versions"]
                  if v["Version"] != "$LATEST")


def rest_api(apigw):
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == f"{STACK}-watchlist"]
    assert len(apis) == 1, apis
    return apis[0]["id"]


def bucket():
    return f"sluice-{STACK}-{ACCOUNT}-{REGION}"


def record(moto, stage):
    s3 = moto.client("s3")
    return json.loads(s3.get_object(Bucket=bucket(), Key=f"state/{stage}/current.json")["Body"].read())


def history(moto, stage):
    s3 = moto.client("s3")
    out = s3.list_objects_v2(Bucket=bucket(), Prefix=f"state/{stage}/history/")
    return sorted(o["Key"] for o in out.get("Contents", []))


# ---------------------------------------------------------------------------------------


def test_deploy_creates_the_stack_and_a_second_deploy_changes_nothing(moto, project):
    p = ok(project.deploy("sandbox"))
    err = p.stderr
    assert "plan for stage sandbox" in err
    assert "create function watchlist-movies-list" in err
    assert "stage sandbox:" in err and "created" in err
    lam, apigw, v2 = moto.client("lambda"), moto.client("apigateway"), moto.client("apigatewayv2")

    # Functions, versions and aliases.
    for fn in ALL_FUNCTIONS:
        cfg = lam.get_function(FunctionName=f"{STACK}-{fn}")["Configuration"]
        assert cfg["Role"] == f"arn:aws:iam::{ACCOUNT}:role/sluice-{STACK}-lambda"
        assert versions(lam, fn) == ["1"]
        assert alias_version(lam, fn, "sandbox") == "1"
        v1 = lam.get_function(FunctionName=f"{STACK}-{fn}", Qualifier="1")["Configuration"]
        assert project.commit in v1["Description"]
    cfg = lam.get_function(FunctionName=f"{STACK}-movies-list")["Configuration"]
    assert cfg["Runtime"] == "python3.11" and cfg["Handler"] == "watchlist.handlers.list_movies.handler"
    assert cfg["MemorySize"] == 128 and cfg["Timeout"] == 3 and cfg["EphemeralStorage"] == {"Size": 512}
    assert lam.get_function(FunctionName=f"{STACK}-recommend")["Configuration"]["Runtime"] == "nodejs20.x"
    assert lam.get_function_concurrency(FunctionName=f"{STACK}-favorites-add")["ReservedConcurrentExecutions"] == 5
    # The shared package was uploaded once: one object for core, one for the recommender.
    keys = [o["Key"] for o in moto.client("s3").list_objects_v2(Bucket=bucket(), Prefix="code/")["Contents"]]
    assert len(keys) == 2, keys
    core_sha = {lam.get_function(FunctionName=f"{STACK}-{fn}")["Configuration"]["CodeSha256"] for fn in CORE_FUNCTIONS}
    assert len(core_sha) == 1

    # The REST API: resources, methods, integrations keeping the stage variable, the stage.
    api_id = rest_api(apigw)
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert {"/", "/movies", "/movies/{id}", "/favorites"} <= set(resources)
    m = apigw.get_method(restApiId=api_id, resourceId=resources["/movies"]["id"], httpMethod="GET")
    assert m["methodIntegration"]["type"] == "AWS_PROXY"
    assert m["methodIntegration"]["uri"] == (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-movies-list:${{stageVariables.environment}}/invocations")
    post = apigw.get_method(restApiId=api_id, resourceId=resources["/favorites"]["id"], httpMethod="POST")
    assert post["apiKeyRequired"] is True
    stage = apigw.get_stage(restApiId=api_id, stageName="sandbox")
    assert stage["variables"] == {"environment": "sandbox"}
    assert f"/restapis/{api_id}/sandbox/_user_request_" in err

    # Permissions on the alias the stage reaches, scoped to this API.
    policy = json.loads(lam.get_policy(FunctionName=f"{STACK}-movies-list", Qualifier="sandbox")["Policy"])
    arns = [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]
            if s["Principal"] == {"Service": "apigateway.amazonaws.com"}]
    assert f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/*/*" in arns

    # API key and usage plan, bound to the stage.
    keys = [k for k in apigw.get_api_keys(includeValues=True)["items"] if k["name"] == f"{STACK}-watchlist-web"]
    assert len(keys) == 1 and keys[0]["value"] == "watchlist-web-key-0123456789"
    plans = [p for p in apigw.get_usage_plans()["items"] if p["name"] == f"{STACK}-web"]
    assert len(plans) == 1
    assert {"apiId": api_id, "stage": "sandbox"} in plans[0]["apiStages"]
    assert plans[0]["throttle"]["burstLimit"] == 40 and plans[0]["quota"]["limit"] == 10000
    bound = apigw.get_usage_plan_keys(usagePlanId=plans[0]["id"])["items"]
    assert [k["id"] for k in bound] == [keys[0]["id"]]

    # The HTTP API (API Gateway v2).
    http_apis = [a for a in v2.get_apis()["Items"] if a["Name"] == f"{STACK}-discover"]
    assert len(http_apis) == 1
    hid = http_apis[0]["ApiId"]
    assert http_apis[0]["CorsConfiguration"]["AllowOrigins"] == ["http://localhost:5173"]
    routes = v2.get_routes(ApiId=hid)["Items"]
    assert [r["RouteKey"] for r in routes] == ["GET /recommendations"]
    integ = v2.get_integration(ApiId=hid, IntegrationId=routes[0]["Target"].split("/")[1])
    assert integ["IntegrationType"] == "AWS_PROXY" and integ["PayloadFormatVersion"] == "2.0"
    assert v2.get_stage(ApiId=hid, StageName="sandbox")["AutoDeploy"] is True

    # The record of the stage.
    rec = record(moto, "sandbox")
    assert rec["git_commit"] == project.commit and rec["kind"] == "deploy"
    assert rec["functions"]["movies-list"]["alias"]["version"] == "1"
    assert rec["apis"]["watchlist"]["id"] == api_id
    assert len(history(moto, "sandbox")) == 1

    # A second deploy: nothing changed, so not one mutating call.
    moto.start_recording()
    p = ok(project.deploy("sandbox"))
    calls = moto.stop_recording()
    assert calls, "the recorder saw no request at all"
    assert [c for c in calls if mutating(c)] == []
    assert "nothing to change" in p.stderr
    assert "0 created, 0 updated, 0 removed" in p.stderr
    assert len(history(moto, "sandbox")) == 1

    # A code change: a new version of the functions of the shared package only.
    project.edit_core("v2")
    p = ok(project.deploy("sandbox"))
    for fn in CORE_FUNCTIONS:
        assert versions(lam, fn) == ["1", "2"]
        assert alias_version(lam, fn, "sandbox") == "2"
    assert versions(lam, "recommend") == ["1"]
    assert record(moto, "sandbox")["functions"]["movies-list"]["alias"]["version"] == "2"
    assert len(history(moto, "sandbox")) == 2


def cut(text, start, end):
    """The text without the block from the line `start` up to (not including) `end`."""
    i = text.index(start)
    return text[:i] + text[text.index(end, i):]


def test_functions_and_apis_removed_from_the_stack_go_when_no_stage_uses_them(moto, project):
    lam, apigw, v2 = moto.client("lambda"), moto.client("apigateway"), moto.client("apigatewayv2")
    ok(project.deploy("sandbox"))
    ok(project.deploy("staging"))
    ok(project.deploy("production", "--promote-from", "staging"))
    rest_id = rest_api(apigw)
    http_id = [a for a in v2.get_apis()["Items"] if a["Name"] == f"{STACK}-discover"][0]["ApiId"]
    stack = project.app / "sluice.yaml"

    def aliases(fn):
        return sorted(a["Name"] for a in lam.list_aliases(FunctionName=f"{STACK}-{fn}")["Aliases"])

    def statements_for(api_id):  # the core functions' permission statements naming the API
        sids = []
        for fn in CORE_FUNCTIONS:
            for q in [None] + aliases(fn):
                try:
                    doc = json.loads(lam.get_policy(FunctionName=f"{STACK}-{fn}", **({"Qualifier": q} if q else {}))["Policy"])
                except lam.exceptions.ResourceNotFoundException:
                    continue
                sids += [st["Sid"] for st in doc["Statement"] if st["Sid"].startswith(f"sluice-{api_id}-")]
        return sids

    # The Node function and the HTTP API in front of it leave the stack.
    stack.write_text(cut(cut(stack.read_text(), "  recommend:\n", "\napis:"), "  discover:\n", "\napi_keys:"))
    p = ok(project.deploy("sandbox", "--dry-run"))
    assert f"- remove API stage discover ({http_id}) sandbox (still used by production, staging)" in p.stderr
    assert (f"- remove alias {STACK}-recommend:sandbox (the function stays: still used by production, staging)"
            in p.stderr)
    assert aliases("recommend") == ["production", "sandbox", "staging"]

    # Each stage lets go of its part while another still runs them.
    ok(project.deploy("sandbox"))
    assert aliases("recommend") == ["production", "staging"]
    assert sorted(s["StageName"] for s in v2.get_stages(ApiId=http_id)["Items"]) == ["production", "staging"]
    rec = record(moto, "sandbox")
    assert "recommend" not in rec["functions"] and "discover" not in rec["apis"]
    assert "movies-list" in rec["functions"] and "watchlist" in rec["apis"]
    ok(project.deploy("staging"))
    assert aliases("recommend") == ["production"]

    # Promoting staging to production: production was the last stage using them, so the
    # function (versions and all) and the API go.
    p = ok(project.deploy("production", "--promote-from", "staging"))
    assert f"remove function {STACK}-recommend" in p.stderr
    assert f"remove API discover ({http_id})" in p.stderr
    assert f"{STACK}-recommend" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert http_id not in [a["ApiId"] for a in v2.get_apis()["Items"]]
    # The rest is untouched.
    for fn in CORE_FUNCTIONS:
        assert aliases(fn) == ["production", "sandbox", "staging"]
    moto.start_recording()
    p = ok(project.deploy("staging"))
    assert [c for c in moto.stop_recording() if mutating(c)] == []
    assert "nothing to change" in p.stderr

    # The usage plan and its key leave the stack: each stage's API stage leaves the plan; the
    # last one deletes it, and the key with it.
    text = stack.read_text()
    stack.write_text(text[:text.index("api_keys:\n")])
    ok(project.deploy("sandbox"))
    plan = [p for p in apigw.get_usage_plans()["items"] if p["name"] == f"{STACK}-web"][0]
    assert sorted(s["stage"] for s in plan["apiStages"]) == ["production", "staging"]
    ok(project.deploy("staging"))
    p = ok(project.deploy("production", "--promote-from", "staging"))
    assert f"remove usage plan {STACK}-web" in p.stderr and f"remove API key {STACK}-watchlist-web" in p.stderr
    assert [p for p in apigw.get_usage_plans()["items"] if p["name"] == f"{STACK}-web"] == []
    assert [k for k in apigw.get_api_keys()["items"] if k["name"] == f"{STACK}-watchlist-web"] == []
    assert sorted(s["stageName"] for s in apigw.get_stages(restApiId=rest_id)["item"]) == [
        "production", "sandbox", "staging"]

    # Then the REST API itself.
    text = stack.read_text()
    stack.write_text(text[:text.index("apis:\n")])
    ok(project.deploy("sandbox"))
    ok(project.deploy("staging"))
    assert [s["stageName"] for s in apigw.get_stages(restApiId=rest_id)["item"]] == ["production"]
    granted = statements_for(rest_id)
    assert len(granted) >= 3, granted  # one per stage's alias at least
    p = ok(project.deploy("production", "--promote-from", "staging"))
    assert f"remove API watchlist ({rest_id})" in p.stderr
    assert rest_id not in [a["id"] for a in apigw.get_rest_apis()["items"]]
    # Its invoke permissions went with it, on every alias.
    assert statements_for(rest_id) == []
    assert f"remove permission {STACK}-movies-list:sandbox sluice-{rest_id}-" in p.stderr
    assert record(moto, "production")["apis"] == {}
    moto.start_recording()
    ok(project.deploy("production", "--promote-from", "staging"))
    assert [c for c in moto.stop_recording() if mutating(c)] == []
    # The functions the stack keeps are all still there.
    for fn in CORE_FUNCTIONS:
        assert aliases(fn) == ["production", "sandbox", "staging"]


def test_dry_run_plans_without_changing_anything(moto, project):
    moto.start_recording()
    p = ok(project.deploy("sandbox", "--dry-run"))
    calls = moto.stop_recording()
    assert [c for c in calls if mutating(c)] == []
    assert "+ create bucket" in p.stderr
    assert "+ create function watchlist-movies-list" in p.stderr
    assert "+ create REST API watchlist-watchlist" in p.stderr
    assert "dry run: nothing was changed" in p.stderr
    assert moto.client("lambda").list_functions()["Functions"] == []

    ok(project.deploy("sandbox"))
    project.edit_core("changed")
    moto.start_recording()
    p = ok(project.deploy("sandbox", "--dry-run"))
    calls = moto.stop_recording()
    assert [c for c in calls if mutating(c)] == []
    assert "~ update function code watchlist-movies-list" in p.stderr
    assert "+ create version watchlist-movies-list" in p.stderr
    assert "update function code watchlist-recommend" not in p.stderr


def recorded_bodies(calls, method, path_pattern):
    """(path, JSON body) of the recorded requests whose method and path match."""
    out = []
    for c in calls:
        path = urlsplit(c["url"]).path.rstrip("/")
        if c["method"] == method and re.fullmatch(path_pattern, path):
            body = c.get("body") or ""
            if c.get("body_encoded"):
                body = base64.b64decode(body).decode()
            out.append((path, json.loads(body)))
    return out


def created_functions(calls):
    """Function name -> the CreateFunction body deploy sent."""
    return {b["FunctionName"]: b for _, b in recorded_bodies(calls, "POST", r"/2015-03-31/functions")}


def configuration_updates(calls):
    """Function name -> the UpdateFunctionConfiguration body deploy sent."""
    return {path.split("/")[3]: b
            for path, b in recorded_bodies(calls, "PUT", r"/2015-03-31/functions/[^/]+/configuration")}


def aws_logging_answers(logging):
    """A FaultProxy rewrite for moto, which keeps no LoggingConfig: Lambda's answers get the
    one AWS would hold, logging[function name] or Text, each with its LogGroup."""
    def rewrite(method, path, status, data):
        if method != "GET" or status != 200 or not path.startswith("/2015-03-31/functions"):
            return data
        doc = json.loads(data)
        configs = [doc, doc.get("Configuration")] + doc.get("Versions", []) + doc.get("Functions", [])
        for cfg in configs:
            if isinstance(cfg, dict) and "FunctionArn" in cfg and "CodeSha256" in cfg:
                name = cfg["FunctionArn"].split(":")[6]
                cfg["LoggingConfig"] = dict(logging.get(name, {"LogFormat": "Text"}), LogGroup=f"/aws/lambda/{name}")
        return json.dumps(doc).encode()
    return rewrite


def test_a_stack_without_logging_sends_no_logging_config_and_stays_unchanged(moto, project):
    moto.start_recording()
    ok(project.deploy("sandbox"))
    created = created_functions(moto.stop_recording())
    assert sorted(created) == sorted(f"{STACK}-{fn}" for fn in ALL_FUNCTIONS)
    assert [name for name, body in created.items() if "LoggingConfig" in body] == []
    # moto answers without any LoggingConfig: that counts as Text, which is what is wanted.
    p = nothing_changes(moto, lambda: project.deploy("sandbox"))
    assert "nothing to change" in p.stderr and "LoggingConfig" not in p.stderr


def test_logging_sets_the_functions_logging_config(moto, project):
    stack = project.app / "sluice.yaml"
    find, lst = f"{STACK}-movies-find", f"{STACK}-movies-list"
    find_handler = "    handler: watchlist.handlers.find_movie.handler\n"
    list_handler = "    handler: watchlist.handlers.list_movies.handler\n"
    stack.write_text(stack.read_text().replace(
        find_handler, find_handler + "    logging: {format: JSON, system_log_level: WARN}\n"))
    # moto ignores LoggingConfig: the proxy answers for it what AWS would hold.
    aws_holds = {}
    proxy = FaultProxy(moto.port)
    proxy.rewrite = aws_logging_answers(aws_holds)
    try:
        # Sent on create for the function that sets it, the level not set being AWS's INFO.
        moto.start_recording()
        ok(project.deploy("sandbox", endpoint=proxy.url))
        created = created_functions(moto.stop_recording())
        assert created[find]["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO",
                                                  "SystemLogLevel": "WARN"}
        assert [name for name, body in created.items() if "LoggingConfig" in body] == [find]

        # AWS answers with what it holds, LogGroup included (not deploy's business): no change.
        aws_holds[find] = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}
        moto.start_recording()
        p = ok(project.deploy("sandbox", endpoint=proxy.url))
        assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
        assert "nothing to change" in p.stderr

        # Other levels for one function, more memory and /tmp for another: the plan names the
        # fields, and LoggingConfig goes only in the update of the function whose logging changed.
        text = stack.read_text().replace("system_log_level: WARN}", "system_log_level: DEBUG, application_log_level: ERROR}")
        stack.write_text(text.replace(list_handler, list_handler + "    memory: 256\n    ephemeral_storage: 1024\n"))
        p = ok(project.deploy("sandbox", "--dry-run", endpoint=proxy.url))
        assert f"~ update function configuration {find} (LoggingConfig)" in p.stderr
        assert f"~ update function configuration {lst} (MemorySize, EphemeralStorage)" in p.stderr
        assert p.stderr.count("update function configuration") == 2, p.stderr
        moto.start_recording()
        ok(project.deploy("sandbox", endpoint=proxy.url))
        updates = configuration_updates(moto.stop_recording())
        assert sorted(updates) == [find, lst]
        assert updates[find]["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "ERROR",
                                                  "SystemLogLevel": "DEBUG"}
        assert "LoggingConfig" not in updates[lst] and updates[lst]["MemorySize"] == 256
        assert updates[lst]["EphemeralStorage"] == {"Size": 1024}
        # moto keeps the size a function was created with (its UpdateFunctionConfiguration
        # ignores EphemeralStorage): back to the default, which is what moto holds.
        stack.write_text(stack.read_text().replace("    ephemeral_storage: 1024\n", ""))
        lam = moto.client("lambda")
        assert alias_version(lam, "movies-find", "sandbox") == "2"  # the new logging is a new version

        # Without `logging` again: back to Text, and no levels with it (AWS refuses them).
        aws_holds[find] = updates[find]["LoggingConfig"]
        stack.write_text(stack.read_text().replace(
            "    logging: {format: JSON, system_log_level: DEBUG, application_log_level: ERROR}\n", ""))
        moto.start_recording()
        p = ok(project.deploy("sandbox", endpoint=proxy.url))
        updates = configuration_updates(moto.stop_recording())
        assert f"update function configuration {find} (LoggingConfig)" in p.stderr
        assert sorted(updates) == [find] and updates[find]["LoggingConfig"] == {"LogFormat": "Text"}
    finally:
        proxy.stop()


def test_promote_and_rollback(moto, project):
    lam = moto.client("lambda")
    ok(project.deploy("staging"))
    project.edit_core("v2")
    ok(project.deploy("staging"))
    assert alias_version(lam, "movies-list", "staging") == "2"
    before = {fn: versions(lam, fn) for fn in ALL_FUNCTIONS}

    # Promotion: production's aliases take staging's exact versions; nothing is built or published.
    project.edit_core("v3 not deployed anywhere")
    moto.start_recording()
    p = ok(project.deploy("production", "--promote-from", "staging"))
    calls = moto.stop_recording()
    assert "promoting stack watchlist from stage staging to stage production" in p.stderr
    urls = [c["url"] for c in calls if mutating(c)]
    assert not any(u.endswith("/versions") for u in urls), urls
    assert not any("/code" in u or "/configuration" in u for u in urls), urls
    assert {fn: versions(lam, fn) for fn in ALL_FUNCTIONS} == before
    for fn in CORE_FUNCTIONS:
        assert alias_version(lam, fn, "production") == "2"
    assert alias_version(lam, "recommend", "production") == "1"
    apigw = moto.client("apigateway")
    api_id = rest_api(apigw)
    stage = apigw.get_stage(restApiId=api_id, stageName="production")
    assert stage["variables"] == {"environment": "production"}
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 50.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 100
    rec = record(moto, "production")
    assert rec["kind"] == "promote" and rec["promoted_from"] == "staging"
    # Promoting again changes nothing.
    moto.start_recording()
    p = ok(project.deploy("production", "--promote-from", "staging"))
    assert [c for c in moto.stop_recording() if mutating(c)] == []

    # Rollback: staging's aliases go back to the versions of its previous record.
    p = ok(project.run("rollback", "--stage", "staging"))
    for fn in CORE_FUNCTIONS:
        assert alias_version(lam, fn, "staging") == "1"
    rec = record(moto, "staging")
    assert rec["kind"] == "rollback" and rec["functions"]["movies-list"]["alias"]["version"] == "1"
    assert len(history(moto, "staging")) == 3
    assert {fn: versions(lam, fn) for fn in ALL_FUNCTIONS} == before

    # A stage without two records cannot be rolled back.
    p = project.run("rollback", "--stage", "production")
    assert p.returncode == 1
    assert "rollback needs a previous one" in p.stderr


def test_a_locked_stage_waits_then_fails_naming_the_holder(moto, project):
    ok(project.deploy("sandbox"))
    s3 = moto.client("s3")
    holder = {"holder": "ci@runner-7 pid 4242", "since": "2026-11-21T08:00:00.000Z"}
    s3.put_object(Bucket=bucket(), Key="state/sandbox/lock", Body=json.dumps(holder))
    project.edit_core("locked")
    t0 = time.time()
    p = project.deploy("sandbox", "--lock-timeout", "2")
    assert p.returncode == 1, p.stderr
    assert time.time() - t0 >= 2
    assert "ci@runner-7 pid 4242" in p.stderr and "--force-unlock" in p.stderr
    assert "Traceback" not in p.stderr and "terminate called" not in p.stderr
    assert versions(moto.client("lambda"), "movies-list") == ["1"]

    # The holder finishes while we wait: the deploy goes on.
    threading.Timer(1.5, lambda: s3.delete_object(Bucket=bucket(), Key="state/sandbox/lock")).start()
    p = ok(project.deploy("sandbox", "--lock-timeout", "30"))
    assert "waiting for the lock of stage sandbox, held by ci@runner-7 pid 4242" in p.stderr
    assert versions(moto.client("lambda"), "movies-list") == ["1", "2"]

    # A stale lock is removed with --force-unlock.
    s3.put_object(Bucket=bucket(), Key="state/sandbox/lock", Body=json.dumps(holder))
    project.edit_core("stale")
    p = ok(project.deploy("sandbox", "--force-unlock", "--lock-timeout", "1"))
    assert "removing the lock of stage sandbox (--force-unlock), held by ci@runner-7 pid 4242" in p.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket(), Prefix="state/sandbox/lock")


def test_two_concurrent_deploys_of_one_stage(moto, project):
    ok(project.deploy("sandbox"))
    project.edit_core("concurrent")
    procs = [subprocess.Popen(project.cmd("deploy", "--stage", "sandbox", "--lock-timeout", "120"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, env=credentials_env(project.home)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    lam = moto.client("lambda")
    # Exactly one of them published: the other either waited and found nothing left to do,
    # or planned after the first had finished.
    for fn in CORE_FUNCTIONS:
        assert versions(lam, fn) == ["1", "2"]
        assert alias_version(lam, fn, "sandbox") == "2"
    assert len(history(moto, "sandbox")) == 2
    assert "Contents" not in moto.client("s3").list_objects_v2(Bucket=bucket(), Prefix="state/sandbox/lock")


def test_missing_and_rejected_credentials_give_one_sentence(moto, project, tmp_path):
    env = credentials_env(project.home)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    p = project.deploy("sandbox", env=env)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("sluice deploy: ") and "credential" in lines[-1].lower(), p.stderr
    assert "Traceback" not in p.stderr and "terminate called" not in p.stderr

    proxy = FaultProxy(moto.port)
    try:
        sts_body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                    '<Code>InvalidClientTokenId</Code><Message>The security token included in the request is '
                    'invalid.</Message></Error><RequestId>r-1</RequestId></ErrorResponse>')
        proxy.rules.append({"match": lambda m, path, body: True, "status": 403, "body": sts_body, "times": None,
                            "headers": {"content-type": "text/xml"}})
        p = project.deploy("sandbox", endpoint=proxy.url)
        assert p.returncode == 1
        last = p.stderr.strip().splitlines()[-1]
        assert "InvalidClientTokenId" in last and "credentials" in last, p.stderr
        assert len(proxy.calls) == 1  # a refusal is not retried

        proxy.rules[:] = [{"match": lambda m, path, body: "Action=GetCallerIdentity" not in body, "status": 403,
                           "body": json.dumps({"__type": "UnrecognizedClientException",
                                               "message": "The security token included in the request is invalid."}),
                           "times": None, "headers": {"content-type": "application/x-amz-json-1.1",
                                                      "x-amzn-ErrorType": "UnrecognizedClientException"}}]
        p = project.deploy("sandbox", endpoint=proxy.url)
        assert p.returncode == 1
        last = p.stderr.strip().splitlines()[-1]
        assert "UnrecognizedClientException" in last and "credentials" in last, p.stderr
    finally:
        proxy.stop()


def throttle_rule(path_fragment, times, status=429, code="TooManyRequestsException"):
    return {"match": lambda m, path, body: m == "POST" and path.rstrip("/").endswith(path_fragment),
            "status": status, "times": times,
            "body": json.dumps({"__type": code, "message": "Rate exceeded" if status == 429 else "Service unavailable",
                                "Type": "User"}),
            "headers": {"content-type": "application/json", "x-amzn-ErrorType": code}}


def test_a_throttled_call_is_retried_and_a_failing_one_stops_the_deploy(moto, project):
    proxy = FaultProxy(moto.port)
    try:
        # CreateFunction throttled twice, then accepted.
        proxy.rules.append(throttle_rule("/2015-03-31/functions", 2))
        p = ok(project.deploy("sandbox", endpoint=proxy.url, timeout=300))
        created = [c for c in proxy.calls if c[0] == "POST" and c[1].rstrip("/").endswith("/2015-03-31/functions")]
        assert [c[2] for c in created[:3]] == [429, 429, 201], created
        assert len(moto.client("lambda").list_functions()["Functions"]) == len(ALL_FUNCTIONS)

        # PublishVersion failing every time: the deploy stops with the service's error, the
        # lock is released, and the next deploy (no fault) finishes the work.
        project.edit_core("failing")
        proxy.rules[:] = [throttle_rule("/versions", None, status=503, code="ServiceException")]
        p = project.deploy("sandbox", endpoint=proxy.url, timeout=300)
        assert p.returncode == 1
        last = p.stderr.strip().splitlines()[-1]
        assert "503" in last and "ServiceException" in last, p.stderr
        # The message names the change that failed (the functions are taken in name order).
        assert last == ("sluice deploy: create version watchlist-favorites-add failed: lambda answered 503 "
                        "ServiceException: Service unavailable"), p.stderr
        attempts = [c for c in proxy.calls if c[1].endswith("/versions") and c[0] == "POST" and c[2] == 503]
        assert len(attempts) == 3  # the standard retry mode's three attempts
        s3 = moto.client("s3")
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket(), Prefix="state/sandbox/lock")
        proxy.rules.clear()
        ok(project.deploy("sandbox", endpoint=proxy.url))
        lam = moto.client("lambda")
        for fn in CORE_FUNCTIONS:
            assert alias_version(lam, fn, "sandbox") == "2"
    finally:
        proxy.stop()


def kill_deploy_at(project, proxy, kill_at):
    """Runs `deploy --stage sandbox` through the proxy and SIGKILLs it while the proxy holds its
    kill_at-th mutating call; the held call then goes on to moto. Returns the dead process."""
    proxy.hold_at = kill_at
    proc = subprocess.Popen(project.cmd("deploy", "--stage", "sandbox", endpoint=proxy.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=credentials_env(project.home))
    assert proxy.held.wait(120), "the deploy never reached the mutating call to hold"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    proxy.hold_at = None
    proxy.release.set()
    return proc


# Held mutating call: 6 = a code upload, 12 = among functions, versions and aliases,
# 25 = an HTTP API route, 45 = an alias permission (the watchlist stack makes about 50).
@pytest.mark.parametrize("kill_at", [6, 12, 25, 45])
def test_a_deploy_killed_midway_is_repaired_by_the_next(moto, project, kill_at):
    proxy = FaultProxy(moto.port)
    try:
        proc = kill_deploy_at(project, proxy, kill_at)

        # The killed deploy held the lock; its process is gone from this host, so the next
        # deploy takes the lock over (a holder on another host needs --force-unlock).
        p = ok(project.deploy("sandbox", "--lock-timeout", "1"))
        assert f"was left by a deploy that is gone" in p.stderr and f"pid {proc.pid}" in p.stderr, p.stderr
        # Converged: everything exists, and one more deploy changes nothing.
        lam = moto.client("lambda")
        for fn in ALL_FUNCTIONS:
            assert alias_version(lam, fn, "sandbox") == "1"
        api_id = rest_api(moto.client("apigateway"))
        assert moto.client("apigateway").get_stage(restApiId=api_id, stageName="sandbox")["variables"] == {
            "environment": "sandbox"}
        nothing_changes(moto, lambda: project.deploy("sandbox"))
        assert record(moto, "sandbox")["functions"]["movies-find"]["alias"]["version"] == "1"
    finally:
        proxy.stop()


# After the lock (1): 2 = the plan loses its stage, 3 = its key association, 4 = the plan,
# 5 = the key, 6 = the HTTP API, 7 = the function.
@pytest.mark.parametrize("kill_at", [3, 5, 7])
def test_a_removal_killed_midway_is_finished_by_the_next_deploy(moto, project, kill_at):
    ok(project.deploy("sandbox"))
    lam, apigw, v2 = moto.client("lambda"), moto.client("apigateway"), moto.client("apigatewayv2")
    stack = project.app / "sluice.yaml"
    text = cut(cut(stack.read_text(), "  recommend:\n", "\napis:"), "  discover:\n", "\napi_keys:")
    stack.write_text(text[:text.index("api_keys:\n")])
    proxy = FaultProxy(moto.port)
    try:
        kill_deploy_at(project, proxy, kill_at)
    finally:
        proxy.stop()
    p = ok(project.deploy("sandbox", "--lock-timeout", "1"))
    assert "already gone" in p.stderr or "remove" in p.stderr, p.stderr
    assert f"{STACK}-recommend" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert [a for a in v2.get_apis()["Items"] if a["Name"] == f"{STACK}-discover"] == []
    assert [p for p in apigw.get_usage_plans()["items"] if p["name"] == f"{STACK}-web"] == []
    assert [k for k in apigw.get_api_keys()["items"] if k["name"] == f"{STACK}-watchlist-web"] == []
    rec = record(moto, "sandbox")
    assert "recommend" not in rec["functions"] and "usage_plans" not in rec and "api_keys" not in rec
    nothing_changes(moto, lambda: project.deploy("sandbox"))


def test_layers_authorizers_throttles_and_pruning(moto, tmp_path):
    """The shop fixture: layers, a custom runtime, REST TOKEN/REQUEST authorizers, route
    throttles, HTTP API JWT and Lambda authorizers; then an edit that removes routes,
    changes a layer and adds a canary weight."""
    app = tmp_path / "shop"
    shutil.copytree(FIXTURES / "deploy", app)
    home = tmp_path / "home"
    home.mkdir()

    def deploy():
        return subprocess.run([str(BIN), "deploy", "--stage", "dev", str(app / "sluice.yaml"), "--endpoint-url",
                               moto.url], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                              env=credentials_env(home))

    ok(deploy())
    lam, apigw, v2 = (moto.client(s, region="us-east-1") for s in ("lambda", "apigateway", "apigatewayv2"))
    cfg = lam.get_function(FunctionName="shop-api")["Configuration"]
    assert [l["Arn"].split(":")[-2:] for l in cfg["Layers"]] == [["shop-layers-shared", "1"]]
    assert cfg["Environment"]["Variables"] == {"GREETING": "hello"}
    custom = lam.get_function(FunctionName="shop-custom")["Configuration"]
    assert custom["Runtime"] == "provided.al2023"
    invoke_cfg = lam.get_function_event_invoke_config(FunctionName="shop-custom")
    assert invoke_cfg["MaximumRetryAttempts"] == 0 and invoke_cfg["MaximumEventAgeInSeconds"] == 120

    api_id = [a for a in apigw.get_rest_apis()["items"] if a["name"] == "shop-shop"][0]["id"]
    assert apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["image/png"]
    auths = {a["name"]: a for a in apigw.get_authorizers(restApiId=api_id)["items"]}
    assert auths["tokens"]["type"] == "TOKEN" and auths["tokens"]["identityValidationExpression"] == "^Bearer .+$"
    assert auths["tokens"]["authorizerResultTtlInSeconds"] == 60
    assert auths["tenant"]["type"] == "REQUEST"
    assert auths["tenant"]["identitySource"] == "method.request.header.X-Tenant"
    assert auths["tokens"]["authorizerUri"].endswith(":function:shop-authz/invocations")
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    m = apigw.get_method(restApiId=api_id, resourceId=resources["/items/{id}"], httpMethod="GET")
    assert m["authorizationType"] == "CUSTOM" and m["authorizerId"] == auths["tokens"]["id"]
    m = apigw.get_method(restApiId=api_id, resourceId=resources["/items/{id}/tags"], httpMethod="POST")
    assert m["authorizerId"] == auths["tenant"]["id"] and m["apiKeyRequired"] is True
    m = apigw.get_method(restApiId=api_id, resourceId=resources["/{proxy+}"], httpMethod="ANY")
    assert m["methodIntegration"]["uri"].endswith(":function:shop-custom/invocations")
    settings = apigw.get_stage(restApiId=api_id, stageName="dev")["methodSettings"]
    assert settings["*/*"]["throttlingRateLimit"] == 100.0 and settings["*/*"]["throttlingBurstLimit"] == 200
    assert settings["~1items/GET"]["throttlingRateLimit"] == 5.0
    policy = json.loads(lam.get_policy(FunctionName="shop-authz")["Policy"])
    sources = {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]}
    assert f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/authorizers/{auths['tokens']['id']}" in sources

    web = [a for a in v2.get_apis()["Items"] if a["Name"] == "shop-web"][0]["ApiId"]
    routes = {r["RouteKey"]: r for r in v2.get_routes(ApiId=web)["Items"]}
    assert set(routes) == {"GET /me", "POST /orders", "$default"}
    assert routes["GET /me"]["AuthorizationType"] == "JWT" and routes["GET /me"]["AuthorizationScopes"] == ["profile"]
    jwt = v2.get_authorizer(ApiId=web, AuthorizerId=routes["GET /me"]["AuthorizerId"])
    assert jwt["JwtConfiguration"] == {"Audience": ["web"], "Issuer": "https://auth.example.com/"}
    assert routes["POST /orders"]["AuthorizationType"] == "CUSTOM"
    orders = v2.get_integration(ApiId=web, IntegrationId=routes["POST /orders"]["Target"].split("/")[1])
    assert orders["PayloadFormatVersion"] == "1.0"
    stage = v2.get_stage(ApiId=web, StageName="dev")
    assert stage["StageVariables"] == {"flag": "on"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 4
    plans = [p for p in apigw.get_usage_plans()["items"] if p["name"] == "shop-gold"]
    assert len(apigw.get_usage_plan_keys(usagePlanId=plans[0]["id"])["items"]) == 2
    assert plans[0]["quota"]["period"] == "WEEK"

    nothing_changes(moto, deploy)

    # Edit: two routes go, the layer changes, the alias gets a canary weight on version 1.
    text = (app / "sluice.yaml").read_text()
    text = text.replace("      GET /items: api:${stageVariables.alias}\n", "")
    text = text.replace('      POST /orders: {function: custom, authorizer: lambda-auth, payload_format: "1.0"}\n', "")
    text = text.replace("      dev: $LATEST\n", '      dev: {version: "2", weights: {"1": 0.25}}\n')
    text = text.replace("          GET /items: {rate: 5, burst: 10}\n", "          GET /items/{id}: {rate: 5, burst: 10}\n")
    text = text.replace("binary_media_types: [image/png]", "binary_media_types: [application/octet-stream]")
    (app / "sluice.yaml").write_text(text)
    (app / "layers" / "shared" / "python" / "shared_lib.py").write_text('NAME = "shared, edited"\n')
    p = ok(deploy())
    assert "- remove method shop-shop GET /items" in p.stderr
    assert "- remove route shop-web POST /orders" in p.stderr
    assert "~ update REST API shop-shop (binary media types)" in p.stderr
    assert apigw.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["application/octet-stream"]
    cfg = lam.get_function(FunctionName="shop-api")["Configuration"]
    assert [l["Arn"].split(":")[-2:] for l in cfg["Layers"]] == [["shop-layers-shared", "2"]]
    alias = lam.get_alias(FunctionName="shop-api", Name="dev")
    assert alias["FunctionVersion"] == "2"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"1": 0.25}
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert "GET" not in (resources["/items"].get("resourceMethods") or {})
    assert "/items/{id}" in resources
    assert set(r["RouteKey"] for r in v2.get_routes(ApiId=web)["Items"]) == {"GET /me", "$default"}
    nothing_changes(moto, deploy)


def run_on_terminal(cmd, env, answer, timeout=120):
    """Runs cmd with stdin and stderr on a pseudo-terminal; types `answer` at the question."""
    import pty
    import select
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    out, answered = b"", False
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(master, answer)
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_a_terminal_is_asked_first_and_shown_a_progress_bar(moto, project):
    env = credentials_env(project.home)
    rc, out = run_on_terminal(project.cmd("deploy", "--stage", "sandbox"), env, b"n\n")
    assert rc == 1, out
    assert "apply these changes to stage sandbox? [y/N]" in out and "not applied" in out
    assert moto.client("lambda").list_functions()["Functions"] == []

    rc, out = run_on_terminal(project.cmd("deploy", "--stage", "sandbox"), env, b"y\n")
    assert rc == 0, out
    assert "\r  uploading code/" in out and "100%" in out and "#" * 30 in out, out
    assert "stage sandbox:" in out
    assert len(moto.client("lambda").list_functions()["Functions"]) == len(ALL_FUNCTIONS)


def test_role_arn_uses_the_given_execution_role(moto, project):
    iam = moto.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName="team-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    p = ok(project.deploy("sandbox", "--role-arn", arn))
    assert "create role" not in p.stderr
    lam = moto.client("lambda")
    for fn in ALL_FUNCTIONS:
        assert lam.get_function(FunctionName=f"{STACK}-{fn}")["Configuration"]["Role"] == arn
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["team-lambda"]


def url_calls(calls, fn):
    """(method, query, body) of the recorded calls to a function's URL config and policy."""
    out = []
    for c in calls:
        u = urlsplit(c["url"])
        path = u.path.rstrip("/")
        if (path == f"/2021-10-31/functions/{fn}/url" or path.startswith(f"/2015-03-31/functions/{fn}/policy")) \
                and mutating(c):
            body = c.get("body") or ""
            if c.get("body_encoded"):
                body = base64.b64decode(body).decode()
            out.append((c["method"], u.path.split("/")[-1], u.query, json.loads(body) if body else None))
    return out


def test_function_url_of_the_stage_alias_created_updated_and_removed(moto, project):
    stack = project.app / "sluice.yaml"
    find = f"{STACK}-movies-find"
    handler = "    handler: watchlist.handlers.find_movie.handler\n"
    stack.write_text(stack.read_text().replace(handler, handler + "    url: true\n"))
    moto.start_recording()
    p = ok(project.deploy("sandbox"))
    calls = url_calls(moto.stop_recording(), find)
    # The URL of the stage's alias, public: both permissions AWS asks for since October 2025.
    assert ("POST", "url", "Qualifier=sandbox", {"AuthType": "NONE", "InvokeMode": "BUFFERED"}) in calls
    assert ("POST", "policy", "Qualifier=sandbox",
            {"StatementId": "sluice-url-public", "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
             "FunctionUrlAuthType": "NONE"}) in calls
    assert ("POST", "policy", "Qualifier=sandbox",
            {"StatementId": "sluice-url-invoke", "Action": "lambda:InvokeFunction", "Principal": "*",
             "InvokedViaFunctionUrl": True}) in calls
    assert f"+ create function URL {find}:sandbox (AuthType NONE, BUFFERED)" in p.stderr
    url = moto.client("lambda").get_function_url_config(FunctionName=find, Qualifier="sandbox")["FunctionUrl"]
    assert f"function URL of movies-find: {url}" in p.stderr
    assert record(moto, "sandbox")["functions"]["movies-find"]["url"] == url

    # Unchanged: nothing to do.
    nothing_changes(moto, lambda: project.deploy("sandbox"))

    # AWS_IAM with CORS: the config is updated and the public permissions go.
    stack.write_text(stack.read_text().replace(
        "    url: true\n", "    url: {auth: AWS_IAM, cors: {allow_origins: [\"https://example.com\"], max_age: 60}}\n"))
    moto.start_recording()
    p = ok(project.deploy("sandbox"))
    calls = url_calls(moto.stop_recording(), find)
    assert f"~ update function URL {find}:sandbox (AuthType, Cors)" in p.stderr
    assert f"- remove permission {find}:sandbox" in p.stderr
    put = [b for m, kind, q, b in calls if m == "PUT" and kind == "url"]
    assert put == [{"AuthType": "AWS_IAM", "InvokeMode": "BUFFERED",
                    "Cors": {"AllowOrigins": ["https://example.com"], "AllowMethods": [], "AllowHeaders": [],
                             "ExposeHeaders": [], "AllowCredentials": False, "MaxAge": 60}}]
    assert sorted(kind for m, kind, q, b in calls if m == "DELETE") == ["sluice-url-invoke", "sluice-url-public"]

    # Gone from the stack: the URL is deleted.
    stack.write_text(stack.read_text().replace(
        "    url: {auth: AWS_IAM, cors: {allow_origins: [\"https://example.com\"], max_age: 60}}\n", ""))
    p = ok(project.deploy("sandbox"))
    assert f"- remove function URL {find}:sandbox" in p.stderr
    with pytest.raises(Exception):
        moto.client("lambda").get_function_url_config(FunctionName=find, Qualifier="sandbox")


def test_async_destinations_go_on_the_stage_alias_with_the_role_allowed_to_reach_them(moto, project):
    stack = project.app / "sluice.yaml"
    add = f"{STACK}-favorites-add"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:favorites-failed"
    moto.client("sqs").create_queue(QueueName="favorites-failed")
    text = stack.read_text()
    anchor = "    handler: watchlist.handlers.favorites.add_favorite\n"
    dlq = f"arn:aws:sns:{REGION}:{ACCOUNT}:favorites-dead"
    stack.write_text(text.replace(anchor, anchor + f"    async: {{max_retry_attempts: 1, on_success: movies-list, "
                                                   f"on_failure: {queue}, dead_letter: {dlq}}}\n"))
    moto.start_recording()
    p = ok(project.deploy("sandbox"))
    calls = moto.stop_recording()
    listed = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-movies-list:sandbox"
    assert (f"+ create async destinations {add}:sandbox (on success {listed}, on failure {queue})") in p.stderr
    puts = []
    for c in calls:
        u = urlsplit(c["url"])
        if c["method"] == "PUT" and u.path == f"/2019-09-25/functions/{add}/event-invoke-config":
            body = c.get("body") or ""
            if c.get("body_encoded"):
                body = base64.b64decode(body).decode()
            puts.append((u.query, json.loads(body)))
    # The function's own config (retries) and the stage alias's, with the destinations.
    assert ("Qualifier=sandbox", {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 21600,
                                  "DestinationConfig": {"OnSuccess": {"Destination": listed},
                                                        "OnFailure": {"Destination": queue}}}) in puts
    # The dead-letter queue is the function's configuration.
    configs = [json.loads(base64.b64decode(c["body"]).decode() if c.get("body_encoded") else c["body"])
               for c in calls if c["method"] in ("POST", "PUT") and
               urlsplit(c["url"]).path in ("/2015-03-31/functions", f"/2015-03-31/functions/{add}/configuration")]
    assert [b["DeadLetterConfig"] for b in configs if b.get("FunctionName", add) == add] == [{"TargetArn": dlq}]
    # The role may send there: an inline policy kept to the destinations.
    iam = moto.client("iam")
    doc = iam.get_role_policy(RoleName=f"sluice-{STACK}-lambda", PolicyName="sluice-integrations")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    assert sorted((s["Action"], tuple(s["Resource"])) for s in doc["Statement"]) == [
        ("lambda:InvokeFunction", (listed,)), ("sns:Publish", (dlq,)), ("sqs:SendMessage", (queue,))]
    assert f"+ create role policy sluice-{STACK}-lambda sluice-integrations" in p.stderr

    # Gone from the stack: the role policy goes (moto answers the alias's config with the
    # function's own whatever the qualifier, so the alias config's removal is seen in AWS only).
    stack.write_text(text)
    p = ok(project.deploy("sandbox"))
    assert f"- remove role policy sluice-{STACK}-lambda sluice-integrations" in p.stderr
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role_policy(RoleName=f"sluice-{STACK}-lambda", PolicyName="sluice-integrations")


def test_sqs_event_sources_are_mappings_on_the_stage_alias(moto, project):
    stack = project.app / "sluice.yaml"
    text = stack.read_text()
    sqs = moto.client("sqs")
    sqs.create_queue(QueueName="favorites-in")
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:favorites-in"
    stack.write_text(text + f"""event_sources:
  favorites-in:
    function: favorites-add
    queue: {queue}
    batch_size: 5
    report_batch_item_failures: true
    max_concurrency: 3
    filters:
      - {{body: {{kind: [favorite]}}}}
""")
    p = ok(project.deploy("sandbox"))
    target = f"{STACK}-favorites-add:sandbox"
    assert f"+ create event source {target} ({queue}, batches of 5, 1 filter(s))" in p.stderr
    lam = moto.client("lambda")
    [m] = lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"]
    assert (m["EventSourceArn"], m["BatchSize"]) == (queue, 5)
    assert m["FilterCriteria"] == {"Filters": [{"Pattern": '{"body":{"kind":["favorite"]}}'}]}
    assert m["ScalingConfig"] == {"MaximumConcurrency": 3}
    iam = moto.client("iam")
    doc = iam.get_role_policy(RoleName=f"sluice-{STACK}-lambda", PolicyName="sluice-integrations")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    assert sorted(s["Action"] for s in doc["Statement"]) == [
        "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]

    # Unchanged: nothing to do; a new batch size: updated in place.
    nothing_changes(moto, lambda: project.deploy("sandbox"))
    stack.write_text(stack.read_text().replace("batch_size: 5", "batch_size: 8"))
    p = ok(project.deploy("sandbox"))
    assert f"~ update event source {target} ({queue} (BatchSize))" in p.stderr
    [m2] = lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"]
    assert (m2["UUID"], m2["BatchSize"]) == (m["UUID"], 8)
    # Other filters: updated; none any more: FilterCriteria {} removes them (AWS's way).
    stack.write_text(stack.read_text().replace("[favorite]", "[favorite, unfavorite]"))
    p = ok(project.deploy("sandbox"))
    assert f"~ update event source {target} ({queue} (FilterCriteria))" in p.stderr
    [m3] = lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"]
    assert json.loads(m3["FilterCriteria"]["Filters"][0]["Pattern"]) == {"body": {"kind": ["favorite", "unfavorite"]}}
    stack.write_text(stack.read_text().replace("    filters:\n      - {body: {kind: [favorite, unfavorite]}}\n", ""))
    p = ok(project.deploy("sandbox"))
    assert f"~ update event source {target} ({queue} (FilterCriteria))" in p.stderr
    [m4] = lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"]
    assert not m4.get("FilterCriteria")
    stack.write_text(stack.read_text().replace("    max_concurrency: 3\n", ""))
    p = ok(project.deploy("sandbox"))
    assert f"~ update event source {target} ({queue} (ScalingConfig))" in p.stderr
    [m5] = lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"]
    assert not m5.get("ScalingConfig")

    # Gone from the stack: the mapping and the role policy go.
    stack.write_text(text)
    p = ok(project.deploy("sandbox"))
    assert f"- remove event source {target} ({queue})" in p.stderr
    assert lam.list_event_source_mappings(FunctionName=target)["EventSourceMappings"] == []



def nothing_changes(moto, deploy):
    """Deploys again and asserts that no mutating call was made; returns the finished deploy."""
    moto.start_recording()
    p = ok(deploy())
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    return p


def shop(tmp_path, moto):
    """A copy of the shop fixture (fixtures/deploy) and a function that deploys its stage dev."""
    app = tmp_path / "shop"
    shutil.copytree(FIXTURES / "deploy", app)
    home = tmp_path / "home"
    home.mkdir()

    def deploy(*extra, endpoint=None, stage="dev"):
        return subprocess.run([str(BIN), "deploy", "--stage", stage, str(app / "sluice.yaml"), "--endpoint-url",
                               endpoint or moto.url, *extra], capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL, env=credentials_env(home))
    return app, deploy


def shop_clients(moto):
    return tuple(moto.client(s, region="us-east-1") for s in ("lambda", "apigateway", "apigatewayv2"))


def shop_api_ids(apigw, v2):
    rest = [a for a in apigw.get_rest_apis()["items"] if a["name"] == "shop-shop"][0]["id"]
    web = [a for a in v2.get_apis()["Items"] if a["Name"] == "shop-web"][0]["ApiId"]
    return rest, web


def deployed_shop(tmp_path, moto):
    """The shop deployed to stage dev: its stack file, its deploy function, the Lambda, API
    Gateway and API Gateway v2 clients, and the REST and HTTP API ids."""
    app, deploy = shop(tmp_path, moto)
    ok(deploy())
    lam, apigw, v2 = shop_clients(moto)
    rest, web = shop_api_ids(apigw, v2)
    return app / "sluice.yaml", deploy, lam, apigw, v2, rest, web


def apigateway_sources(lam, function, qualifier=None):
    """The source ARNs of the apigateway.amazonaws.com statements of a function's (or alias's) policy."""
    kw = {"Qualifier": qualifier} if qualifier else {}
    doc = json.loads(lam.get_policy(FunctionName=function, **kw)["Policy"])
    return {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in doc["Statement"]
            if s["Principal"] == {"Service": "apigateway.amazonaws.com"}}


def test_a_route_to_another_alias_of_the_stack_gets_that_alias_before_its_permission(moto, tmp_path):
    app, deploy = shop(tmp_path, moto)
    stack = app / "sluice.yaml"
    text = stack.read_text()
    text = text.replace("      dev: $LATEST\n", "      dev: $LATEST\n      live: $LATEST\n")
    text = text.replace("      ANY /{proxy+}: custom\n", "      ANY /{proxy+}: custom\n      GET /live: api:live\n")
    text = text.replace("      $default: api\n", "      $default: api\n      GET /live: api:live\n")
    stack.write_text(text)
    p = ok(deploy())
    assert "+ create alias shop-api:live (version (new))" in p.stderr, p.stderr
    lam, apigw, v2 = shop_clients(moto)
    rest, web = shop_api_ids(apigw, v2)
    # `live: $LATEST` is the version this deploy published, as for the stage's alias.
    assert lam.get_alias(FunctionName="shop-api", Name="live")["FunctionVersion"] == "1"
    assert apigateway_sources(lam, "shop-api", "live") == {
        f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{rest}/*/*/*", f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{web}/*"}
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=rest)["items"]}
    m = apigw.get_method(restApiId=rest, resourceId=resources["/live"], httpMethod="GET")
    assert m["methodIntegration"]["uri"].endswith(":function:shop-api:live/invocations")
    nothing_changes(moto, deploy)

    # Pinned, with a canary on the version this deploy publishes: dev moves, live stays on 1.
    stack.write_text(stack.read_text().replace("      live: $LATEST\n", '      live: {version: "1", weights: {"2": 0.1}}\n'))
    (app / "app" / "app.py").write_text((app / "app" / "app.py").read_text() + "\n# v2\n")
    p = ok(deploy())
    assert "~ update alias shop-api:live (version 1 -> 1 (+ 2 at 0.10))" in p.stderr, p.stderr
    alias = lam.get_alias(FunctionName="shop-api", Name="live")
    assert alias["FunctionVersion"] == "1" and alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    assert lam.get_alias(FunctionName="shop-api", Name="dev")["FunctionVersion"] == "2"

    # A version that does not exist: refused in the plan, before any change.
    stack.write_text(stack.read_text().replace('      live: {version: "1", weights: {"2": 0.1}}\n', '      live: "7"\n'))
    moto.start_recording()
    p = deploy()
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    assert p.returncode == 1, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last == ("sluice deploy: route GET /live of API shop reaches api:live in stage dev: functions.api.aliases.live "
                    "names version 7, which shop-api does not have in AWS (deploy publishes versions as the code "
                    "changes: name one that exists); nothing was changed"), p.stderr

    # A stage variable that resolves to an alias the stack does not define, and AWS does not have.
    stack.write_text(stack.read_text().replace('      live: "7"\n', '      live: "1"\n')
                     .replace("variables: {alias: dev}", "variables: {alias: ghost}"))
    moto.start_recording()
    p = deploy()
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    assert p.returncode == 1, p.stderr
    assert ("route GET /items of API shop reaches api:ghost in stage dev, but the stack defines no alias ghost for api "
            "and shop-api has none in AWS; declare it under functions.api.aliases; nothing was changed") in p.stderr


def test_a_route_to_latest_is_granted_on_the_function_itself(moto, tmp_path):
    """AWS refuses AddPermission with Qualifier=$LATEST (moto accepts it): the proxy answers as AWS does."""
    app, deploy = shop(tmp_path, moto)
    stack = app / "sluice.yaml"
    text = stack.read_text()
    text = text.replace("      ANY /{proxy+}: custom\n", "      ANY /{proxy+}: custom\n      GET /latest: api:$LATEST\n")
    text = text.replace("      $default: api\n", "      $default: api\n      GET /latest: custom:$LATEST\n")
    stack.write_text(text)
    proxy = FaultProxy(moto.port)
    proxy.rules.append({
        "match": lambda m, path, body: m == "POST" and "/policy" in path and ("Qualifier=%24LATEST" in path or
                                                                            "Qualifier=$LATEST" in path),
        "status": 400, "times": None,
        "body": json.dumps({"Type": "User", "message": "We currently do not support adding policies for $LATEST."}),
        "headers": {"content-type": "application/json", "x-amzn-ErrorType": "InvalidParameterValueException"}})
    try:
        p = ok(deploy(endpoint=proxy.url))
        assert [c for c in proxy.calls if "LATEST" in c[1]] == [], proxy.calls
        lam, apigw, v2 = shop_clients(moto)
        rest, web = shop_api_ids(apigw, v2)
        assert f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{rest}/*/*/*" in apigateway_sources(lam, "shop-api")
        assert f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{web}/*" in apigateway_sources(lam, "shop-custom")
        # The integrations invoke the function itself, which is $LATEST.
        resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=rest)["items"]}
        m = apigw.get_method(restApiId=rest, resourceId=resources["/latest"], httpMethod="GET")
        assert m["methodIntegration"]["uri"].endswith(":function:shop-api/invocations")
        moto.start_recording()
        p = ok(deploy(endpoint=proxy.url))
        assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    finally:
        proxy.stop()


@pytest.mark.parametrize("stage", ["prod.eu", "42", "my stage", "a" * 129, "$default"])
def test_a_stage_that_cannot_be_an_alias_name_is_refused_before_any_call(moto, project, stage):
    moto.start_recording()
    p = project.deploy(stage)
    assert moto.stop_recording() == []
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("sluice deploy: --stage \""), p.stderr
    assert ("cannot be deployed: each stage becomes an alias of every function, and a Lambda alias name is 1 to 128 "
            "letters, digits, '-' or '_', and not only digits") in p.stderr
    p = project.run("rollback", "--stage", stage)
    assert p.returncode == 2 and "sluice rollback: --stage" in p.stderr, p.stderr


def test_an_edited_rest_authorizer_or_integration_makes_a_new_deployment(moto, tmp_path):
    stack, deploy, _, apigw, v2, rest, _ = deployed_shop(tmp_path, moto)

    def deployment():
        dep_id = apigw.get_stage(restApiId=rest, stageName="dev")["deploymentId"]
        return dep_id, apigw.get_deployment(restApiId=rest, deploymentId=dep_id)["description"]

    def authorizers():
        return {a["name"]: a for a in apigw.get_authorizers(restApiId=rest)["items"]}

    seen = [deployment()]
    edits = [
        ('identity_validation_expression: "^Bearer .+$"', 'identity_validation_expression: "^Token .+$"'),
        ("tenant: {type: request,", "tenant: {type: token,"),
        ("identity_source: [method.request.header.X-Tenant]", "identity_source: [method.request.header.X-Org]"),
        ("ttl: 60}", "ttl: 120}"),
        ("      ANY /{proxy+}: custom\n", "      ANY /{proxy+}: {function: custom, timeout_ms: 5000}\n"),
    ]
    for old, new in edits:
        stack.write_text(stack.read_text().replace(old, new))
        p = ok(deploy())
        assert "+ create deployment shop-shop" in p.stderr and "~ update stage shop-shop dev (new deployment)" in p.stderr, \
            (old, p.stderr)
        now = deployment()
        assert now[0] not in [d for d, _ in seen] and now[1] not in [t for _, t in seen], (old, now, seen)
        seen.append(now)
    auths = authorizers()
    assert auths["tokens"]["identityValidationExpression"] == "^Token .+$"
    assert auths["tokens"]["authorizerResultTtlInSeconds"] == 120
    assert auths["tenant"]["type"] == "TOKEN"
    assert auths["tenant"]["identitySource"] == "method.request.header.X-Org"
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=rest)["items"]}
    m = apigw.get_method(restApiId=rest, resourceId=resources["/{proxy+}"], httpMethod="ANY")
    assert int(m["methodIntegration"]["timeoutInMillis"]) == 5000
    nothing_changes(moto, deploy)


def test_an_edited_http_lambda_authorizer_is_updated(moto, tmp_path):
    stack, deploy, _, apigw, v2, _, web = deployed_shop(tmp_path, moto)
    routes = {r["RouteKey"]: r for r in v2.get_routes(ApiId=web)["Items"]}
    auth_id = routes["POST /orders"]["AuthorizerId"]
    edits = [("        ttl: 30\n", "        ttl: 90\n", "ttl"),
             ("        simple_responses: true\n", "        simple_responses: false\n", "simple responses"),
             ('        payload_format: "2.0"\n', '        payload_format: "1.0"\n', "payload format")]
    for old, new, what in edits:
        stack.write_text(stack.read_text().replace(old, new))
        p = ok(deploy())
        assert f"~ update authorizer shop-web lambda-auth ({what})" in p.stderr, p.stderr
    a = v2.get_authorizer(ApiId=web, AuthorizerId=auth_id)
    assert a["AuthorizerResultTtlInSeconds"] == 90
    assert a["AuthorizerPayloadFormatVersion"] == "1.0"
    assert a.get("EnableSimpleResponses") in (False, None)
    nothing_changes(moto, deploy)


def test_a_usage_plan_loses_the_keys_stages_and_limits_the_stack_removes(moto, project):
    stack = project.app / "sluice.yaml"
    text = stack.read_text()
    admin = ("  admin:\n    type: rest\n    routes:\n      GET /stats: movies-list:${stageVariables.environment}\n"
             "    stages:\n      sandbox: {variables: {environment: sandbox}}\n")
    text = text.replace("  discover:\n", admin + "  discover:\n")
    text = text.replace("watchlist/production]\n", "watchlist/production, admin/sandbox]\n")
    text = text.replace("    keys: [watchlist-web]\n", "    keys: [watchlist-web, partner]\n")
    text = text.replace('  watchlist-web: {value: "watchlist-web-key-0123456789"}\n',
                        '  watchlist-web: {value: "watchlist-web-key-0123456789"}\n'
                        '  partner: {value: "partner-key-0123456789abcdef"}\n')
    stack.write_text(text)
    ok(project.deploy("sandbox"))
    apigw = moto.client("apigateway")

    def plan():
        return [p for p in apigw.get_usage_plans()["items"] if p["name"] == f"{STACK}-web"][0]

    def key_names():
        return sorted(k["name"] for k in apigw.get_usage_plan_keys(usagePlanId=plan()["id"])["items"])

    api_id = rest_api(apigw)
    admin_id = [a for a in apigw.get_rest_apis()["items"] if a["name"] == f"{STACK}-admin"][0]["id"]
    assert sorted((s["apiId"], s["stage"]) for s in plan()["apiStages"]) == sorted(
        [(api_id, "sandbox"), (admin_id, "sandbox")])
    assert key_names() == [f"{STACK}-partner", f"{STACK}-watchlist-web"]
    assert plan()["throttle"]["burstLimit"] == 40 and plan()["quota"]["limit"] == 10000

    # The admin API's stage, the partner key, the throttle and the quota leave the plan.
    text = stack.read_text()
    text = text.replace(", admin/sandbox]", "]").replace("keys: [watchlist-web, partner]", "keys: [watchlist-web]")
    text = text.replace("    throttle: {rate: 20, burst: 40}\n    quota: {limit: 10000, period: DAY}\n", "")
    stack.write_text(text)
    p = ok(project.deploy("sandbox"))
    assert f"- remove usage plan key {STACK}-web {STACK}-partner (no longer in the plan)" in p.stderr, p.stderr
    got = plan()
    assert [(s["apiId"], s["stage"]) for s in got["apiStages"]] == [(api_id, "sandbox")]
    assert not got.get("throttle") and not got.get("quota"), got
    assert key_names() == [f"{STACK}-watchlist-web"]
    nothing_changes(moto, lambda: project.deploy("sandbox"))


def test_a_usage_plans_route_throttles_go_on_its_api_stage_and_follow_the_stack(moto, tmp_path):
    app, deploy = shop(tmp_path, moto)
    stack = app / "sluice.yaml"
    gold = "    keys: [partner, internal]\n"
    stack.write_text(stack.read_text().replace(gold, gold + "    route_throttles:\n"
                                               '      "shop/dev/GET /items/{id}": {rate: 5, burst: 10}\n'
                                               '      "shop/dev/POST /items/{id}/tags": {rate: 1, burst: 2}\n'))
    ok(deploy())
    lam, apigw, v2 = shop_clients(moto)
    rest, _ = shop_api_ids(apigw, v2)

    def plan():
        return [p for p in apigw.get_usage_plans()["items"] if p["name"] == "shop-gold"][0]

    # Keyed as AWS keys them, "/{resourcePath}/{httpMethod}", on the plan's entry for the API stage.
    assert plan()["apiStages"] == [{"apiId": rest, "stage": "dev", "throttle": {
        "/items/{id}/GET": {"burstLimit": 10, "rateLimit": 5.0},
        "/items/{id}/tags/POST": {"burstLimit": 2, "rateLimit": 1.0}}}], plan()
    nothing_changes(moto, deploy)

    # One changed, one dropped, one added: patch operations on that API stage's throttle map.
    text = stack.read_text()
    text = text.replace('"shop/dev/GET /items/{id}": {rate: 5, burst: 10}', '"shop/dev/GET /items/{id}": {rate: 7.5, burst: 10}')
    text = text.replace('      "shop/dev/POST /items/{id}/tags": {rate: 1, burst: 2}\n',
                        '      "shop/dev/GET /items": {rate: 3, burst: 6}\n')
    stack.write_text(text)
    moto.start_recording()
    p = ok(deploy())
    calls = moto.stop_recording()
    assert "~ update usage plan shop-gold (3 route throttle(s))" in p.stderr, p.stderr
    plan_id = plan()["id"]
    ops = [op for _, b in recorded_bodies(calls, "PATCH", f"/usageplans/{plan_id}") for op in b["patchOperations"]]
    at = f"/apiStages/{rest}:dev/throttle/"
    assert sorted(ops, key=json.dumps) == sorted([
        {"op": "replace", "path": at + "/items/{id}/GET/rateLimit", "value": "7.50"},
        {"op": "replace", "path": at + "/items/GET/rateLimit", "value": "3.00"},
        {"op": "replace", "path": at + "/items/GET/burstLimit", "value": "6"},
        {"op": "remove", "path": at + "/items/{id}/tags/POST"}], key=json.dumps), ops
    # moto 5 ignores these paths (its plan keeps the throttles it was created with), so what
    # AWS then shows, and a redeploy changing nothing after an edit, can only be checked there.


def drop_tenant_and_lambda_auth(stack):
    """Edit the shop stack: the REST API's tenant authorizer goes (its route keeps its key); the
    HTTP API's Lambda authorizer goes with the only route using it (custom, payload 1.0)."""
    text = stack.read_text()
    text = text.replace("      tenant: {type: request, function: authz, identity_source: [method.request.header.X-Tenant], "
                        "ttl: 0}\n", "")
    text = text.replace('{function: "api:${stageVariables.alias}", authorizer: tenant, api_key_required: true}',
                        '{function: "api:${stageVariables.alias}", api_key_required: true}')
    text = cut(text, "      lambda-auth:\n", "    routes:\n      GET /me")
    text = text.replace('      POST /orders: {function: custom, authorizer: lambda-auth, payload_format: "1.0"}\n', "")
    stack.write_text(text)


def test_authorizers_and_integrations_the_stack_no_longer_uses_are_deleted(moto, tmp_path):
    stack, deploy, _, apigw, v2, rest, web = deployed_shop(tmp_path, moto)
    lambda_auth = {r["RouteKey"]: r for r in v2.get_routes(ApiId=web)["Items"]}["POST /orders"]["AuthorizerId"]
    assert len(v2.get_integrations(ApiId=web)["Items"]) == 3

    # Two authorizers go, and the integration of the route that goes with one of them.
    drop_tenant_and_lambda_auth(stack)
    p = ok(deploy())
    assert "- remove authorizer shop-shop tenant (no longer in the stack)" in p.stderr, p.stderr
    assert "- remove authorizer shop-web lambda-auth (no longer in the stack)" in p.stderr
    assert "- remove integration shop-web shop-custom (payload 1.0, no route uses it)" in p.stderr
    assert sorted(a["name"] for a in apigw.get_authorizers(restApiId=rest)["items"]) == ["tokens"]
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=rest)["items"]}
    m = apigw.get_method(restApiId=rest, resourceId=resources["/items/{id}/tags"], httpMethod="POST")
    assert m["authorizationType"] == "NONE" and m["apiKeyRequired"] is True
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_authorizer(ApiId=web, AuthorizerId=lambda_auth)
    routes = v2.get_routes(ApiId=web)["Items"]
    used = {r["Target"].split("/")[1] for r in routes}
    assert {i["IntegrationId"] for i in v2.get_integrations(ApiId=web)["Items"]} == used
    assert "lambda-auth" not in record_at(moto, "us-east-1", "shop", "dev")["apis"]["web"].get("authorizers", {})
    nothing_changes(moto, deploy)


def authorizer_statements(lam, function, qualifier=None):
    """The sids of a function's (or alias's) policy statements sluice added for authorizers."""
    kw = {"Qualifier": qualifier} if qualifier else {}
    try:
        doc = json.loads(lam.get_policy(FunctionName=function, **kw)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return set()
    return {s["Sid"] for s in doc["Statement"] if "-auth-" in s["Sid"]}


def shop_with_authorizer_statements(tmp_path, moto):
    """The shop deployed, with the invoke statements of its three Lambda authorizers checked."""
    stack, deploy, lam, apigw, v2, rest, web = deployed_shop(tmp_path, moto)
    assert authorizer_statements(lam, "shop-authz") == {
        f"sluice-{rest}-auth-tokens", f"sluice-{rest}-auth-tenant", f"sluice-{web}-auth-lambda-auth"}
    return stack, deploy, lam, apigw, v2, rest, web


def test_a_removed_authorizer_takes_its_invoke_permission_with_it(moto, tmp_path):
    stack, deploy, lam, apigw, v2, rest, web = shop_with_authorizer_statements(tmp_path, moto)

    # A Lambda authorizer of the REST API and the HTTP API's one go; the others stay.
    drop_tenant_and_lambda_auth(stack)
    p = ok(deploy())
    assert "- remove authorizer shop-shop tenant (no longer in the stack)" in p.stderr, p.stderr
    assert (f"- remove permission shop-authz (sluice-{rest}-auth-tenant: authorizer tenant of shop-shop is gone)"
            in p.stderr), p.stderr
    assert (f"- remove permission shop-authz (sluice-{web}-auth-lambda-auth: authorizer lambda-auth of shop-web is "
            "gone)") in p.stderr, p.stderr
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{rest}-auth-tokens"}
    nothing_changes(moto, deploy)


def policy_removals(calls):
    """(function, statement id, qualifier or None) of the RemovePermission requests recorded."""
    out = []
    for c in calls:
        u = urlsplit(c["url"])
        m = re.fullmatch(r"/2015-03-31/functions/([^/]+)/policy/([^/]+)", u.path)
        if c["method"] == "DELETE" and m:
            out.append((unquote(m.group(1)), unquote(m.group(2)), parse_qs(u.query).get("Qualifier", [None])[0]))
    return sorted(out, key=lambda r: (r[0], r[1], r[2] or ""))


def assert_moved(p, calls, *moves):
    """Each move (function, qualifier or None, statement id, authorizer, API, what it invokes now)
    is in the plan, and those statements are exactly the RemovePermission requests sent."""
    for fn, qual, sid, authorizer, api, now in moves:
        line = (f"- remove permission {fn}{':' + qual if qual else ''} ({sid}: authorizer {authorizer} of {api} "
                f"now invokes {now})")
        assert line in p.stderr, (line, p.stderr)
    assert policy_removals(calls) == sorted(((fn, sid, qual) for fn, qual, sid, *_ in moves),
                                            key=lambda r: (r[0], r[1], r[2] or ""))


def point_authorizer(stack, name, function):
    """Edit the shop stack: Lambda authorizer NAME (tokens, tenant or lambda-auth) invokes FUNCTION."""
    text = stack.read_text()
    if name == "lambda-auth":
        text = re.sub(r"(\n      lambda-auth:\n        type: request\n        function: )\S+\n", rf"\g<1>{function}\n", text)
    else:
        text = re.sub(rf"({name}: {{type: \w+, function: )\w+,", rf"\g<1>{function},", text)
    stack.write_text(text)


def test_an_authorizer_moved_to_another_function_or_alias_leaves_no_permission_behind(moto, tmp_path):
    """REST and HTTP Lambda authorizers the stack keeps but points elsewhere: the statement on what
    they invoked before goes once what they invoke now is granted. A run that stops in between
    leaves it to the next, which finds the old target in the stage's record (the API already has
    the new one)."""
    stack, deploy, lam, apigw, v2, rest, web = shop_with_authorizer_statements(tmp_path, moto)

    def uri(name):
        if name == "lambda-auth":
            routes = {r["RouteKey"]: r for r in v2.get_routes(ApiId=web)["Items"]}
            return v2.get_authorizer(ApiId=web, AuthorizerId=routes["POST /orders"]["AuthorizerId"])["AuthorizerUri"]
        return {a["name"]: a for a in apigw.get_authorizers(restApiId=rest)["items"]}[name]["authorizerUri"]

    # The REST API's tenant and the HTTP API's lambda-auth now invoke other functions.
    point_authorizer(stack, "tenant", "api")
    point_authorizer(stack, "lambda-auth", "custom")
    moto.start_recording()
    p = ok(deploy())
    calls = moto.stop_recording()
    assert uri("tenant").endswith(":function:shop-api/invocations"), uri("tenant")
    assert uri("lambda-auth").endswith(":function:shop-custom/invocations"), uri("lambda-auth")
    assert_moved(p, calls, ("shop-authz", None, f"sluice-{rest}-auth-tenant", "tenant", "shop-shop", "shop-api"),
                 ("shop-authz", None, f"sluice-{web}-auth-lambda-auth", "lambda-auth", "shop-web", "shop-custom"))
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{rest}-auth-tokens"}
    assert authorizer_statements(lam, "shop-api") == {f"sluice-{rest}-auth-tenant"}
    assert authorizer_statements(lam, "shop-custom") == {f"sluice-{web}-auth-lambda-auth"}
    plan, summary = plan_and_summary_counts(p.stderr, "dev")
    assert plan == summary, p.stderr
    nothing_changes(moto, deploy)

    # tokens moves to api and lambda-auth back to authz; the run fails removing tokens' old
    # statement: the REST authorizer has moved, the HTTP API is not reached (it comes after).
    point_authorizer(stack, "tokens", "api")
    point_authorizer(stack, "lambda-auth", "authz")
    proxy = FaultProxy(moto.port)
    proxy.rules.append({
        "match": lambda m, path, body: m == "DELETE" and f"/policy/sluice-{rest}-auth-tokens" in path,
        "status": 400, "times": None, "body": json.dumps({"Type": "User", "message": "refused by the test"}),
        "headers": {"content-type": "application/json", "x-amzn-ErrorType": "InvalidParameterValueException"}})
    try:
        p = deploy(endpoint=proxy.url)
    finally:
        proxy.stop()
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("sluice deploy: remove permission shop-authz failed: "), p.stderr
    assert uri("tokens").endswith(":function:shop-api/invocations")
    assert f"sluice-{rest}-auth-tokens" in authorizer_statements(lam, "shop-authz")

    # The next run finds tokens' old function in the stage's record, lambda-auth's on the API.
    moto.start_recording()
    p = ok(deploy())
    calls = moto.stop_recording()
    assert_moved(p, calls, ("shop-authz", None, f"sluice-{rest}-auth-tokens", "tokens", "shop-shop", "shop-api"),
                 ("shop-custom", None, f"sluice-{web}-auth-lambda-auth", "lambda-auth", "shop-web", "shop-authz"))
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{web}-auth-lambda-auth"}
    assert authorizer_statements(lam, "shop-api") == {f"sluice-{rest}-auth-tenant", f"sluice-{rest}-auth-tokens"}
    assert authorizer_statements(lam, "shop-custom") == set()
    assert record_at(moto, "us-east-1", "shop", "dev")["apis"]["shop"]["authorizer_functions"] == {
        "tenant": "shop-api", "tokens": "shop-api"}
    nothing_changes(moto, deploy)

    # A qualifier: the loader takes function names only, so the API is given one from outside,
    # with the statement sluice adds for it (tokens on shop-api:dev); deploy points tokens back at
    # shop-api and removes that statement from the alias's policy. moto's RemovePermission ignores
    # the Qualifier (it looks in the function's own policy): the request sent is what is checked.
    tokens = {a["name"]: a for a in apigw.get_authorizers(restApiId=rest)["items"]}["tokens"]
    apigw.update_authorizer(restApiId=rest, authorizerId=tokens["id"], patchOperations=[
        {"op": "replace", "path": "/authorizerUri", "value": tokens["authorizerUri"].replace(
            ":function:shop-api/", ":function:shop-api:dev/")}])
    lam.add_permission(FunctionName="shop-api", Qualifier="dev", StatementId=f"sluice-{rest}-auth-tokens-dev",
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{rest}/authorizers/{tokens['id']}")
    moto.start_recording()
    p = ok(deploy())
    calls = moto.stop_recording()
    assert_moved(p, calls, ("shop-api", "dev", f"sluice-{rest}-auth-tokens-dev", "tokens", "shop-shop", "shop-api"))
    assert uri("tokens").endswith(":function:shop-api/invocations")
    assert f"sluice-{rest}-auth-tokens" in authorizer_statements(lam, "shop-api")
    nothing_changes(moto, deploy)


def test_a_rest_stage_on_an_older_deployment_keeps_the_authorizer_permission_it_invokes(moto, tmp_path):
    """A REST stage serves the deployment it was given, authorizers included, until it is deployed
    again: what another stage's deploy moved an authorizer away from (or deleted it from) keeps
    its statement until the last stage serving it is deployed. An HTTP API's stages all move at
    once (auto-deploy), so its statements go at once."""
    app, deploy = shop(tmp_path, moto)
    stack = app / "sluice.yaml"
    text = stack.read_text().replace("  web:\n", "      prod: {variables: {alias: prod}}\n  web:\n", 1)
    stack.write_text(text.replace("      dev: $LATEST\n", "      dev: $LATEST\n      prod: $LATEST\n", 1))
    ok(deploy())
    ok(deploy(stage="prod"))
    lam, apigw, v2 = shop_clients(moto)
    rest, web = shop_api_ids(apigw, v2)
    assert authorizer_statements(lam, "shop-authz") == {
        f"sluice-{rest}-auth-tokens", f"sluice-{rest}-auth-tenant", f"sluice-{web}-auth-lambda-auth"}

    def dev_forgets_what_it_kept():
        """Once prod has moved on, dev's next deploy writes nothing but its record, which no longer
        names what it kept; the one after writes nothing."""
        p = ok(deploy())
        assert re.search(r"plan for stage dev \(1 to create, 0 to update, 0 to remove", p.stderr), p.stderr
        assert "retired_authorizer_functions" not in record_at(moto, "us-east-1", "shop", "dev")["apis"]["shop"]
        nothing_changes(moto, deploy)

    # dev's deploy moves tenant to api and lambda-auth to custom: prod still serves the deployment
    # whose tenant invokes authz; the HTTP API's prod stage has moved with dev.
    point_authorizer(stack, "tenant", "api")
    point_authorizer(stack, "lambda-auth", "custom")
    moto.start_recording()
    p = ok(deploy())
    calls = moto.stop_recording()
    assert ("note: authorizer tenant of shop-shop keeps its permission on shop-authz: stage prod still serves a "
            "deployment that invokes it (a deploy of prod removes it)") in p.stderr, p.stderr
    assert_moved(p, calls, ("shop-authz", None, f"sluice-{web}-auth-lambda-auth", "lambda-auth", "shop-web", "shop-custom"))
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{rest}-auth-tokens", f"sluice-{rest}-auth-tenant"}
    assert authorizer_statements(lam, "shop-api") == {f"sluice-{rest}-auth-tenant"}
    assert record_at(moto, "us-east-1", "shop", "dev")["apis"]["shop"]["retired_authorizer_functions"] == {
        "tenant": ["shop-authz"]}
    nothing_changes(moto, deploy)

    # prod moves on: its deploy takes the statement away.
    moto.start_recording()
    p = ok(deploy(stage="prod"))
    calls = moto.stop_recording()
    assert_moved(p, calls, ("shop-authz", None, f"sluice-{rest}-auth-tenant", "tenant", "shop-shop", "shop-api"))
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{rest}-auth-tokens"}
    assert "retired_authorizer_functions" not in record_at(moto, "us-east-1", "shop", "prod")["apis"]["shop"]
    dev_forgets_what_it_kept()

    # tenant leaves the stack (and lambda-auth): dev's deploy deletes the authorizer, and the
    # statement on api stays while prod's deployment invokes it; lambda-auth's goes at once.
    point_authorizer(stack, "tenant", "authz")  # the line drop_tenant_and_lambda_auth() takes out
    drop_tenant_and_lambda_auth(stack)
    p = ok(deploy())
    assert "- remove authorizer shop-shop tenant (no longer in the stack)" in p.stderr, p.stderr
    assert "note: authorizer tenant of shop-shop keeps its permission on shop-api: stage prod" in p.stderr
    assert (f"- remove permission shop-custom (sluice-{web}-auth-lambda-auth: authorizer lambda-auth of shop-web is "
            "gone)") in p.stderr, p.stderr
    assert authorizer_statements(lam, "shop-api") == {f"sluice-{rest}-auth-tenant"}
    assert authorizer_statements(lam, "shop-custom") == set()
    p = ok(deploy(stage="prod"))
    assert f"- remove permission shop-api (sluice-{rest}-auth-tenant: authorizer tenant of shop-shop is gone)" in p.stderr
    assert authorizer_statements(lam, "shop-api") == set()
    dev_forgets_what_it_kept()

    # A stage made outside sluice: what its deployment invokes is not known, so it keeps tokens'
    # statement on authz too; once it is gone, prod's deploy (which moves tokens) removes it.
    apigw.create_deployment(restApiId=rest, stageName="manual")
    point_authorizer(stack, "tokens", "api")
    p = ok(deploy())
    assert ("note: authorizer tokens of shop-shop keeps its permission on shop-authz: stage manual serves a "
            "deployment that sluice has no record of, which may invoke it (a deploy of manual with sluice removes "
            "it)") in p.stderr, p.stderr
    assert authorizer_statements(lam, "shop-authz") == {f"sluice-{rest}-auth-tokens"}
    apigw.delete_stage(restApiId=rest, stageName="manual")
    moto.start_recording()
    p = ok(deploy(stage="prod"))
    calls = moto.stop_recording()
    assert_moved(p, calls, ("shop-authz", None, f"sluice-{rest}-auth-tokens", "tokens", "shop-shop", "shop-api"))
    assert authorizer_statements(lam, "shop-authz") == set()
    dev_forgets_what_it_kept()


def record_at(moto, region, stack, stage):
    s3 = moto.client("s3", region=region)
    name = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"sluice-{stack}-")][0]
    return json.loads(s3.get_object(Bucket=name, Key=f"state/{stage}/current.json")["Body"].read())


def test_a_web_server_error_page_is_one_status_line_in_retry_messages(moto, tmp_path):
    """moto answers GET /v2/apis/ID/authorizers with its HTML error page (HTTP 500)."""
    app, deploy = shop(tmp_path, moto)
    ok(deploy())
    p = ok(deploy())
    assert "<html" not in p.stderr.lower() and "<title>" not in p.stderr.lower(), p.stderr
    assert re.search(r"\n  apigateway GET /v2/apis/\w+/authorizers: HTTP 500 Internal Server Error; retrying in \d+ ms "
                     r"\(attempt 2 of 3\)\n", p.stderr), p.stderr


def plan_and_summary_counts(stderr, stage):
    plan = re.search(rf"plan for stage {stage} \((\d+) to create, (\d+) to update, (\d+) to remove, (\d+) unchanged\)",
                     stderr)
    summary = re.search(rf"stage {stage}: (\d+) created, (\d+) updated, (\d+) removed, (\d+) unchanged", stderr)
    assert plan and summary, stderr
    return plan.groups(), summary.groups()


def test_the_summary_counts_what_the_plan_announced(moto, project):
    plan, summary = plan_and_summary_counts(ok(project.deploy("sandbox")).stderr, "sandbox")
    assert plan == summary
    project.edit_core("counted")
    plan, summary = plan_and_summary_counts(ok(project.deploy("sandbox")).stderr, "sandbox")
    assert plan == summary and plan[3] != "0", plan


def test_a_stale_lock_another_deploy_took_over_first_is_left_to_it(moto, project):
    """Two deploys find the lock of a killed one: the second must not delete the first's fresh lock."""
    import socket
    ok(project.deploy("sandbox"))
    project.edit_core("contended")
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    s3 = moto.client("s3")
    key = "state/sandbox/lock"
    s3.put_object(Bucket=bucket(), Key=key, Body=json.dumps(
        {"holder": f"ci@{host} pid {dead.pid}", "since": "2026-11-22T08:00:00.000Z"}))
    alive = {"holder": f"other@{host} pid {os.getpid()}", "since": "2026-11-22T09:00:00.000Z"}
    proxy = FaultProxy(moto.port)
    done = []

    def another_deploy_takes_it_over(method, path, status, data):
        # Right after this deploy read the stale lock, another one replaces it with its own.
        if method == "GET" and path.split("?")[0].endswith("/" + key) and status == 200 and not done:
            done.append(True)
            s3.put_object(Bucket=bucket(), Key=key, Body=json.dumps(alive))
        return data
    proxy.rewrite = another_deploy_takes_it_over
    try:
        p = project.deploy("sandbox", "--lock-timeout", "2", endpoint=proxy.url)
    finally:
        proxy.stop()
    assert done, p.stderr
    assert p.returncode == 1, p.stderr
    assert "taking it over" not in p.stderr
    assert f"waiting for the lock of stage sandbox, held by other@{host} pid {os.getpid()}" in p.stderr, p.stderr
    assert json.loads(s3.get_object(Bucket=bucket(), Key=key)["Body"].read()) == alive
    assert versions(moto.client("lambda"), "movies-list") == ["1"]


def test_an_http_api_that_never_had_authorizers_is_not_asked_for_them(moto, project):
    """moto answers that listing with a 500 (retried three times): it is made only when the stack
    or the stage's record has authorizers for the API."""
    ok(project.deploy("sandbox"))
    moto.start_recording()
    p = ok(project.deploy("sandbox"))
    calls = moto.stop_recording()
    assert [c["url"] for c in calls if "/v2/apis/" in c["url"] and "/authorizers" in c["url"]] == [], p.stderr
    assert "retrying" not in p.stderr, p.stderr


def test_the_api_key_source_is_deployed_and_updated(moto, tmp_path):
    stack, deploy, _, apigw, v2, rest, _ = deployed_shop(tmp_path, moto)
    assert apigw.get_rest_api(restApiId=rest).get("apiKeySource", "HEADER") == "HEADER"
    # Keys from the authorizers' usageIdentifierKey: the API says so, and a new deployment serves it.
    deployments = len(apigw.get_deployments(restApiId=rest)["items"])
    stack.write_text(stack.read_text().replace("    binary_media_types: [image/png]\n",
                                               "    binary_media_types: [image/png]\n    api_key_source: AUTHORIZER\n"))
    p = ok(deploy())
    assert "~ update REST API shop-shop (API key source HEADER -> AUTHORIZER)" in p.stderr, p.stderr
    assert apigw.get_rest_api(restApiId=rest)["apiKeySource"] == "AUTHORIZER"
    assert len(apigw.get_deployments(restApiId=rest)["items"]) == deployments + 1
    nothing_changes(moto, deploy)


class InvokeConfigsPerQualifier:
    """Lambda's event-invoke-config API as AWS has it, for a FaultProxy's intercept: one config
    per function, version or alias, a 404 for a qualifier that has none (moto keeps one per
    function whatever the qualifier, and answers every qualifier with it)."""

    def __init__(self, region):
        self.region = region
        self.configs = {}  # (function, qualifier or "") -> config
        self.calls = []    # (method, qualifier, body or None)

    def __call__(self, method, path, body):
        u = urlsplit(path)
        m = re.fullmatch(r"/2019-09-25/functions/([^/]+)/event-invoke-config", u.path)
        if not m:
            return None
        fn = unquote(m.group(1))
        qual = parse_qs(u.query).get("Qualifier", [""])[0]
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{fn}" + (f":{qual}" if qual else "")
        self.calls.append((method, qual, json.loads(body) if body else None))
        key = (fn, qual)
        answer = lambda status, doc: (status, {"content-type": "application/json"}, json.dumps(doc).encode())
        if method == "PUT":
            self.configs[key] = dict(json.loads(body), FunctionArn=arn, LastModified=time.time())
            return answer(200, self.configs[key])
        if key not in self.configs:
            status, headers, out = answer(404, {"Type": "User",
                                                "message": f"The function {arn} doesn't have an EventInvokeConfig"})
            headers["x-amzn-errortype"] = "ResourceNotFoundException"
            return status, headers, out
        if method == "DELETE":
            del self.configs[key]
            return 204, {}, b""
        return answer(200, self.configs[key])

    def mutations(self):
        return [(m, q, b) for m, q, b in self.calls if m != "GET"]


def give_custom_a_routed_alias(stack):
    """custom (retries 0, max age 120) gets an alias of its own, `live`, that a route reaches."""
    text = stack.read_text()
    text = text.replace("    async: {max_retry_attempts: 0, max_event_age: 120}\n",
                        "    async: {max_retry_attempts: 0, max_event_age: 120}\n    aliases:\n      live: $LATEST\n")
    text = text.replace("      ANY /{proxy+}: custom\n", "      ANY /{proxy+}: custom\n      GET /live: custom:live\n")
    stack.write_text(text)


@contextlib.contextmanager
def shop_with_configs_per_qualifier(tmp_path, moto):
    """The shop with custom's routed alias (give_custom_a_routed_alias), deployed through a proxy
    whose per-qualifier event-invoke configs stand in for moto's single one: yields the stack
    file, that store and a deploy through the proxy (stage dev unless named)."""
    proxy = FaultProxy(moto.port)
    configs = InvokeConfigsPerQualifier("us-east-1")
    proxy.intercept = configs
    try:
        app, deploy = shop(tmp_path, moto)
        stack = app / "sluice.yaml"
        give_custom_a_routed_alias(stack)
        yield stack, configs, lambda stage="dev": deploy(endpoint=proxy.url, stage=stage)
    finally:
        proxy.stop()


def test_async_settings_go_on_every_alias_the_stack_deploys_as_events_come_through_them(moto, tmp_path):
    with shop_with_configs_per_qualifier(tmp_path, moto) as (stack, configs, via_proxy):
        p = ok(via_proxy())
        want = {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 120}
        for qual in ("", "dev", "live"):
            got = configs.configs.get(("shop-custom", qual))
            assert got and {k: got[k] for k in want} == want and "DestinationConfig" not in got, (qual, got, configs.calls, p.stderr)
        assert "+ create async invoke config shop-custom:dev (retries 0, max age 120 s)" in p.stderr, p.stderr
        assert "+ create async invoke config shop-custom:live (retries 0, max age 120 s)" in p.stderr
        # Functions with AWS's defaults get no config, on the function or its aliases.
        assert {fn for fn, _ in configs.configs} == {"shop-custom"}

        # Nothing changed: nothing written (moto's record misses what the proxy answered itself).
        configs.calls.clear()
        p = nothing_changes(moto, via_proxy)
        assert configs.mutations() == [], configs.mutations()

        # An edit reaches the function and both aliases.
        stack.write_text(stack.read_text().replace("max_retry_attempts: 0, max_event_age: 120",
                                                   "max_retry_attempts: 1, max_event_age: 120"))
        configs.calls.clear()
        p = ok(via_proxy())
        assert sorted(q for m, q, _ in configs.mutations()) == ["", "dev", "live"], configs.mutations()
        assert all(b["MaximumRetryAttempts"] == 1 for _, _, b in configs.mutations())
        assert "~ update async invoke config shop-custom:live (retries 1, max age 120 s)" in p.stderr, p.stderr
        configs.calls.clear()
        nothing_changes(moto, via_proxy)
        assert configs.mutations() == []

        # Back to AWS's defaults: the aliases' configs go (the function's gets the defaults).
        stack.write_text(stack.read_text().replace("    async: {max_retry_attempts: 1, max_event_age: 120}\n", ""))
        configs.calls.clear()
        p = ok(via_proxy())
        assert sorted((m, q) for m, q, _ in configs.mutations()) == [("DELETE", "dev"), ("DELETE", "live"), ("PUT", "")]
        assert "- remove async invoke config shop-custom:dev" in p.stderr, p.stderr
        configs.calls.clear()
        nothing_changes(moto, via_proxy)
        assert configs.mutations() == []


def test_a_function_the_stack_drops_while_another_stage_runs_it_loses_the_async_settings_only_this_stage_wrote(
        moto, tmp_path):
    """custom leaves the stack of stage dev while prod still runs it: the function stays, dev's
    alias goes, and so does the config dev's deploy wrote on custom:live, which no route of prod
    reaches (prod's own configs stay)."""
    with shop_with_configs_per_qualifier(tmp_path, moto) as (stack, configs, via_proxy):
        ok(via_proxy())
        with_live = stack.read_text()
        stack.write_text(with_live.replace("      GET /live: custom:live\n", ""))
        ok(via_proxy("prod"))
        stack.write_text(with_live)
        assert record_at(moto, "us-east-1", "shop", "dev")["event_invoke_configs"] == {"custom": ["dev", "live"]}
        assert record_at(moto, "us-east-1", "shop", "prod")["event_invoke_configs"] == {"custom": ["prod"]}

        text = cut(stack.read_text(), "  custom:\n", "apis:\n")
        for route in ("      ANY /{proxy+}: custom\n", "      GET /live: custom:live\n",
                      '      POST /orders: {function: custom, authorizer: lambda-auth, payload_format: "1.0"}\n'):
            assert route in text
            text = text.replace(route, "")
        stack.write_text(text)
        configs.calls.clear()
        p = ok(via_proxy())
        assert "- remove alias shop-custom:dev (the function stays: still used by prod)" in p.stderr, p.stderr
        assert ("- remove async invoke config shop-custom:live (custom is no longer in the stack of stage dev)"
                in p.stderr), p.stderr
        assert configs.mutations() == [("DELETE", "live", None)], (configs.mutations(), p.stderr)
        # (AWS drops dev's config with the alias; this stand-in for Lambda keeps what it was given.)
        assert sorted(q for fn, q in configs.configs if fn == "shop-custom") == ["", "dev", "prod"]
        assert "custom" not in record_at(moto, "us-east-1", "shop", "dev").get("event_invoke_configs", {})
        configs.calls.clear()
        nothing_changes(moto, via_proxy)
        assert configs.mutations() == []


def test_async_settings_leave_an_alias_the_stage_no_longer_deploys(moto, tmp_path):
    """The qualifiers whose event-invoke config a stage's deploy writes are in its record: one it
    no longer writes (no route reaches the alias any more) loses its config once no other stage's
    record names it. A config sluice never wrote is left alone."""
    with shop_with_configs_per_qualifier(tmp_path, moto) as (stack, configs, via_proxy):
        ok(via_proxy())
        ok(via_proxy("prod"))
        assert sorted(q for fn, q in configs.configs if fn == "shop-custom") == ["", "dev", "live", "prod"]
        assert record_at(moto, "us-east-1", "shop", "dev")["event_invoke_configs"] == {"custom": ["dev", "live"]}
        assert record_at(moto, "us-east-1", "shop", "prod")["event_invoke_configs"] == {"custom": ["live", "prod"]}
        configs.configs[("shop-custom", "manual")] = {
            "FunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-custom:manual", "MaximumRetryAttempts": 1}

        # No route reaches custom:live any more (the stack still defines the alias). Stage dev
        # lets go of it, but prod's record still names it: its config stays.
        stack.write_text(stack.read_text().replace("      GET /live: custom:live\n", ""))
        configs.calls.clear()
        p = ok(via_proxy())
        assert configs.mutations() == [], (configs.mutations(), p.stderr)
        assert ("shop-custom", "live") in configs.configs
        assert record_at(moto, "us-east-1", "shop", "dev")["event_invoke_configs"] == {"custom": ["dev"]}

        # Then prod lets go of it too: no stage's record names it, it goes.
        configs.calls.clear()
        p = ok(via_proxy("prod"))
        assert configs.mutations() == [("DELETE", "live", None)], (configs.mutations(), p.stderr)
        assert "- remove async invoke config shop-custom:live (stage prod no longer deploys this alias)" in p.stderr
        assert sorted(q for fn, q in configs.configs if fn == "shop-custom") == ["", "dev", "manual", "prod"]
        assert record_at(moto, "us-east-1", "shop", "prod")["event_invoke_configs"] == {"custom": ["prod"]}
        assert plan_and_summary_counts(p.stderr, "prod")[0] == plan_and_summary_counts(p.stderr, "prod")[1]

        configs.calls.clear()
        nothing_changes(moto, via_proxy)
        nothing_changes(moto, lambda: via_proxy("prod"))
        assert configs.mutations() == []
