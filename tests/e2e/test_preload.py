"""Heavy imports once (issue 15): a project's pre-started sandbox imports the modules its
functions imported, so a later cold start of any of its functions finds them imported.

A local index serves one package, clowdy-heavy: its __init__ reads HEAVY_MODE at import and
keeps a mutable STATE; clowdy_heavy.picky refuses to be imported except by a function's load,
and clowdy_heavy.killer ends the process when imported any other way. Each function reports
whether clowdy_heavy was already imported when its own module-level code began.

One server for the module (two workers: each learns its projects on its own, so the tests
deploy new functions until one finds its package imported).
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import Server, free_port, ok, slow, wait_for
from test_deps import built, make_project, put_requirements, source
from test_database import invoke, make_function, output

PYTHON = "/usr/bin/python3"

HEAVY = {
    "clowdy_heavy/__init__.py": "import os\nMODE = os.environ.get('HEAVY_MODE', 'default')\n"
                                "os.environ.setdefault('HEAVY_SET', 'by-import')\n"
                                "STATE = {'calls': 0}\nfrom . import sub\n",
    "clowdy_heavy/sub.py": "VALUE = 42\n",
    "clowdy_heavy/picky.py": "import sys\nif 'main' not in sys.modules:\n"
                             "    raise ImportError('clowdy_heavy.picky is for functions only')\nOK = True\n",
    "clowdy_heavy/killer.py": "import os, sys\nif 'main' not in sys.modules:\n    os._exit(3)\nOK = True\n",
}

FUNCTION = """import os, sys
PRELOADED = "clowdy_heavy" in sys.modules
import clowdy_heavy
%s
def handler(event):
    clowdy_heavy.STATE["calls"] += 1
    if "mark" in event:
        clowdy_heavy.STATE["mark"] = event["mark"]
    return {"preloaded": PRELOADED, "mode": clowdy_heavy.MODE, "state": clowdy_heavy.STATE,
            "value": clowdy_heavy.sub.VALUE, "set": os.environ.get("HEAVY_SET")}
"""


@pytest.fixture(scope="module")
def index():
    root = tempfile.mkdtemp(prefix="clowdy-preload-")
    simple = os.path.join(root, "simple")
    project = source(os.path.join(root, "src"), "clowdy-heavy", "1.0", HEAVY)
    wheels = os.path.join(root, "wheels")
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--isolated", "--no-index", "--no-build-isolation",
                    "--no-deps", "--disable-pip-version-check", "-q", "-w", wheels, project], check=True,
                   stdout=subprocess.DEVNULL)
    os.makedirs(os.path.join(simple, "clowdy-heavy"))
    for wheel in glob.glob(os.path.join(wheels, "*.whl")):
        shutil.copy(wheel, os.path.join(simple, "clowdy-heavy"))
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import requests

    def answers():
        try:
            return requests.get("http://127.0.0.1:%d/simple/" % port, timeout=1).status_code == 200
        except requests.RequestException:
            return False
    wait_for(answers, 10, "the index did not start")
    yield "http://127.0.0.1:%d/simple" % port
    proc.terminate()
    proc.wait()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(index):
    s = Server(args=["--pip-index-url", index]).start()
    yield s
    s.cleanup()


def heavy_project(server, env=None):
    project = make_project(server)
    for key, value in (env or {}).items():
        ok(server.post("/api/projects/%s/env" % project, json={"key": key, "value": value}))
    assert put_requirements(server, project, "clowdy-heavy==1.0").status_code == 200
    built(server, project)
    return project


def cold_call(server, project, extra="", value=None):
    """A new function of the project, deployed and called once: its output (a cold start)."""
    function = make_function(server, project, FUNCTION % extra)
    result = invoke(server, function, value)
    assert result["cold_start"], result
    return output(result)


def until_preloaded(server, project, extra="", check=None, seconds=40):
    """New functions of the project, called one by one (a pause between, for its spare to be
    made and import) until one finds clowdy_heavy imported; every output goes through check.
    Returns how many cold starts that took."""
    deadline = time.monotonic() + slow(seconds)
    count = 0
    while time.monotonic() < deadline:
        count += 1
        mark = "secret-" + uuid.uuid4().hex
        out = cold_call(server, project, extra, {"mark": mark})
        # Whatever it found imported, the module's state is its own: no earlier function's mark
        # or calls
        assert out["state"] == {"calls": 1, "mark": mark} and out["value"] == 42, out
        # What the package set in the environment at import is there, preloaded or not
        assert out["set"] == "by-import", out
        if check:
            check(out)
        if out["preloaded"]:
            return count
        time.sleep(0.3)
    pytest.fail("no cold start of the project found its package imported in %d tries" % count)


def test_later_cold_starts_find_the_projects_packages_imported(server):
    project = heavy_project(server)
    first = cold_call(server, project)
    assert first["preloaded"] is False and first["mode"] == "default", first
    until_preloaded(server, project, check=lambda out: out["mode"] == "default" or pytest.fail(out))
    # It goes on: the spare taken is made again, and imports again
    until_preloaded(server, project, seconds=20)


def test_a_package_reading_a_variable_at_import_sees_the_projects_value(server):
    project = heavy_project(server, {"HEAVY_MODE": "first"})

    def first(out):
        assert out["mode"] == "first", out
    until_preloaded(server, project, check=first)
    # The variable changes: a spare that imported with the old value is never given out
    ok(server.post("/api/projects/%s/env" % project, json={"key": "HEAVY_MODE", "value": "second"}))

    def second(out):
        assert out["mode"] == "second", out
    second(cold_call(server, project))
    until_preloaded(server, project, check=second)


def test_another_project_with_the_same_layer_learns_its_own(server):
    one = heavy_project(server)
    until_preloaded(server, one)
    other = heavy_project(server)
    # Its first cold start: nothing learned for it yet (the other project's spare waits, imported)
    out = cold_call(server, other)
    assert out["preloaded"] is False, "a project's cold start used what another project's functions imported"


def test_a_module_that_fails_outside_a_function_is_left_to_the_functions_load(server):
    project = heavy_project(server)
    extra = "import clowdy_heavy.picky\nassert clowdy_heavy.picky.OK\n"
    out = cold_call(server, project, extra)
    assert out["preloaded"] is False
    until_preloaded(server, project, extra)


def test_an_import_that_ends_the_pre_started_sandbox_costs_no_call(server):
    project = heavy_project(server)
    extra = "import clowdy_heavy.killer\nassert clowdy_heavy.killer.OK\n"
    # Each worker learns killer from its first cold start; its spare's import then ends the
    # runner, and that project's spares import nothing more. Every call answers all along.
    for _ in range(8):
        mark = "m-" + uuid.uuid4().hex
        out = cold_call(server, project, extra, {"mark": mark})
        assert out["state"] == {"calls": 1, "mark": mark}, out
        assert out["preloaded"] is False, out
        time.sleep(0.3)
    ok(server.get("/api/health"))


@pytest.fixture
def one_worker(index):
    # One worker: with two, a 128 MB function landing on the other one teaches that worker
    # itself, and then its spare is rightly its own
    s = Server(args=["--pip-index-url", index, "--workers", "1"]).start()
    yield s
    s.cleanup()


def test_a_function_with_less_memory_than_the_imports_were_learned_with_gets_no_preloaded_spare(one_worker):
    server = one_worker
    project = heavy_project(server)
    # Learned from 256 MB functions, until one finds its package imported
    function = make_function(server, project, FUNCTION % "", memory_mb=256)
    assert output(invoke(server, function))["preloaded"] is False
    until_preloaded_with(server, project, 256)
    # A 128 MB function of the same project never gets that spare: the imports it holds were
    # learned with more room than the function has
    for _ in range(4):
        function = make_function(server, project, FUNCTION % "", memory_mb=128)
        out = output(invoke(server, function))
        assert out["preloaded"] is False, out
        time.sleep(0.3)
    # The 256 MB ones still do
    until_preloaded_with(server, project, 256)


def until_preloaded_with(server, project, memory_mb, seconds=40):
    deadline = time.monotonic() + slow(seconds)
    while time.monotonic() < deadline:
        function = make_function(server, project, FUNCTION % "", memory_mb=memory_mb)
        if output(invoke(server, function))["preloaded"]:
            return
        time.sleep(0.3)
    pytest.fail("no %d MB cold start found its package imported" % memory_mb)
