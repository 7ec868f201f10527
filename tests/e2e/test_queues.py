"""Queues between actors are bounded, and a full one is a 503 with Retry-After, never a wait.

Every socket between actors queues a bounded number of messages per peer (ENDPOINTS_HWM, here made
small with CLOWDY_ENDPOINTS_HWM) and sends never block. With gateway stalled until the test creates
a file (the test hook CLOWDY_DEBUG_WEDGE=gateway:<file>), http's queue of calls to it fills: every
call past it is refused at once with 503 and Retry-After while the stall lasts, the calls it holds
run once gateway is back, nothing hangs, and afterwards the server answers normally. A code change
saved while the queue is full is not lost: the next call runs the new code.
"""
import concurrent.futures
import time

import requests

from conftest import Server, slow, wait_for

HWM = 4
FLOOD = 40
CODE = "def handler(input):\n    return input['n']\n"
NEW_CODE = "def handler(input):\n    return -input['n']\n"


def stalled_server(tmp_path, hwm):
    """A server whose gateway stalls right after start, until release() is called."""
    until = str(tmp_path / "release-gateway")
    server = Server(data_dir=str(tmp_path / "data"), env={"CLOWDY_ENDPOINTS_HWM": str(hwm),
                                                           "CLOWDY_DEBUG_WEDGE": "gateway:" + until})
    server.release = lambda: open(until, "w").close()
    return server.start()


def post_invoke(server, fid, n):
    """POST an invoke; returns (response or the error, when it came back)."""
    try:
        response = requests.post(server.url + "/api/invoke/" + fid, json={"input": {"n": n}}, timeout=slow(120))
    except requests.RequestException as error:       # a hang or a dropped connection
        response = error
    return response, time.monotonic()


def test_a_full_queue_between_actors_is_a_503_with_retry_after(tmp_path):
    server = stalled_server(tmp_path, HWM)
    try:
        r = server.post("/api/functions", json={"name": "queued", "code": CODE})
        assert r.status_code == 200, r.text
        fid = r.json()["id"]

        with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
            futures = [pool.submit(post_invoke, server, fid, n) for n in range(FLOOD)]
            # While gateway is stalled, all but what the bounded queue holds come back: refused
            wait_for(lambda: sum(f.done() for f in futures) >= FLOOD - 4 * HWM, 60,
                     "the flood was not refused while gateway was stalled: the queue is not bounded")
            refused_before = [f.result()[0] for f in futures if f.done()]
            released = time.monotonic()
            server.release()
            results = [f.result() for f in futures]

        hung = [r for r, _ in results if not isinstance(r, requests.Response)]
        assert not hung, hung
        assert all(r.status_code == 503 for r in refused_before), [(r.status_code, r.text) for r in refused_before]
        taken = [(n, r, at) for n, (r, at) in enumerate(results) if r.status_code == 200]
        refused = [r for r, _ in results if r.status_code == 503]
        assert len(taken) + len(refused) == FLOOD, [(r.status_code, r.text) for r, _ in results]
        # What the queue held ran once gateway was back, each call with its own input
        assert taken, "nothing queued ran after the stall"
        assert all(at > released for _, _, at in taken), "a call ran while gateway was stalled"
        assert all(r.json()["success"] and r.json()["output"] == n for n, r, _ in taken), taken
        for r in refused:
            assert int(r.headers["Retry-After"]) >= 1 and r.json()["detail"], r.text

        # Recovered: a normal call answers normally
        r = server.post("/api/invoke/" + fid, json={"input": {"n": 99}})
        assert r.status_code == 200 and r.json()["output"] == 99, r.text
        assert server.get("/api/health").status_code == 200
        # The refusals were logged as what they were
        assert "could not send INVOKE" in server.log() or "queue is full" in server.log(), server.log()[-2000:]
    finally:
        server.stop()


def test_a_bad_queue_limit_is_refused_at_start(tmp_path):
    server = Server(data_dir=str(tmp_path), env={"CLOWDY_ENDPOINTS_HWM": "lots"})
    try:
        server.start()
        raise AssertionError("started with CLOWDY_ENDPOINTS_HWM=lots")
    except RuntimeError as error:
        assert "CLOWDY_ENDPOINTS_HWM" in str(error), error


def test_a_code_change_saved_while_the_queue_is_full_is_not_lost(tmp_path):
    server = stalled_server(tmp_path, 1)
    try:
        r = server.post("/api/functions", json={"name": "changed", "code": CODE})
        assert r.status_code == 200, r.text
        fid = r.json()["id"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            calls = [pool.submit(post_invoke, server, fid, n) for n in range(8)]
            # The queue to gateway is full once a call is refused; then save new code, whose
            # INVALIDATE cannot be queued now
            wait_for(lambda: any(c.done() for c in calls), 60, "no call was refused: the queue is not full")
            r = server.put("/api/functions/" + fid, json={"code": NEW_CODE})
            assert r.status_code == 200 and r.json()["active_version"] == 2, r.text
            assert "waits in the outbox" in server.log(), server.log()[-2000:]
            server.release()
            statuses = sorted(c.result()[0].status_code for c in calls)
        assert set(statuses) <= {200, 503}, statuses
        # Once gateway is back, the next call runs version 2
        r = server.post("/api/invoke/" + fid, json={"input": {"n": 5}})
        assert r.status_code == 200 and r.json()["output"] == -5, r.text
    finally:
        server.stop()
