"""Lambda's file system layout: handlers, extensions and wrappers run in a user and mount
namespace of their own where the code is /var/task (read-only), the runtime /var/runtime, the
layers /opt (read-only, a later layer's files on top, empty without layers) and
sandbox.localdomain resolves; the host's paths stay as they are. `--no-sandbox` turns it off.
Real sluice, real Python and Node.js processes, boto3 as the client."""
import json
import os
import stat
import sys
from pathlib import Path

import pytest

PY_APP = r'''
import errno, json, os, socket, sys

def ls(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return errno.errorcode[e.errno]

def resolve(name):
    try:
        return socket.gethostbyname(name)
    except OSError:
        return None

def handler(event, context):
    if event.get("fail"):
        raise ValueError("from the handler")
    out = {"cwd": os.getcwd(), "file": __file__, "sys_path": sys.path[:3],
           "env": {k: os.environ.get(k) for k in ("LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "PWD", "PATH",
                                                   "LD_LIBRARY_PATH", "PYTHONPATH", "WRAPPED_AS")},
           "opt": ls("/opt"), "runtime": ls("/var/runtime"), "task": ls("/var/task"),
           "var_tmp": os.path.isdir("/var/tmp"),
           "sandbox_localdomain": resolve("sandbox.localdomain")}
    for where in ("/var/task/new-file", "/opt/new-file"):
        try:
            open(where, "w")
            out[where] = "written"
        except OSError as e:
            out[where] = errno.errorcode[e.errno]
    try:
        import shared, only_first
        out["layers"] = [shared.ORIGIN, only_first.ORIGIN]
    except ImportError as e:
        out["layers"] = str(e)
    if event.get("tmp"):
        st = os.statvfs("/tmp")
        out["tmp_mb"] = st.f_blocks * st.f_frsize // (1024 * 1024)
        if event["tmp"] == "write":
            with open("/tmp/mine", "w") as f:
                f.write(context.aws_request_id)
        if event["tmp"] == "fill":
            written = 0
            try:
                with open("/tmp/fill", "wb") as f:
                    while True:
                        f.write(b"x" * (1 << 20))
                        f.flush()
                        written += 1
            except OSError as e:
                out["fill"] = [written, errno.errorcode[e.errno]]
            os.unlink("/tmp/fill")
        if event.get("sleep"):
            import time
            time.sleep(event["sleep"])
        out["tmp"] = ls("/tmp")
    if event.get("read"):
        try:
            with open(event["read"]) as f:
                out["read"] = json.load(f)
        except OSError as e:
            out["read"] = str(e)
    return out
'''

NODE_APP = r'''
const fs = require('fs');
exports.handler = async (event) => {
  if (event.fail) throw new Error('from the node handler');
  let fromLayer;
  try { fromLayer = require('layer-lib').origin; } catch (e) { fromLayer = e.code; }
  return {cwd: process.cwd(), file: __filename, nodePath: process.env.NODE_PATH,
          runtimeDir: process.env.LAMBDA_RUNTIME_DIR, fromLayer, opt: fs.readdirSync('/opt').sort()};
};
'''

# An external extension as AWS's examples ship them: a launcher in extensions/ that runs the
# real program by its absolute /opt path. The program registers, leaves what it saw in /tmp
# for the handler to report, and waits for events.
LAUNCHER = "#!/bin/sh\nexec /opt/side-car/ext.py\n"
EXT_PY = r'''#!PYTHON
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
req = urllib.request.Request(api + "/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
                             headers={"Lambda-Extension-Name": "launcher"}, method="POST")
with urllib.request.urlopen(req) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
seen = {"argv0": sys.argv[0], "cwd": os.getcwd(), "opt": sorted(os.listdir("/opt"))}
with open(os.environ["SEEN_AT"], "w") as f:
    json.dump(seen, f)
while True:
    req = urllib.request.Request(api + "/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(req) as r:
        if json.load(r)["eventType"] == "SHUTDOWN":
            break
'''

WRAPPER = '#!/bin/sh\nexport WRAPPED_AS="$0"\nexec "$@"\n'


def write(path, text, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode:
        path.chmod(mode)


@pytest.fixture
def project(ws):
    write(ws.path / "py" / "app.py", PY_APP)
    write(ws.path / "first" / "python" / "shared.py", "ORIGIN = 'first'\n")
    write(ws.path / "first" / "python" / "only_first.py", "ORIGIN = 'first'\n")
    write(ws.path / "second" / "python" / "shared.py", "ORIGIN = 'second'\n")
    write(ws.path / "node" / "index.js", NODE_APP)
    write(ws.path / "nodelayer" / "nodejs" / "node_modules" / "layer-lib" / "index.js", "exports.origin = 'layer';\n")
    ws.write_stack(f"""name: sandbox
functions:
  layered:
    runtime: python3.{sys.version_info[1]}
    handler: app.handler
    code: py/
    layers: [first/, second/]
  bare:
    runtime: python3.{sys.version_info[1]}
    handler: app.handler
    code: py/
  js:
    runtime: nodejs20.x
    handler: index.handler
    code: node/
    layers: [nodelayer/]
""")
    return ws


def test_python_handler_sees_lambdas_paths(project):
    srv = project.serve()
    r = srv.invoke("layered", {})["Json"]
    assert r["cwd"] == "/var/task" and r["file"] == "/var/task/app.py"
    env = r["env"]
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["PWD"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime" and env["PYTHONPATH"] == "/var/runtime"
    assert env["PATH"].endswith(":/opt/bin")
    assert env["LD_LIBRARY_PATH"].endswith("/var/task:/var/task/lib:/opt/lib")
    v = sys.version_info
    assert r["sys_path"] == ["/var/task", f"/opt/python/lib/python{v[0]}.{v[1]}/site-packages", "/opt/python"]
    assert r["task"] == ["app.py"]
    assert "bootstrap.py" in r["runtime"]
    # Layers stacked on /opt: the second layer's shared.py wins, the first's other file stays.
    assert r["opt"] == ["python"] and r["layers"] == ["second", "first"]
    # Code and layers are read-only, as on Lambda; the rest of /var is the host's.
    assert r["/var/task/new-file"] == "EROFS" and r["/opt/new-file"] == "EROFS"
    assert r["var_tmp"] is True
    assert r["sandbox_localdomain"] == "127.0.0.1"
    assert not (project.path / "py" / "new-file").exists()


def test_no_layers_leave_an_empty_opt(project):
    srv = project.serve()
    r = srv.invoke("bare", {})["Json"]
    assert r["opt"] == [] and r["/opt/new-file"] == "EROFS"
    assert r["layers"] == "No module named 'shared'"


def test_error_stack_traces_name_var_task(project):
    srv = project.serve()
    r = srv.invoke("bare", {"fail": True})
    err = r["Json"]
    assert err["errorType"] == "ValueError"
    assert err["stackTrace"][0].startswith('  File "/var/task/app.py", line ')
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    srv.wait_for_log(f"REPORT RequestId: {rid}")
    assert 'File "/var/task/app.py", line ' in srv.stdout()


def test_node_handler_sees_lambdas_paths(project):
    srv = project.serve()
    r = srv.invoke("js", {})["Json"]
    assert r["cwd"] == "/var/task" and r["file"] == "/var/task/index.js"
    assert r["nodePath"] == ("/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
                             "/var/runtime/node_modules:/var/runtime:/var/task")
    assert r["runtimeDir"] == "/var/runtime"
    assert r["fromLayer"] == "layer" and r["opt"] == ["nodejs"]
    err = srv.invoke("js", {"fail": True})["Json"]
    assert err["errorMessage"] == "from the node handler"
    assert any("(/var/task/index.js:" in line for line in err["trace"])


def test_code_edits_reach_var_task(project):
    srv = project.serve()
    assert srv.invoke("bare", {})["Json"]["task"] == ["app.py"]
    write(project.path / "py" / "extra.txt", "new\n")
    # $LATEST's environments are retired on the edit; the next one sees the new file.
    for _ in range(50):
        if srv.invoke("bare", {})["Json"]["task"] == ["app.py", "extra.txt"]:
            break
    else:
        pytest.fail("the edit never reached /var/task")


def kept_in_tmp(project):
    """What the private /tmp keeps of the machine's: the top entries holding the project, sluice
    (its runtime files) and the interpreter, when they are under /tmp (a clone in /tmp, say)."""
    from conftest import BIN, ROOT
    paths = (project.path.resolve(), BIN.resolve(), ROOT.resolve(), Path(sys.executable).resolve())
    return sorted({p.parts[2] for p in paths if p.parts[:2] == ("/", "tmp") and len(p.parts) > 2})


def test_each_environment_has_its_own_tmp_of_the_functions_size(project):
    srv = project.serve()
    kept = kept_in_tmp(project)
    first = srv.invoke("bare", {"tmp": "write"})
    rid = first["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert first["Json"]["tmp"] == sorted(["mine", *kept]) and first["Json"]["tmp_mb"] == 512
    assert not os.path.exists("/tmp/mine") or open("/tmp/mine").read() != rid
    # The same (warm) environment keeps its /tmp; a second one, started because the first is
    # busy (both calls overlap, whichever comes first), has an empty one.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(srv.invoke, "bare", {"tmp": "list", "sleep": 1.5})
        b = pool.submit(srv.invoke, "bare", {"tmp": "list", "sleep": 1.5})
        listings = sorted([a.result()["Json"]["tmp"], b.result()["Json"]["tmp"]])
    assert listings == [kept, sorted(["mine", *kept])]
    # Full at the function's ephemeral storage: ENOSPC, as on Lambda.
    filled = srv.invoke("bare", {"tmp": "fill"})["Json"]["fill"]
    assert filled[1] == "ENOSPC" and 500 <= filled[0] <= 512


def test_ephemeral_storage_sets_the_size_of_tmp(project):
    text = (project.path / "sluice.yaml").read_text().replace("    code: py/\n  js:", "    code: py/\n    ephemeral_storage: 2048\n  js:")
    project.write_stack(text)
    srv = project.serve()
    assert srv.invoke("bare", {"tmp": "list"})["Json"]["tmp_mb"] == 2048
    cfg = srv.client().publish_version(FunctionName="bare")
    assert cfg["EphemeralStorage"] == {"Size": 2048}


def serve_with_extension_layer(project, **env):
    """Serves function `ext`: the Python handler with layer extlayer/ and these variables."""
    project.write_stack(f"""name: sandbox
functions:
  ext:
    runtime: python3.{sys.version_info[1]}
    handler: app.handler
    code: py/
    layers: [extlayer/]
    environment: {{{", ".join(f"{k}: {v}" for k, v in env.items())}}}
""")
    return project.serve()


def test_extension_launcher_and_wrapper_by_opt_paths(project):
    layer = project.path / "extlayer"
    write(layer / "extensions" / "launcher", LAUNCHER, 0o755)
    write(layer / "side-car" / "ext.py", EXT_PY.replace("PYTHON", sys.executable), 0o755)
    write(layer / "wrap.sh", WRAPPER, 0o755)
    seen_at = f"/tmp/sluice-sandbox-test-{os.getpid()}-{id(project)}.json"
    srv = serve_with_extension_layer(project, AWS_LAMBDA_EXEC_WRAPPER="/opt/wrap.sh", SEEN_AT=seen_at)
    r = srv.invoke("ext", {"read": seen_at})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["Json"]
    seen = r["Json"]["read"]
    assert seen == {"argv0": "/opt/side-car/ext.py", "cwd": "/var/task", "opt": ["extensions", "side-car", "wrap.sh"]}
    assert r["Json"]["env"]["WRAPPED_AS"] == "/opt/wrap.sh"
    # The extension wrote it in the environment's /tmp, which the runtime shares; the
    # machine's /tmp never saw it.
    assert not os.path.exists(seen_at)
    srv.wait_for_log("EXTENSION\tName: launcher\tState: Ready\tEvents: [INVOKE, SHUTDOWN]")


def test_extension_launch_error_names_the_opt_path(project):
    layer = project.path / "extlayer"
    write(layer / "extensions" / "not-executable", LAUNCHER, 0o644)
    srv = serve_with_extension_layer(project)
    r = srv.invoke("ext", {})
    assert r["Json"]["errorType"] == "Extension.LaunchError"
    assert r["Json"]["errorMessage"].endswith("fork/exec /opt/extensions/not-executable: permission denied")


def test_no_sandbox_keeps_the_hosts_paths(project):
    srv = project.serve(args=["--no-sandbox"])
    r = srv.invoke("layered", {})["Json"]
    code = str(project.path / "py")
    assert r["cwd"] == code and r["env"]["LAMBDA_TASK_ROOT"] == code
    assert r["layers"] == ["second", "first"]
    assert r["/var/task/new-file"] in ("ENOENT", "EACCES") and r["runtime"] == "ENOENT"


def test_the_host_is_left_as_it_was(project):
    before = {p: os.path.exists(p) for p in ("/var/task", "/var/runtime")}
    opt_before = sorted(os.listdir("/opt"))
    srv = project.serve()
    srv.invoke("layered", {})
    assert {p: os.path.exists(p) for p in before} == before
    assert sorted(os.listdir("/opt")) == opt_before
    with open("/proc/self/mountinfo") as f:
        assert " /var/task " not in f.read()
    # sluice's own work directory: private to the user.
    st = os.stat(f"{os.environ.get('TMPDIR') or '/tmp'}/sluice-{os.getuid()}")
    assert stat.S_IMODE(st.st_mode) == 0o700


def test_without_a_sandbox_sluice_says_why_once_and_uses_the_hosts_paths(project, tmp_path):
    # A sandbox needs sluice's directory $TMPDIR/sluice-<uid>; a file in its place is refused,
    # as a kernel without unprivileged user namespaces would be.
    bad = tmp_path / "bad-tmpdir"
    bad.mkdir()
    (bad / f"sluice-{os.getuid()}").write_text("not a directory")
    srv = project.serve(env={"TMPDIR": str(bad)})
    r = srv.invoke("layered", {})["Json"]
    assert r["cwd"] == str(project.path / "py") and r["layers"] == ["second", "first"]
    srv.invoke("bare", {})
    warning = (f"functions see this machine's paths instead of Lambda's /var/task, /opt and /var/runtime: "
               f"{bad}/sluice-{os.getuid()} is not a directory of this user's")
    assert srv.stderr().count(warning) == 1


def test_a_link_out_of_the_code_directory_runs_without_the_sandbox(project):
    # A monorepo's node_modules/pkg -> ../../shared/pkg: fine here and in the deploy zip (which
    # follows links), not reachable from /var/task; sluice says so and keeps the host's paths.
    write(project.path / "shared" / "pkg" / "index.js", "exports.origin = 'shared';\n")
    code = project.path / "linked"
    write(code / "index.js", "exports.handler = async () => ({cwd: process.cwd(), pkg: require('pkg').origin});\n")
    (code / "node_modules").mkdir()
    os.symlink("../../shared/pkg", code / "node_modules" / "pkg")
    project.write_stack("""name: sandbox
functions:
  linked: {runtime: nodejs20.x, handler: index.handler, code: linked/}
  bare:
    runtime: python3.%d
    handler: app.handler
    code: py/
""" % sys.version_info[1])
    srv = project.serve()
    assert srv.invoke("linked", {})["Json"] == {"cwd": str(code), "pkg": "shared"}
    assert "linked: the symbolic link node_modules/pkg -> ../../shared/pkg leads out of its directory" in srv.stderr()
    assert srv.invoke("bare", {})["Json"]["cwd"] == "/var/task"  # the others keep theirs
    # An absolute link into the host's /var (bound back into the sandbox's) breaks nothing.
    os.symlink("/var/lib", project.path / "py" / "var-lib")
    try:
        srv2 = project.serve(stack="sluice.yaml")
        assert srv2.invoke("bare", {})["Json"]["cwd"] == "/var/task"
        assert "var-lib" not in srv2.stderr()
    finally:
        (project.path / "py" / "var-lib").unlink()
