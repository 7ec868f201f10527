"""The actor fabric under trouble: a worker host that freezes mid-call, and a flood of calls.

A frozen worker (SIGSTOP: its process stops, its tcp connection stays open) costs its caller a clear
5xx, not a hang; the invocation record says what happened; later calls run on the other worker.
A flood larger than the queues gets 429/503 with Retry-After for what cannot be taken, nothing
hangs, and the server answers normally after.
"""
import concurrent.futures
import signal
import socket
import time

import requests

from conftest import Server, descendants

SLOW = """\
import time
def handler(input):
    time.sleep(input.get("sleep", 0))
    return input.get("n")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_function(server, code, **extra):
    r = server.post("/api/functions", json={"name": "fabric", "code": code, **extra})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def record_of(server, function_id, invocation_id, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        r = server.get("/api/functions/%s/invocations" % function_id)
        assert r.status_code == 200, r.text
        for record in r.json():
            if record["id"] == invocation_id:
                return record
        assert time.time() < deadline, (invocation_id, r.json())
        time.sleep(0.05)


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


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
        fid = make_function(control, SLOW)

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(control.post, "/api/invoke/" + fid, json={"input": {"sleep": 60, "n": 1}},
                                  timeout=120)
            # The worker whose process has the call's sandbox under it is the one running it
            frozen = wait_for(lambda: next((w for w in workers if descendants(w.proc.pid)), None), 30,
                              "the call's sandbox")
            frozen.proc.send_signal(signal.SIGSTOP)
            r = pending.result()

        # A clear 5xx naming what happened, with the invocation id to look it up
        assert r.status_code == 504, r.text
        detail = r.json()["detail"]
        assert "worker" in detail.lower() and "stopped answering" in detail, detail
        record = record_of(control, fid, r.headers["X-Clowdy-Invocation-Id"])
        assert record["status"] == "error", record
        assert "stopped answering" in (record["error"] or ""), record

        # Later calls run on the other worker
        survivor = next(w for w in workers if w is not frozen)
        for n in range(3):
            r = control.post("/api/invoke/" + fid, json={"input": {"n": n}}, timeout=60)
            assert r.status_code == 200 and r.json()["success"] and r.json()["output"] == n, r.text
        assert descendants(survivor.proc.pid), "the survivor holds the new environment"
        assert control.get("/api/health").status_code == 200
    finally:
        if frozen and frozen.proc:
            frozen.proc.send_signal(signal.SIGCONT)
        for worker in workers:
            worker.cleanup()
        control.cleanup()


def test_flood_is_refused_with_retry_after_and_the_server_recovers(tmp_path):
    # One environment and two queued calls per function: a flood of 40 cannot all be taken
    server = Server(data_dir=str(tmp_path / "s"),
                    args=["--max-concurrency", "1", "--queue-depth", "2"]).start()
    try:
        fid = make_function(server, SLOW)
        assert server.post("/api/invoke/" + fid, json={"input": {"n": 0}}).status_code == 200

        def call(n):
            try:
                return requests.post(server.url + "/api/invoke/" + fid, json={"input": {"sleep": 0.5, "n": n}},
                                     timeout=120)
            except requests.RequestException as error:      # a hang or a dropped connection
                return error

        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            responses = list(pool.map(call, range(40)))
        hung = [r for r in responses if not isinstance(r, requests.Response)]
        assert not hung, hung
        taken = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code in (429, 503)]
        assert len(taken) + len(refused) == 40, [(r.status_code, r.text) for r in responses]
        assert taken and all(r.json()["success"] for r in taken)
        assert refused, "a flood of 40 against 1 environment and 2 queue places was all taken"
        for r in refused:
            assert int(r.headers["Retry-After"]) >= 1 and r.json()["detail"], (r.status_code, r.text)

        # Recovered: a normal call answers normally, and so does the rest of the API
        r = server.post("/api/invoke/" + fid, json={"input": {"n": 99}})
        assert r.status_code == 200 and r.json()["output"] == 99, r.text
        assert server.get("/api/health").status_code == 200
    finally:
        server.cleanup()
