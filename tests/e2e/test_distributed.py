"""The same actors split over processes: a control process and worker processes over tcp.

Workers join and leave (or die) while the control process keeps serving; calls go to whichever
worker is alive, and a call whose worker dies gets a clear error, never a hang.
"""
import concurrent.futures
import os
import signal
import subprocess
import time

from conftest import BINARY, Server, free_port, slow, wait_for


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


def test_two_workers_with_one_hostname_and_pid_are_two_workers(tmp_path):
    # Two containers with the same hostname each run their worker as pid 1: they are two
    # workers, with a memory budget each, and calls spread over both succeed (taken for one
    # worker, each READY took the other's registration and ended its calls as lost)
    env = {"CLOWDY_ENDPOINT_WORKER": "tcp://127.0.0.1:%d" % free_port()}
    control = Server(data_dir=str(tmp_path / "control"), args=["--role", "control"], env=env).start()
    twins = []
    try:
        for index in range(2):
            data_dir = tmp_path / ("twin%d" % index)
            data_dir.mkdir()
            log = open(data_dir / "server.log", "wb")
            twins.append((subprocess.Popen(
                ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child",
                 "sh", "-c", 'hostname clowdy-twin && exec "$0" "$@"', BINARY, "--role", "worker",
                 "--data-dir", str(data_dir), "--cgroup", "clowdy-twin%d-%d" % (index, os.getpid()),
                 "--workers", "1", "--prewarm", "0"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}), log))

        def both():
            r = control.get("/api/cluster")
            ready = [w for w in r.json()["workers"] if w["state"] == "ready"] if r.status_code == 200 else []
            return len(ready) == 2 and ready
        workers = wait_for(both, 30, lambda: control.get("/api/cluster").text)
        assert all(w["id"].startswith("clowdy-twin-") and "-1-" in w["id"] for w in workers), workers
        assert workers[0]["id"] != workers[1]["id"]
        assert control.get("/api/cluster").json()["memory_mb"] == sum(w["memory_mb"] for w in workers)
        r = control.post("/api/functions", json={"name": "nap", "code": "import time\ndef handler(i):\n"
                                                                           "    time.sleep(0.2)\n    return i\n"})
        fid = r.json()["id"]

        def call(n):
            return control.post("/api/invoke/" + fid, json={"input": n}, timeout=slow(60))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(24)))
        assert [(a.status_code, a.json().get("output")) for a in answers] == [(200, n) for n in range(24)], \
            [a.text for a in answers if a.status_code != 200][:3]
        assert "reconnected" not in open(control.log_path).read()
    finally:
        for proc, log in twins:
            # unshare does not pass SIGTERM on: the worker (its child) stops as usual
            try:
                with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                    for child in f.read().split():
                        os.kill(int(child), signal.SIGTERM)
            except OSError:             # unshare (and so its worker) has ended already
                pass
            try:
                proc.wait(slow(30))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
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
