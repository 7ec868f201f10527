"""Dependency layers reach workers on other hosts (issue 11): a control process builds the layer, a
`--role worker` process with a data dir of its own fetches it by its key from the control host's
layer server over CurveZMQ tcp, checks it against the digest recorded when it was sealed, caches it,
and runs the function with it.

The index and the helpers are test_deps.py's (imported, not copied). One control, one worker for
the module.
"""
import os
import shutil
import threading

import pytest

from conftest import Server, free_port
from test_deps import (PKG_CODE, built, index, invoke, make_function, make_project,  # noqa: F401 (index is a fixture)
                       ok, output, put_requirements)
from test_distributed import clowdy_keys, wait_joined


@pytest.fixture(scope="module")
def hosts(index, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("deps-remote")
    control_keys, worker_keys = root / "ck", root / "wk"
    for d in (control_keys, worker_keys):
        clowdy_keys(d)
    shutil.copy(control_keys / "server.cert", worker_keys / "server.cert")
    (worker_keys / "server.cert_secret").unlink()
    shutil.copy(worker_keys / "client.cert", control_keys / "clients" / "worker-1.cert")
    endpoints = {"CLOWDY_ENDPOINT_WORKER": "tcp://127.0.0.1:%d" % free_port(),
                 "CLOWDY_ENDPOINT_LAYERS": "tcp://127.0.0.1:%d" % free_port()}
    control = Server(data_dir=str(root / "control"), args=["--role", "control", "--pip-index-url", index["url"]],
                     env={**endpoints, "CLOWDY_CURVE_DIR": str(control_keys)}).start()
    worker = Server(data_dir=str(root / "worker"), args=["--role", "worker"],
                    env={**endpoints, "CLOWDY_CURVE_DIR": str(worker_keys)})
    try:
        worker.start_worker()
        wait_joined(control, worker)
        yield control, worker
    finally:
        worker.cleanup()
        control.cleanup()


def fetches(worker, key):
    return worker.log().count("fetched layer %s from the control host" % key)


def test_layer_travels_to_the_worker_and_is_cached(hosts):
    control, worker = hosts
    project_id = make_project(control)
    ok(put_requirements(control, project_id, "clowdy-pkg==1.0\n"))
    key = built(control, project_id)["active_hash"]
    function_id = make_function(control, project_id, PKG_CODE)
    result = invoke(control, function_id)
    assert result["success"], (result, worker.log()[-4000:])
    assert result["output"] == {"version": "1.0", "value": 42, "file": "/opt/layer/clowdy_pkg/__init__.py"}
    # The worker's own data dir holds it now, sealed as the builder seals: root's, read-only
    layer = os.path.join(worker.data_dir, "layers", key)
    info = os.stat(os.path.join(layer, "clowdy_pkg", "__init__.py"))
    assert info.st_uid == 0 and not info.st_mode & 0o022
    assert os.path.isfile(os.path.join(layer, "clowdy_dep.py"))
    assert fetches(worker, key) == 1, worker.log()[-4000:]
    # Another function of the project: the cached layer, no second fetch
    second = make_function(control, project_id, PKG_CODE.replace("compute(2)", "compute(5)"))
    assert output(invoke(control, second))["value"] == 45
    assert fetches(worker, key) == 1


def test_a_changed_layer_is_refused_and_not_cached(hosts):
    control, worker = hosts
    project_id = make_project(control)
    ok(put_requirements(control, project_id, "clowdy-dep==0.5\n"))
    key = built(control, project_id)["active_hash"]
    # The control host's copy changes after it was sealed (a bad disk, a hand): its archive no
    # longer matches the digest recorded at sealing
    archive = os.path.join(control.data_dir, "layers", key + ".tar")
    with open(archive, "r+b") as f:
        f.seek(os.path.getsize(archive) // 3)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    function_id = make_function(control, project_id, "import clowdy_dep\ndef handler(event):\n"
                                                     "    return clowdy_dep.BASE\n")
    result = invoke(control, function_id)
    assert not result["success"], result
    assert "dependency layer" in result["error"] and "does not match the digest" in result["error"], result
    assert not os.path.exists(os.path.join(worker.data_dir, "layers", key))
    fetch_dir = os.path.join(worker.data_dir, "layers", ".fetch-0")
    assert not os.path.isdir(fetch_dir) or os.listdir(fetch_dir) == []
    assert fetches(worker, key) == 0


def test_calls_that_arrive_together_share_one_fetch(hosts):
    control, worker = hosts
    project_id = make_project(control)
    ok(put_requirements(control, project_id, "clowdy-pkg==2.0\n"))
    key = built(control, project_id)["active_hash"]
    functions = [make_function(control, project_id, PKG_CODE) for _ in range(3)]
    results = [None] * len(functions)

    def call(index):
        results[index] = invoke(control, functions[index])
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(functions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [output(r)["value"] for r in results] == [80, 80, 80], results
    assert fetches(worker, key) == 1
