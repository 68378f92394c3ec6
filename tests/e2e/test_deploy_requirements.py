"""Python requirements layers: `requirements:` on a function or a package, validated on load,
left to the developer by `sluice serve` (one warning), and built by `sluice deploy` with pip for
Lambda's platform and the function's Python version from a local wheelhouse (extra pip
arguments through SLUICE_PIP_ARGS or --pip-arg), published as a layer keyed by its hash and
attached to the function; against moto_server on loopback."""
import io
import json
import subprocess
import time
import zipfile

import pytest

from conftest import BIN
from test_deploy import ACCOUNT, credentials_env, moto, mutating, ok  # noqa: F401 (moto: the fixture)
from test_packaging import write_wheel

REGION = "us-east-1"

STACK = """\
name: shop
region: us-east-1
packages:
  core: {path: core/, requirements: core-requirements.txt}
functions:
  api:
    runtime: python3.12
    code: api/
    handler: app.handler
    requirements: requirements.txt
  worker:
    runtime: python3.12
    package: core
    handler: worker.handler
  report:
    runtime: python3.12
    package: core
    handler: report.handler
"""


@pytest.fixture
def app(tmp_path):
    d = tmp_path / "shop"
    (d / "api").mkdir(parents=True)
    (d / "core").mkdir()
    (d / "api" / "app.py").write_text("import tinypkg\n\ndef handler(event, context):\n    return tinypkg.VERSION\n")
    (d / "core" / "worker.py").write_text("def handler(event, context):\n    return 'w'\n")
    (d / "core" / "report.py").write_text("def handler(event, context):\n    return 'r'\n")
    (d / "requirements.txt").write_text("tinypkg==1.0\nnativepkg==2.0\n")
    (d / "core-requirements.txt").write_text("tinypkg==1.0\n")
    (d / "sluice.yaml").write_text(STACK)
    house = tmp_path / "wheels"
    write_wheel(house, "tinypkg", "1.0")
    write_wheel(house, "tinypkg", "1.1")
    write_wheel(house, "nativepkg", "2.0", "cp312-cp312-manylinux2014_x86_64")
    write_wheel(house, "nativepkg", "2.0", "cp312-cp312-macosx_11_0_arm64")
    (tmp_path / "home").mkdir()
    return d


def deploy(moto, app, *extra, env_extra=None):
    env = credentials_env(app.parent / "home", **(env_extra or {}))
    return subprocess.run([str(BIN), "deploy", "--stage", "dev", *extra, str(app / "sluice.yaml"),
                           "--endpoint-url", moto.url], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, env=env)


def layer_zip(moto, lam, arn):
    """The zip behind a layer version: its description names the hash, the bucket holds it."""
    name, version = arn.split(":")[-2], int(arn.split(":")[-1])
    desc = lam.get_layer_version(LayerName=name, VersionNumber=version)["Description"]
    assert desc.startswith("sluice sha256:")
    body = moto.client("s3", region=REGION).get_object(
        Bucket=f"sluice-shop-{ACCOUNT}-{REGION}", Key=f"layers/{desc.split(':', 1)[1]}.zip")["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def test_requirements_become_a_layer_built_for_lambda(moto, app, tmp_path):
    wheels = tmp_path / "wheels"
    p = ok(deploy(moto, app, env_extra={"SLUICE_PIP_ARGS": f"--no-index --find-links {wheels}"}))
    assert "requirements layer requirements.txt for python3.12" in p.stderr
    assert "+ create layer version shop-requirements-txt-python3-12" in p.stderr
    lam = moto.client("lambda", region=REGION)

    layers = lam.get_function(FunctionName="shop-api")["Configuration"]["Layers"]
    assert [l["Arn"].split(":")[-2:] for l in layers] == [["shop-requirements-txt-python3-12", "1"]]
    with layer_zip(moto, lam, layers[0]["Arn"]) as z:
        names = z.namelist()
        assert "python/tinypkg/__init__.py" in names
        # Lambda's platform and Python, whatever this machine runs.
        assert "manylinux2014_x86_64" in z.read("python/nativepkg/__init__.py").decode()
    # The package's requirements: one layer shared by the two functions using it.
    for fn in ("worker", "report"):
        layers = lam.get_function(FunctionName=f"shop-{fn}")["Configuration"]["Layers"]
        assert [l["Arn"].split(":")[-2:] for l in layers] == [["shop-core-requirements-txt-python3-12", "1"]]
    assert len(list((app / ".sluice" / "layers").iterdir())) == 2  # the cache, next to the files

    # Nothing changed: no mutating call. The same pip arguments given as --pip-arg: the
    # cached layer, no new layer version.
    moto.start_recording()
    p = ok(deploy(moto, app, "--pip-arg", "--no-index", "--pip-arg=--find-links", "--pip-arg", str(wheels)))
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    assert "nothing to change" in p.stderr
    assert p.stderr.count("  cached: ") == 2, p.stderr
    # Other pip arguments are another cache key: rebuilt, the same bytes, still nothing to publish.
    moto.start_recording()
    p = ok(deploy(moto, app, "--pip-arg", "--no-index", "--pip-arg=--find-links", "--pip-arg", str(wheels),
                  "--pip-arg", "--no-cache-dir"))
    assert [c for c in moto.stop_recording() if mutating(c)] == [], p.stderr
    assert p.stderr.count("  built: ") == 2, p.stderr

    # A changed requirements file: a new layer version, the function updated and published.
    (app / "requirements.txt").write_text("tinypkg==1.1\n")
    p = ok(deploy(moto, app, "--pip-arg=--no-index", "--pip-arg=--find-links", "--pip-arg", str(wheels)))
    assert "~ update function configuration shop-api (Layers)" in p.stderr
    cfg = lam.get_function(FunctionName="shop-api")["Configuration"]
    assert [l["Arn"].split(":")[-2:] for l in cfg["Layers"]] == [["shop-requirements-txt-python3-12", "2"]]
    with layer_zip(moto, lam, cfg["Layers"][0]["Arn"]) as z:
        assert "1.1" in z.read("python/tinypkg/__init__.py").decode()
        assert not any(n.startswith("python/nativepkg/") for n in z.namelist())
    assert lam.get_alias(FunctionName="shop-api", Name="dev")["FunctionVersion"] == "2"


def test_a_requirement_pip_cannot_find_stops_the_deploy_before_any_change(moto, app, tmp_path):
    (app / "requirements.txt").write_text("no-such-package-sluice>=3\n")
    p = deploy(moto, app, env_extra={"SLUICE_PIP_ARGS": f"--no-index --find-links {tmp_path / 'wheels'}"})
    assert p.returncode == 1
    assert "cannot build the requirements layer from" in p.stderr and "for Python 3.12" in p.stderr
    assert "No matching distribution found for no-such-package-sluice>=3" in p.stderr
    assert moto.client("lambda", region=REGION).list_functions()["Functions"] == []


def test_validate_checks_requirements(tmp_path):
    d = tmp_path / "v"
    (d / "src").mkdir(parents=True)
    (d / "src" / "index.js").write_text("exports.handler = async () => 1;\n")
    (d / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (d / "requirements.txt").write_text("tinypkg\n")
    (d / "sluice.yaml").write_text("""\
name: v
packages:
  shared: {path: src/, requirements: requirements.txt}
functions:
  missing: {runtime: python3.12, code: src/, handler: app.handler, requirements: nope.txt}
  node: {runtime: nodejs20.x, code: src/, handler: index.handler, requirements: requirements.txt}
  node-pkg: {runtime: nodejs20.x, package: shared, handler: index.handler}
  dir: {runtime: python3.12, code: src/, handler: app.handler, requirements: src/}
  good: {runtime: python3.12, package: shared, handler: app.handler}
""")
    r = subprocess.run([str(BIN), "validate", str(d / "sluice.yaml")], capture_output=True, text=True)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f'requirements file "nope.txt" does not exist (looked for {d / "nope.txt"})' in out
    assert "requirements is for Python functions (a pip requirements file becomes a layer); this function runs " \
           "nodejs20.x" in out
    assert 'package "shared" has requirements, which are for Python functions; this function runs nodejs20.x' in out
    assert 'requirements file "src/" is not a file' in out
    assert "functions.good" not in out


def test_serve_warns_once_that_requirements_are_not_installed(ws):
    (ws.path / "src").mkdir()
    (ws.path / "src" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (ws.path / "requirements.txt").write_text("tinypkg\n")
    ws.write_stack("""\
name: w
functions:
  a: {runtime: python3.12, code: src/, handler: app.handler, requirements: requirements.txt}
  b: {runtime: python3.12, code: src/, handler: app.handler, requirements: requirements.txt}
""")
    s = ws.serve()
    line = "requirements requirements.txt (a, b) are not installed by sluice serve"
    deadline = time.time() + 10
    while time.time() < deadline and "Ctrl-C to stop" not in s.stdout() + s.stderr():
        time.sleep(0.05)
    log = s.stdout() + s.stderr()
    assert line in log, log
    assert log.count("are not installed by sluice serve") == 1
