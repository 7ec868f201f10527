"""The actor fabric under trouble: a worker host that freezes mid-call.

A frozen worker (SIGSTOP: its process stops, its tcp connection stays open) costs its caller a clear
5xx, not a hang; the invocation record says what happened; later calls run on the other worker.
(A flood larger than the queues is test_invoke's and test_queues's.)
"""
import concurrent.futures
import signal

from conftest import Server, free_port, record_of, sandboxes, wait_for
from test_distributed import wait_joined

SLOW = """\
import time

def handler(input):
    time.sleep(input.get("sleep", 0))
    return input.get("n")
"""



def make_function(server, code, **extra):
    r = server.post("/api/functions", json={"name": "fabric", "code": code, **extra})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_frozen_worker_mid_call_gets_a_clear_error_and_calls_move_on(tmp_path):
    env = {"CLOWDY_ENDPOINT_WORKER": "tcp://127.0.0.1:%d" % free_port()}
    control = Server(data_dir=str(tmp_path / "control"), args=["--role", "control"], env=env).start()
    # No pre-started sandboxes: a worker has a sandbox child only while it holds a call's environment
    workers = [Server(data_dir=str(tmp_path / ("w%d" % n)), env=env,
                      args=["--role", "worker", "--workers", "1", "--prewarm", "0"]) for n in (1, 2)]
    frozen = None
    try:
        for worker in workers:
            worker.start_worker()
            wait_joined(control, worker)      # registered, not just connected
        fid = make_function(control, SLOW)

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(control.post, "/api/invoke/" + fid, json={"input": {"sleep": 60, "n": 1}},
                                  timeout=120)
            # The worker whose process has the call's sandbox under it is the one running it
            frozen = wait_for(lambda: next((w for w in workers if sandboxes(w.proc.pid)), None), 30,
                              "the call's sandbox")
            frozen.proc.send_signal(signal.SIGSTOP)
            r = pending.result()

        # A clear 5xx naming what happened, with the invocation id to look it up
        assert r.status_code == 504, r.text
        detail = r.json()["detail"]
        assert "worker" in detail.lower() and "stopped answering" in detail, detail
        record = record_of(control, fid, r.headers["X-Clowdy-Invocation-Id"], seconds=10)
        assert record["status"] == "lost", record   # its outcome is unknown: a platform failure
        assert "stopped answering" in (record["error"] or ""), record

        # Later calls run on the other worker
        survivor = next(w for w in workers if w is not frozen)
        for n in range(3):
            r = control.post("/api/invoke/" + fid, json={"input": {"n": n}}, timeout=60)
            assert r.status_code == 200 and r.json()["success"] and r.json()["output"] == n, r.text
        assert sandboxes(survivor.proc.pid), "the survivor holds the new environment"
        assert control.get("/api/health").status_code == 200
    finally:
        if frozen and frozen.proc:
            frozen.proc.send_signal(signal.SIGCONT)
        for worker in workers:
            worker.cleanup()
        control.cleanup()
