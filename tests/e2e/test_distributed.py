"""The same actors split over processes: a control process and worker processes over tcp.

Workers join and leave (or die) while the control process keeps serving; calls go to whichever
worker is alive, and a call whose worker dies gets a clear error, never a hang.
"""
import time

from conftest import Server, free_port, wait_for


def make_function(server):
    r = server.post("/api/functions", json={"name": "where", "code": "import os\ndef handler(i):\n    return i\n"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def wait_joined(control, worker):
    """Until the control process lists a ready worker of worker's process: start_worker waits only
    for the worker's own "connected" line and a short pause, and its READY may come later."""
    def joined():
        r = control.get("/api/cluster")
        return r.status_code == 200 and any("-%d-" % worker.proc.pid in w["id"] and w["state"] == "ready"
                                            for w in r.json()["workers"])
    wait_for(joined, 10, lambda: "worker %d never joined: %s" % (worker.proc.pid,
                                                                  control.get("/api/cluster").text))


def test_workers_join_leave_and_die(tmp_path):
    env = {"CLOWDY_ENDPOINT_WORKER": "tcp://127.0.0.1:%d" % free_port()}
    control = Server(data_dir=str(tmp_path / "control"), args=["--role", "control"], env=env).start()
    workers = []
    try:
        fid = make_function(control)
        # No worker yet: a clear 503 with Retry-After, not a hang
        r = control.post("/api/invoke/" + fid, json={"input": 1})
        assert r.status_code == 503 and "No worker" in r.json()["detail"] and r.headers["Retry-After"]

        first = Server(data_dir=str(tmp_path / "w1"), args=["--role", "worker"], env=env)
        workers.append(first)
        first.start_worker()
        wait_joined(control, first)
        r = control.post("/api/invoke/" + fid, json={"input": 2})
        assert r.status_code == 200 and r.json() == {**r.json(), "success": True, "output": 2, "cold_start": True}
        r = control.post("/api/invoke/" + fid, json={"input": 3})
        assert r.json()["success"] and r.json()["cold_start"] is False

        # A second worker joins, the first dies: calls fail clearly at most until the
        # control process notices (5 s of silence), then run on the survivor
        second = Server(data_dir=str(tmp_path / "w2"), args=["--role", "worker"], env=env)
        workers.append(second)
        second.start_worker()
        first.kill()
        outcomes = []

        def runs_on_the_survivor():
            r = control.post("/api/invoke/" + fid, json={"input": len(outcomes)})
            outcomes.append(r)
            if r.status_code == 200 and r.json()["success"]:
                return True
            time.sleep(0.1)
            return False
        wait_for(runs_on_the_survivor, 15, lambda: [(o.status_code, o.text) for o in outcomes])
        for r in outcomes[:-1]:
            # 503: placed on the dead worker's unreachable socket; 504: its run was lost
            assert r.status_code in (503, 504), r.text
            assert "worker" in r.json()["detail"].lower()
        assert control.get("/api/health").status_code == 200
    finally:
        for w in workers:
            w.cleanup()
        control.cleanup()


def clowdy_keys(directory):
    import subprocess
    from conftest import BINARY
    subprocess.run([BINARY, "keys", "--curve-dir", str(directory)], check=True, capture_output=True)


def test_curve_admits_only_known_workers(tmp_path):
    """With --curve-dir the worker link is CurveZMQ: a worker whose key the control host admitted
    joins and runs calls; one with keys of its own that nobody admitted never joins."""
    import shutil
    control_keys, worker_keys, stranger_keys = tmp_path / "ck", tmp_path / "wk", tmp_path / "sk"
    for d in (control_keys, worker_keys, stranger_keys):
        clowdy_keys(d)
    # Workers know the control host's public server key only, and the control host admits the worker
    for d in (worker_keys, stranger_keys):
        shutil.copy(control_keys / "server.cert", d / "server.cert")
        (d / "server.cert_secret").unlink()
    shutil.copy(worker_keys / "client.cert", control_keys / "clients" / "worker-1.cert")

    endpoint = "tcp://127.0.0.1:%d" % free_port()
    control = Server(data_dir=str(tmp_path / "control"), args=["--role", "control"],
                     env={"CLOWDY_ENDPOINT_WORKER": endpoint, "CLOWDY_CURVE_DIR": str(control_keys)}).start()
    workers = []
    try:
        fid = make_function(control)
        stranger = Server(data_dir=str(tmp_path / "s"), args=["--role", "worker"],
                          env={"CLOWDY_ENDPOINT_WORKER": endpoint, "CLOWDY_CURVE_DIR": str(stranger_keys)})
        workers.append(stranger)
        stranger.start_worker()
        r = control.post("/api/invoke/" + fid, json={"input": 1})
        assert r.status_code == 503 and "No worker" in r.json()["detail"], r.text

        admitted = Server(data_dir=str(tmp_path / "w"), args=["--role", "worker"],
                          env={"CLOWDY_ENDPOINT_WORKER": endpoint, "CLOWDY_CURVE_DIR": str(worker_keys)})
        workers.append(admitted)
        admitted.start_worker()
        wait_joined(control, admitted)
        r = control.post("/api/invoke/" + fid, json={"input": 2})
        assert r.status_code == 200 and r.json()["success"] and r.json()["output"] == 2, r.text
    finally:
        for w in workers:
            w.cleanup()
        control.cleanup()
