"""Deployment packages (deploy/package) end to end, through tests/deploy_package/package_tool
until `sluice deploy` exists: the zips are read back by Python's zipfile and by Info-ZIP's
unzip, and requirements layers are built by the real pip against a local wheelhouse (this
machine has no PyPI), then imported from the unzipped layer as Lambda would from /opt."""
import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

BUILD = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build"))
TOOL = BUILD / "tests" / "deploy_package" / "package_tool"


def tool(*args, check=True, umask=None, cwd=None):
    assert TOOL.exists(), f"{TOOL} is missing: build it with `cmake --build build --target package_tool`"
    pre = (lambda: os.umask(umask)) if umask is not None else None
    r = subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=300, preexec_fn=pre,
                       cwd=cwd)
    if check:
        assert r.returncode == 0, f"package_tool {' '.join(map(str, args))} failed:\n{r.stderr}"
        return json.loads(r.stdout)
    return r


FILES = {
    "bootstrap": "#!/bin/sh\necho bootstrap ran\n",
    "handler.py": "def handler(event, context):\n    return event\n",
    "lib/util.py": "X = 1\n",
    "lib/data/big.txt": "line\n" * 4000,
    "lib.txt": "next to lib/\n",
    "README": "",
    "données.txt": "UTF-8 name: flagged as such, sorted by its bytes\n",
}


def make_tree(root, order, mtime, umask):
    old = os.umask(umask)
    try:
        for rel in order:
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(FILES[rel])
            os.utime(p, (mtime, mtime))
        os.chmod(root / "bootstrap", os.stat(root / "bootstrap").st_mode | stat.S_IXUSR)
    finally:
        os.umask(old)


def test_same_bytes_for_the_same_tree(tmp_path):
    make_tree(tmp_path / "a", list(FILES), 1_000_000_000, 0o022)
    make_tree(tmp_path / "b", list(reversed(FILES)), 1_700_000_000, 0o077)
    os.utime(tmp_path / "b" / "lib", (1_600_000_000, 1_600_000_000))
    a = tool("zip", tmp_path / "a", "--out", tmp_path / "a.zip")
    b = tool("zip", "b", "--out", tmp_path / "b.zip", umask=0o000, cwd=tmp_path)  # relative, another cwd
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert a == b
    data = (tmp_path / "a.zip").read_bytes()
    assert a["sha256_hex"] == hashlib.sha256(data).hexdigest()
    assert a["sha256_b64"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert a["files"] == len(FILES)
    assert a["unzipped_size"] == sum(len(v.encode()) for v in FILES.values())
    assert a["zip_size"] == len(data) and a["needs_s3"] is False


def test_python_zipfile_reads_sorted_entries_fixed_times_and_unix_modes(tmp_path):
    make_tree(tmp_path / "fn", list(FILES), 1_234_567_890, 0o027)
    tool("zip", tmp_path / "fn", "--out", tmp_path / "fn.zip")
    with zipfile.ZipFile(tmp_path / "fn.zip") as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert [i.filename for i in infos] == sorted(FILES, key=lambda s: s.encode())
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.create_system == 3  # Unix: unzip tools apply the mode
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.extra == b""
            assert i.flag_bits & 0x08 == 0  # no data descriptor
            assert i.flag_bits & 0x800 == (0 if i.filename.isascii() else 0x800)  # UTF-8 name flag
            want = 0o100755 if i.filename == "bootstrap" else 0o100644
            assert i.external_attr >> 16 == want, i.filename
            assert z.read(i).decode() == FILES[i.filename]


def test_unzip_keeps_bootstrap_executable(tmp_path):
    make_tree(tmp_path / "fn", list(FILES), 1_234_567_890, 0o077)
    tool("zip", tmp_path / "fn", "--out", tmp_path / "fn.zip")
    out = tmp_path / "task"
    subprocess.run(["unzip", "-q", str(tmp_path / "fn.zip"), "-d", str(out)], check=True,
                   preexec_fn=lambda: os.umask(0o022))
    listing = subprocess.run(["ls", "-l", str(out), str(out / "lib")], capture_output=True, text=True,
                             check=True).stdout
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()
             if line and line[0] in "-d" and len(line.split()) >= 9}
    assert modes["bootstrap"] == "-rwxr-xr-x"
    assert modes["handler.py"] == "-rw-r--r--"
    assert modes["util.py"] == "-rw-r--r--"
    assert modes["README"] == "-rw-r--r--"
    r = subprocess.run([str(out / "bootstrap")], capture_output=True, text=True, check=True)
    assert r.stdout == "bootstrap ran\n"


def test_exclusions_and_symlinks(tmp_path):
    fn = tmp_path / "fn"
    (fn / "__pycache__").mkdir(parents=True)
    (fn / "__pycache__" / "h.cpython-311.pyc").write_bytes(b"\0")
    (fn / ".sluice" / "layers").mkdir(parents=True)
    (fn / ".sluice" / "layers" / "x.zip").write_bytes(b"PK")
    (fn / ".git").mkdir()
    (fn / ".git" / "HEAD").write_text("ref\n")
    (fn / "h.pyc").write_bytes(b"\0")
    (fn / "h.py").write_text("H = 1\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "s.py").write_text("S = 1\n")
    (fn / "shared").symlink_to("../shared")
    (fn / "alias.py").symlink_to("h.py")
    tool("zip", fn, "--out", tmp_path / "fn.zip")
    with zipfile.ZipFile(tmp_path / "fn.zip") as z:
        assert z.namelist() == ["alias.py", "h.py", "shared/s.py"]
        assert z.read("alias.py") == b"H = 1\n"
        assert all(not i.is_dir() for i in z.infolist())

    (fn / "shared" / "back").symlink_to(".")  # shared/back -> shared: a loop
    r = tool("zip", fn, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"package_tool: symlink loop at {fn}/shared/back -> .: "
                                f"the directory {fn}/shared again")
    (fn / "shared" / "back").unlink()
    (fn / "gone.py").symlink_to("nowhere.py")
    r = tool("zip", fn, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"package_tool: dangling symlink {fn}/gone.py -> nowhere.py (its target does not exist)"


def test_layer_directory_zips_without_prefix_and_a_prefix_when_asked(tmp_path):
    (tmp_path / "layer" / "bin").mkdir(parents=True)
    (tmp_path / "layer" / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "layer" / "bin" / "tool", 0o700)
    tool("zip", tmp_path / "layer", "--out", tmp_path / "l.zip")
    tool("zip", tmp_path / "layer", "--prefix", "nodejs", "--out", tmp_path / "n.zip")
    with zipfile.ZipFile(tmp_path / "l.zip") as z:
        assert z.namelist() == ["bin/tool"]
        assert z.getinfo("bin/tool").external_attr >> 16 == 0o100755
    with zipfile.ZipFile(tmp_path / "n.zip") as z:
        assert z.namelist() == ["nodejs/bin/tool"]


def test_limits_name_the_function_and_the_sizes(tmp_path):
    # Sparse files: 260 MB of zeros that cost no disk and compress to almost nothing.
    (tmp_path / "code").mkdir()
    (tmp_path / "layer").mkdir()
    with open(tmp_path / "code" / "model.bin", "wb") as f:
        f.truncate(140 * 1024 * 1024)
    with open(tmp_path / "layer" / "weights.bin", "wb") as f:
        f.truncate(120 * 1024 * 1024)
    code = tool("zip", tmp_path / "code", "--out", tmp_path / "code.zip")
    tool("zip", tmp_path / "layer", "--out", tmp_path / "layer.zip")
    assert code["unzipped_size"] == 140 * 1024 * 1024 and code["zip_size"] < 1024 * 1024
    assert tool("limits", "movies-list", tmp_path / "code.zip") == {"ok": True, "needs_s3": False}
    r = tool("limits", "movies-list", tmp_path / "code.zip", tmp_path / "layer.zip", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("package_tool: function movies-list: 260.0 MB unzipped with its 1 layer; "
                                "Lambda allows 250 MB")


# --- requirements layers -------------------------------------------------------------------

def write_wheel(house, name, version, tag="py3-none-any", files=None):
    """A wheel written by hand: a zip with the package and its dist-info (METADATA, WHEEL, RECORD)."""
    house.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    purelib = "true" if tag.endswith("none-any") else "false"
    members = dict(files or {f"{name}/__init__.py": f"VERSION = {version!r}\nTAG = {tag!r}\n"})
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: sluice-test\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    record = ""
    for path, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text.encode())}\n"
    members[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    path = house / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        for member, text in members.items():
            z.writestr(member, text)
    return path


def layer(tmp_path, reqs, python, *pip_args, check=True):
    return tool("layer", reqs, "--python", python, "--cache", tmp_path / "cache", "--out", tmp_path / "layer.zip",
                "--", "--no-index", "--find-links", tmp_path / "wheels", *pip_args, check=check)


def test_requirements_layer_from_a_local_wheelhouse(tmp_path):
    house = tmp_path / "wheels"
    write_wheel(house, "tinypkg", "1.0")
    # A "native" package with wheels for two platforms: the layer must get Lambda's, for
    # Python 3.12, although this machine runs another Python.
    write_wheel(house, "nativepkg", "2.0", "cp312-cp312-manylinux2014_x86_64")
    write_wheel(house, "nativepkg", "2.0", "cp312-cp312-macosx_11_0_arm64")
    reqs = tmp_path / "app" / "requirements.txt"
    reqs.parent.mkdir()
    reqs.write_text("tinypkg==1.0\nnativepkg==2.0\n")

    first = layer(tmp_path, reqs, "3.12")
    assert first["from_cache"] is False
    assert Path(first["zip_path"]).parent == tmp_path / "cache"
    with zipfile.ZipFile(tmp_path / "layer.zip") as z:
        names = z.namelist()
        assert all(n.startswith("python/") for n in names), names
        assert "python/tinypkg/__init__.py" in names
        assert "python/nativepkg/__init__.py" in names
        assert "manylinux2014_x86_64" in z.read("python/nativepkg/__init__.py").decode()
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)

    # Unzipped where Lambda puts layers, the packages import from /opt/python.
    opt = tmp_path / "opt"
    subprocess.run(["unzip", "-q", str(tmp_path / "layer.zip"), "-d", str(opt)], check=True)
    r = subprocess.run([sys.executable, "-c", "import tinypkg; print(tinypkg.VERSION)"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(opt / "python")), cwd=tmp_path)
    assert r.stdout.strip() == "1.0", r.stderr

    # Unchanged file (even touched): served from the cache, same bytes.
    os.utime(reqs, (1, 1))
    again = layer(tmp_path, reqs, "3.12")
    assert again["from_cache"] is True
    assert again["sha256_hex"] == first["sha256_hex"] and again["files"] == first["files"]
    # Only cp312 wheels exist for nativepkg: Python 3.11 cannot have it.
    r = layer(tmp_path, reqs, "3.11", check=False)
    assert r.returncode == 1
    assert "for Python 3.11 on manylinux2014_x86_64: pip failed" in r.stderr
    assert "ERROR: No matching distribution found for nativepkg==2.0" in r.stderr
    # A changed file is a new layer.
    write_wheel(house, "tinypkg", "1.1")
    reqs.write_text("tinypkg==1.1\n")
    changed = layer(tmp_path, reqs, "3.12")
    assert changed["from_cache"] is False and changed["sha256_hex"] != first["sha256_hex"]
    assert len(list((tmp_path / "cache").iterdir())) == 2  # two zips, no leftovers


def test_requirements_layer_missing_package_gives_pips_message(tmp_path):
    write_wheel(tmp_path / "wheels", "tinypkg", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("tinypkg==1.0\nno-such-package-sluice>=3\n")
    r = layer(tmp_path, reqs, "3.12", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith(f"package_tool: cannot build the requirements layer from {reqs} for Python 3.12 "
                               "on manylinux2014_x86_64: pip failed (exit status 1):\n")
    assert ("ERROR: Could not find a version that satisfies the requirement no-such-package-sluice>=3 "
            "(from versions: none)") in r.stderr
    assert "ERROR: No matching distribution found for no-such-package-sluice>=3" in r.stderr
    assert not (tmp_path / "layer.zip").exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no half-built layer is cached
