"""End-to-end harness: runs the real `sluice` binary against stack files built in
a temporary directory, with real handler processes and real clients (boto3,
the aws CLI, the JS SDK, curl). Every process a test starts is stopped, and the
harness checks that no handler process outlives sluice."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice")).resolve()
FIXTURES = ROOT / "fixtures"
FUNCTIONS = FIXTURES / "functions"
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Test directories outside /tmp: handlers and extensions in sluice's sandbox have a /tmp of
    their own, and tests read what they leave in the test's directory. One per pytest process
    (CTest runs several at once), removed at the end unless --basetemp was given."""
    if config.option.basetemp is None:
        base = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build")) / "e2e-tmp"
        base.mkdir(parents=True, exist_ok=True)
        config.option.basetemp = str(base / f"run-{os.getpid()}")
        config._sluice_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    own = getattr(config, "_sluice_basetemp", None)
    if own:
        shutil.rmtree(own, ignore_errors=True)


def free_port():
    """A port nothing listens on at the moment (for servers that need one named up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def directory_ids(root, limit=5000):
    """(device, inode) of root and the directories below it."""
    ids = set()
    for dirpath, _, _ in os.walk(root):
        try:
            st = os.stat(dirpath)
        except OSError:
            continue
        ids.add((st.st_dev, st.st_ino))
        if len(ids) >= limit:
            break
    return ids


def processes_mentioning(text):
    """PIDs of live processes whose command line or working directory contains text, or whose
    working directory is one of the directories under the path text (handlers in sluice's
    sandbox work in /var/task, which is the function's code directory bound there)."""
    found = []
    dirs = directory_ids(text) if os.path.isdir(text) else set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
            st = os.stat(f"/proc/{pid}/cwd")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue
        if text in cmd or text in cwd or (st.st_dev, st.st_ino) in dirs:
            found.append(int(pid))
    return found


class Sluice:
    """One `sluice serve` process."""

    def __init__(self, workdir, stack="sluice.yaml", args=(), env=None):
        self.workdir = Path(workdir)
        self.endpoints_file = self.workdir / "endpoints.json"
        self.out_path = self.workdir / "serve.out"
        self.err_path = self.workdir / "serve.err"
        self.args = list(args)
        self.stack = stack
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def start(self, timeout=20):
        if self.endpoints_file.exists():
            self.endpoints_file.unlink()
        cmd = [str(BIN), "serve", str(self.workdir / self.stack), "--lambda-port", "0", "--port", "0",
               "--endpoints-file", str(self.endpoints_file)] + self.args
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=self._out, stderr=self._err, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.endpoints_file.exists():
                self.endpoints = json.loads(self.endpoints_file.read_text())
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice exited with {self.proc.returncode}:\n{self.stderr()}\n{self.stdout()}")
            time.sleep(0.02)
        raise RuntimeError("sluice did not write its endpoints file in time:\n" + self.stderr())

    @property
    def lambda_url(self):
        return self.endpoints["lambda"]

    def client(self, **kw):
        import boto3
        from botocore.config import Config
        cfg = Config(retries={"max_attempts": 0}, read_timeout=kw.pop("read_timeout", 120), connect_timeout=5)
        return boto3.client("lambda", endpoint_url=self.lambda_url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=cfg, **kw)

    def invoke(self, function, payload=None, **kw):
        c = self.client()
        args = {"FunctionName": function}
        if payload is not None:
            args["Payload"] = json.dumps(payload).encode() if not isinstance(payload, (bytes, str)) else payload
        args.update(kw)
        r = c.invoke(**args)
        body = r["Payload"].read()
        r["Body"] = body
        try:
            r["Json"] = json.loads(body) if body else None
        except ValueError:
            r["Json"] = None
        return r

    def stdout(self):
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stderr(self):
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    @staticmethod
    def _wait_for(read, text, timeout, where):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in read():
                return True
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never appeared {where}:\n{read()[-4000:]}")

    def wait_for_log(self, text, timeout=10):
        return self._wait_for(self.stdout, text, timeout, "in the log")

    def wait_for_stderr(self, text, timeout=10):
        """sluice's own messages (reloads, warnings) are on stderr."""
        return self._wait_for(self.stderr, text, timeout, "on stderr")

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return self.proc.returncode if self.proc else None


class Workspace:
    """A temporary project: a stack file plus copies of fixture functions."""

    def __init__(self, path):
        self.path = Path(path)
        self.servers = []

    def copy_function(self, name, as_name=None):
        dst = self.path / (as_name or name)
        shutil.copytree(FUNCTIONS / name, dst, symlinks=True)
        return dst

    def write_stack(self, text, name="sluice.yaml"):
        (self.path / name).write_text(text)
        return self.path / name

    def serve(self, args=(), env=None, stack="sluice.yaml"):
        s = Sluice(self.path, stack=stack, args=args, env=env)
        self.servers.append(s)
        return s.start()

    def run(self, *args, input=None, timeout=120, env=None):
        return subprocess.run([str(BIN), *args], cwd=self.path, input=input, capture_output=True, timeout=timeout,
                              env=dict(os.environ, **(env or {})))


@pytest.fixture
def ws(tmp_path):
    w = Workspace(tmp_path)
    yield w
    for s in w.servers:
        s.stop()
    # Nothing started for this workspace may survive: handlers run with their
    # code directory (under tmp_path or fixtures) as working directory.
    deadline = time.time() + 5
    while time.time() < deadline and processes_mentioning(str(tmp_path)):
        time.sleep(0.05)
    left = processes_mentioning(str(tmp_path))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"processes outlived sluice: {left}"


def have_node_ric():
    return (NODE_MODULES / "aws-lambda-ric").is_dir()


requires_ric = pytest.mark.skipif(not have_node_ric(), reason="tests/node/node_modules missing: run scripts/setup.sh")


def wait_until(fn, timeout=15):
    """Polls fn until it returns something true, and returns that; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def aws_endpoint(tmp_path, monkeypatch):
    """A moto_server (see test_deploy.Moto) that this process's AWS calls go to, the way the
    AWS SDKs find an endpoint (AWS_ENDPOINT_URL), with moto's test credentials."""
    from test_deploy import Moto
    m = Moto(tmp_path)
    for var in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ENDPOINT_URL", m.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield m
    m.stop()
