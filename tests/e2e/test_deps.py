"""pip dependencies per project (issue 11), end to end through the real build/clowdy.

A local PEP 503 index on loopback (Debian's `python3 -m http.server` over simple/<name>/, whose
directory listings pip reads as an index), with wheels this module builds offline with
`pip wheel --no-index --no-build-isolation`:
  clowdy-dep 0.5 and 1.0; clowdy-pkg 1.0 and 2.0 (needs clowdy-dep>=1.0); clowdy-big (3 MB, over
  the server's --layers-max-mb 2); and sdists: clowdy-evil, whose setup.py tries to read a secret
  file of the host, write files on the host and reach the server's API on the host's loopback;
  clowdy-slow, whose setup.py outlasts --build-timeout; clowdy-dirs and clowdy-empties, whose
  setup.py fills the build's output (/opt/out) with 40,000 empty directories or empty files (no
  bytes of content, but disk all the same); clowdy-nul, whose setup.py prints a NUL byte and fails.

One server and one index for the module. The tests poll GET .../requirements (as the UI does).
"""
import glob
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import Server, free_port, ok, slow, wait_for
from test_database import invoke, make_function, output

PYTHON = "/usr/bin/python3"
BUILD_TIMEOUT = 20          # seconds, the server's --build-timeout (the slow sdist outlasts it)


# ---------------------------------------------------------------------------------------------------
# The index

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def source(root, name, version, modules, requires=(), data=None):
    """A setup.py project in root/<name>-<version>."""
    where = os.path.join(root, "%s-%s" % (name, version))
    for module, text in modules.items():
        write(os.path.join(where, module), text)
    packages = sorted({m.split("/")[0] for m in modules if "/" in m})
    py_modules = sorted(m[:-3] for m in modules if "/" not in m)
    if data:
        with open(os.path.join(where, data[0]), "wb") as f:
            f.write(data[1])
    write(os.path.join(where, "setup.py"),
          "from setuptools import setup\n"
          "setup(name=%r, version=%r, packages=%r, py_modules=%r, install_requires=%r,\n"
          "      package_data={'': ['*.bin']})\n" % (name, version, packages, py_modules, list(requires)))
    return where


def sdist(simple, name, version, setup_py):
    """An sdist (tar.gz with PKG-INFO and setup.py) straight into the index."""
    base = "%s-%s" % (name.replace("-", "_"), version)
    target = os.path.join(simple, name, base + ".tar.gz")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for member, text in (("PKG-INFO", "Metadata-Version: 1.1\nName: %s\nVersion: %s\n" % (name, version)),
                             ("setup.py", setup_py)):
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (base, member))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


EVIL_SETUP = """
import os, socket
from setuptools import setup
found, wrote, reached = [], [], []
for path in (%(secret)r, "/etc/shadow", "/root/.bash_history"):
    try:
        with open(path) as f:
            found.append(f.read())
    except Exception as error:
        print("cannot read", path, type(error).__name__)
for path in (%(marker)r, "/etc/clowdy-evil", "/usr/clowdy-evil"):
    try:
        with open(path, "w") as f:
            f.write("was here")
        wrote.append(path)
    except Exception as error:
        print("cannot write", path, type(error).__name__)
try:
    socket.create_connection(("10.0.2.2", %(api_port)d), timeout=3).close()
    reached.append("api")
except Exception as error:
    print("cannot reach the API", type(error).__name__)
os.makedirs("clowdy_evil", exist_ok=True)
with open("clowdy_evil/__init__.py", "w") as f:
    f.write("FOUND = %%r\\nWROTE = %%r\\nREACHED = %%r\\n" %% (found, wrote, reached))
print("FOUND", found)
setup(name="clowdy-evil", version="1.0", packages=["clowdy_evil"])
"""

SLOW_SETUP = """
import time
time.sleep(600)
"""

# /opt/out is the build's output directory inside its sandbox (actors/builder.c); pip finishes
# well if nothing stops it
MANY_SETUP = """
import os
from setuptools import setup
for a in range(200):
    for b in range(200):
        path = "/opt/out/junk/%%d/%%d" %% (a, b)
        %(make)s
setup(name=%(name)r, version="1.0", py_modules=[])
"""
MAKE_DIR = "os.makedirs(path, exist_ok=True)"
MAKE_FILE = "os.makedirs(os.path.dirname(path), exist_ok=True); open(path, 'w').close()"

NUL_SETUP = """
import sys
sys.stdout.write("first line\\n\\x00hidden\\n")
sys.stdout.flush()
raise SystemExit("explanation of the failure")
"""


@pytest.fixture(scope="module")
def index():
    root = tempfile.mkdtemp(prefix="clowdy-deps-")
    simple = os.path.join(root, "simple")
    sources = os.path.join(root, "src")
    projects = [
        source(sources, "clowdy-dep", "0.5", {"clowdy_dep.py": "BASE = 5\n"}),
        source(sources, "clowdy-dep", "1.0", {"clowdy_dep.py": "BASE = 40\n"}),
        source(sources, "clowdy-pkg", "1.0", {
            "clowdy_pkg/__init__.py": "from clowdy_dep import BASE\nVERSION = '1.0'\n"
                                      "def compute(x):\n    return BASE + x\n"}, requires=["clowdy-dep>=1.0"]),
        source(sources, "clowdy-pkg", "2.0", {
            "clowdy_pkg/__init__.py": "from clowdy_dep import BASE\nVERSION = '2.0'\n"
                                      "def compute(x):\n    return BASE * x\n"}, requires=["clowdy-dep>=1.0"]),
        source(sources, "clowdy-big", "1.0", {"clowdy_big/__init__.py": "X = 1\n"},
               data=("clowdy_big/blob.bin", os.urandom(3 * 1024 * 1024))),
    ]
    wheels = os.path.join(root, "wheels")
    # One pip run per set of distinct names (pip refuses two versions of one name at once)
    for batch in (projects[0::2], projects[1::2]):
        subprocess.run([PYTHON, "-m", "pip", "wheel", "--isolated", "--no-index", "--no-build-isolation",
                        "--no-deps", "--disable-pip-version-check", "-q", "-w", wheels] + batch, check=True,
                       stdout=subprocess.DEVNULL)
    for wheel in glob.glob(os.path.join(wheels, "*.whl")):
        name = os.path.basename(wheel).split("-")[0].replace("_", "-")
        os.makedirs(os.path.join(simple, name), exist_ok=True)
        shutil.copy(wheel, os.path.join(simple, name))
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import requests
    wait_for(lambda: _answers(requests, "http://127.0.0.1:%d/simple/" % port), 10, "the index did not start")
    yield {"root": root, "simple": simple, "url": "http://127.0.0.1:%d/simple" % port}
    proc.terminate()
    proc.wait()
    shutil.rmtree(root, ignore_errors=True)


def _answers(requests, url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def server(index):
    s = Server(args=["--pip-index-url", index["url"], "--layers-max-mb", "2",
                     "--build-timeout", str(int(slow(BUILD_TIMEOUT)))]).start()
    # The evil sdist names the server's port, known only now
    # The secret lives outside what the index serves (the index itself is meant to be readable)
    private = tempfile.mkdtemp(prefix="clowdy-deps-host-")
    secret = "clowdy-secret-" + uuid.uuid4().hex
    secret_path = os.path.join(private, "secret.txt")
    write(secret_path, secret)
    marker = os.path.join(private, "evil-was-here")
    api_port = int(s.url.rsplit(":", 1)[1])
    sdist(index["simple"], "clowdy-evil", "1.0",
          EVIL_SETUP % {"secret": secret_path, "marker": marker, "api_port": api_port})
    sdist(index["simple"], "clowdy-slow", "1.0", SLOW_SETUP)
    sdist(index["simple"], "clowdy-dirs", "1.0", MANY_SETUP % {"name": "clowdy-dirs", "make": MAKE_DIR})
    sdist(index["simple"], "clowdy-empties", "1.0", MANY_SETUP % {"name": "clowdy-empties", "make": MAKE_FILE})
    sdist(index["simple"], "clowdy-nul", "1.0", NUL_SETUP)
    s.secret, s.marker = secret, marker
    yield s
    s.cleanup()
    shutil.rmtree(private, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Helpers

def make_project(server):
    return ok(server.post("/api/projects", json={"name": "deps-" + uuid.uuid4().hex[:8]}))["id"]


def requirements(server, project_id):
    return ok(server.get("/api/projects/%s/requirements" % project_id))


def put_requirements(server, project_id, text):
    return server.put("/api/projects/%s/requirements" % project_id, json={"requirements_txt": text})


def built(server, project_id, status="ready", seconds=BUILD_TIMEOUT * 3):
    """The requirements once the build has ended (ready or failed), asserting which."""
    last = {}

    def ended():
        last.clear()
        last.update(requirements(server, project_id))
        return last["build_status"] in ("ready", "failed", "none")
    wait_for(ended, seconds, lambda: "build never ended: %r" % last)
    assert last["build_status"] == status, last
    if status == "ready":
        # The builder marks the layer ready and points the project at it in one commit: a status
        # that says ready names the layer the next call runs with
        assert last["active_hash"] == last["requirements_hash"], last
    return dict(last)


PKG_CODE = """
import clowdy_pkg
def handler(event):
    return {"version": clowdy_pkg.VERSION, "value": clowdy_pkg.compute(2), "file": clowdy_pkg.__file__}
"""


# ---------------------------------------------------------------------------------------------------
# Tests

@pytest.fixture(scope="module")
def pkg_project(server):
    """A project with clowdy-pkg 1.0 built and a function that imports it."""
    project_id = make_project(server)
    answer = ok(put_requirements(server, project_id, "# the package\nclowdy-pkg==1.0\n"))
    assert answer["build_status"] in ("queued", "building", "ready")
    assert answer["requirements_txt"] == "# the package\nclowdy-pkg==1.0\n"
    assert len(answer["requirements_hash"]) == 64
    status = built(server, project_id)
    function_id = make_function(server, project_id, PKG_CODE)
    return {"project": project_id, "function": function_id, "status": status}


def test_function_imports_installed_package_with_its_dependency(server, pkg_project):
    status = pkg_project["status"]
    assert status["active_hash"] == status["requirements_hash"]
    assert status["has_custom_image"] is True
    assert status["layer_size_bytes"] > 0 and status["built_at"].endswith("Z")
    assert "Successfully installed clowdy-dep-1.0 clowdy-pkg-1.0" in status["build_log"]
    result = output(invoke(server, pkg_project["function"]))
    assert result == {"version": "1.0", "value": 42, "file": "/opt/layer/clowdy_pkg/__init__.py"}
    function = ok(server.get("/api/functions/" + pkg_project["function"]))
    assert function["layer_hash"] == status["active_hash"]
    listed = ok(server.get("/api/functions"))
    assert [f["layer_hash"] for f in listed if f["id"] == pkg_project["function"]] == [status["active_hash"]]
    # On the host: a sealed read-only directory owned by root
    layer = os.path.join(server.data_dir, "layers", status["active_hash"])
    info = os.stat(os.path.join(layer, "clowdy_pkg", "__init__.py"))
    assert info.st_uid == 0 and not info.st_mode & 0o022


def test_same_text_in_another_project_reuses_the_layer(server, pkg_project):
    first = pkg_project["status"]
    other = make_project(server)
    # Another order and comments: the same normalised text, the same layer, ready at once
    answer = ok(put_requirements(server, other, "clowdy-pkg==1.0   # same\n\n"))
    assert answer["build_status"] == "ready"
    assert answer["active_hash"] == first["active_hash"]
    assert answer["built_at"] == first["built_at"]
    function_id = make_function(server, other, PKG_CODE)
    assert output(invoke(server, function_id))["value"] == 42


def test_new_requirements_are_seen_by_the_next_call(server):
    project_id = make_project(server)
    function_id = make_function(server, project_id, PKG_CODE)
    ok(put_requirements(server, project_id, "clowdy-pkg==1.0"))
    first = built(server, project_id)
    assert output(invoke(server, function_id))["version"] == "1.0"   # warm now
    ok(put_requirements(server, project_id, "clowdy-pkg==2.0\n"))
    second = built(server, project_id)
    assert second["active_hash"] != first["active_hash"]
    assert output(invoke(server, function_id)) == {"version": "2.0", "value": 80,
                                                   "file": "/opt/layer/clowdy_pkg/__init__.py"}
    # Back to 1.0: that layer is ready already, so no build, and the next call sees it
    back = ok(put_requirements(server, project_id, "clowdy-pkg==1.0"))
    assert back["build_status"] == "ready" and back["active_hash"] == first["active_hash"]
    assert output(invoke(server, function_id))["version"] == "1.0"
    # No requirements: no layer
    none = ok(put_requirements(server, project_id, ""))
    assert none["build_status"] == "none" and none["active_hash"] is None
    assert none["has_custom_image"] is False
    result = invoke(server, function_id)
    assert not result["success"] and "clowdy_pkg" in result["error"]


@pytest.mark.parametrize("text, says", [
    ("-e .", "editable"),
    ("clowdy-pkg\n-r other.txt", "line 2"),
    ("-c constraints.txt", "options"),
    ("--target /tmp/x", "options"),
    ("--prefix=/usr", "options"),
    ("--root /", "options"),
    ("--index-url http://127.0.0.1:1/", "options"),
    ("clowdy-pkg --install-option=--prefix=/x", "options"),
    ("./local/dir", "local paths"),
    ("/etc/passwd", "local paths"),
    ("file:///etc/passwd", "URLs"),
    ("https://example.com/x.whl", "URLs"),
    ("clowdy-pkg @ http://127.0.0.1:1/x.whl", "URLs"),
    ("clowdy-pkg==${VERSION}", "environment variables"),
    ("x" * (64 * 1024 + 1), "65536"),
])
def test_bad_requirements_are_refused_at_put(server, text, says):
    project_id = make_project(server)
    answer = put_requirements(server, project_id, text)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail[0]["loc"] == ["body", "requirements_txt"] and says in detail[0]["msg"], detail
    # Nothing stored, nothing queued
    status = requirements(server, project_id)
    assert status["requirements_txt"] == "" and status["build_status"] == "none"


def test_not_a_string_and_missing_project(server):
    project_id = make_project(server)
    assert server.put("/api/projects/%s/requirements" % project_id, json={"requirements_txt": 5}).status_code == 422
    assert server.put("/api/projects/%s/requirements" % project_id, json={}).status_code == 422
    assert put_requirements(server, "abcdefabcdef", "x").status_code == 404


@pytest.mark.parametrize("text, says", [
    ("clowdy-nosuchpackage==1.0", "No matching distribution found for clowdy-nosuchpackage==1.0"),
    ("clowdy-pkg==1.0\nclowdy-dep<1.0", "conflicting dependencies"),
    ("clowdy-big", "--layers-max-mb"),
])
def test_failed_builds_say_why_and_change_nothing(server, pkg_project, text, says):
    project_id = make_project(server)
    function_id = make_function(server, project_id, "def handler(event):\n    return 'plain'\n")
    ok(put_requirements(server, project_id, text))
    status = built(server, project_id, "failed")
    assert says in status["build_log"], status["build_log"]
    assert status["active_hash"] is None and status["has_custom_image"] is False
    assert output(invoke(server, function_id)) == "plain"


def test_setup_py_cannot_read_or_write_the_host(server):
    project_id = make_project(server)
    ok(put_requirements(server, project_id, "clowdy-evil"))
    status = built(server, project_id)
    assert not os.path.exists(server.marker)
    assert not os.path.exists("/etc/clowdy-evil") and not os.path.exists("/usr/clowdy-evil")
    assert server.secret not in status["build_log"]
    layer = os.path.join(server.data_dir, "layers", status["active_hash"])
    for directory, _, files in os.walk(layer):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                assert server.secret.encode() not in f.read(), name
    function_id = make_function(server, project_id,
                                "import clowdy_evil\ndef handler(event):\n"
                                "    return [clowdy_evil.FOUND, clowdy_evil.WROTE, clowdy_evil.REACHED]\n")
    found, wrote, reached = output(invoke(server, function_id))
    assert found == [] and wrote == []
    assert reached == [], "the build sandbox reached the server's API on the host's loopback"


def test_function_keeps_answering_during_a_failing_rebuild(server):
    project_id = make_project(server)
    function_id = make_function(server, project_id, PKG_CODE)
    ok(put_requirements(server, project_id, "clowdy-pkg==1.0"))
    before = built(server, project_id)
    ok(put_requirements(server, project_id, "clowdy-pkg==1.0\nclowdy-slow"))
    wait_for(lambda: requirements(server, project_id)["build_status"] == "building", 30, "no build started")
    # The log shows while it builds (pip has said what it collects before setup.py sleeps)
    wait_for(lambda: "clowdy-slow" in requirements(server, project_id)["build_log"], 30,
             lambda: "no log while building: %r" % requirements(server, project_id))
    answers = 0
    while requirements(server, project_id)["build_status"] == "building":
        assert output(invoke(server, function_id))["version"] == "1.0"
        answers += 1
        time.sleep(0.2)
    status = built(server, project_id, "failed")
    assert answers >= 3
    assert "--build-timeout" in status["build_log"], status["build_log"]
    assert status["active_hash"] == before["active_hash"]
    assert status["requirements_hash"] != before["active_hash"]
    assert output(invoke(server, function_id))["value"] == 42


@pytest.mark.parametrize("package", ["clowdy-dirs", "clowdy-empties"])
def test_many_empty_entries_count_against_the_cap(server, package):
    # 40,000 empty directories or files hold no bytes of content but take blocks and inodes: far
    # over --layers-max-mb 2, so the build fails and leaves nothing behind
    project_id = make_project(server)
    ok(put_requirements(server, project_id, package))
    status = built(server, project_id, "failed")
    log = status["build_log"]
    assert "--layers-max-mb" in log and ("Build stopped" in log or "Build failed" in log), log
    assert status["active_hash"] is None and status["layer_size_bytes"] is None
    layers = os.path.join(server.data_dir, "layers")
    key = status["requirements_hash"]
    assert not [name for name in os.listdir(layers) if name.startswith(key)]
    assert not [name for name in os.listdir(os.path.join(layers, ".build")) if name.startswith(key)]


def test_a_nul_in_the_build_output_keeps_the_rest_of_the_log(server):
    project_id = make_project(server)
    ok(put_requirements(server, project_id, "clowdy-nul"))
    log = built(server, project_id, "failed")["build_log"]
    assert "first line" in log and "hidden" in log, log
    assert "explanation of the failure" in log, log
    assert "Build failed: pip exited with status 1" in log, log
    assert "\x00" not in log
