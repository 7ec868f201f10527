"""Queues between actors are bounded, and a full one is a 503 with Retry-After, never a wait.

Every socket between actors queues a bounded number of messages per peer (ENDPOINTS_HWM, here made
small with CLOWDY_ENDPOINTS_HWM) and sends never block. With gateway stalled for a few seconds (the
test hook CLOWDY_DEBUG_WEDGE=gateway:<ms>), http's queue of calls to it fills: the calls it holds
wait and run once gateway is back, every other call is refused at once with 503 and Retry-After,
nothing hangs, and afterwards the server answers normally. A code change saved while the queue is
full is not lost: the next call runs the new code.
"""
import concurrent.futures
import time

import requests

from conftest import Server, slow

HWM = 4
FLOOD = 40
CODE = "def handler(input):\n    return input['n']\n"
NEW_CODE = "def handler(input):\n    return -input['n']\n"


def test_a_full_queue_between_actors_is_a_503_with_retry_after(tmp_path):
    wedge_ms = int(slow(6) * 1000)
    server = Server(data_dir=str(tmp_path), env={"CLOWDY_ENDPOINTS_HWM": str(HWM),
                                                  "CLOWDY_DEBUG_WEDGE": "gateway:%d" % wedge_ms})
    started = time.monotonic()
    server.start()
    try:
        r = server.post("/api/functions", json={"name": "queued", "code": CODE})
        assert r.status_code == 200, r.text
        fid = r.json()["id"]

        def call(n):
            try:
                return requests.post(server.url + "/api/invoke/" + fid, json={"input": {"n": n}},
                                     timeout=slow(120))
            except requests.RequestException as error:     # a hang or a dropped connection
                return error

        with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
            futures = [pool.submit(call, n) for n in range(FLOOD)]
            sent_by = time.monotonic() - started
            responses = [f.result() for f in futures]
        # The flood went out while assignment was still stalled (else this test shows nothing)
        assert sent_by < wedge_ms / 1000.0, (sent_by, wedge_ms)

        hung = [r for r in responses if not isinstance(r, requests.Response)]
        assert not hung, hung
        taken = [(n, r) for n, r in enumerate(responses) if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 503]
        assert len(taken) + len(refused) == FLOOD, [(r.status_code, r.text) for r in responses]
        # What the queue held ran once assignment was back, each call with its own input
        assert taken, "nothing queued ran after the stall"
        assert all(r.json()["success"] and r.json()["output"] == n for n, r in taken), taken
        # The queue is bounded: most of the flood was refused, each with a reason and Retry-After
        assert len(refused) >= FLOOD - 4 * HWM, (len(taken), len(refused))
        for r in refused:
            assert int(r.headers["Retry-After"]) >= 1 and r.json()["detail"], r.text

        # Recovered: a normal call answers normally
        r = server.post("/api/invoke/" + fid, json={"input": {"n": 99}}, timeout=slow(30))
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
    wedge_ms = int(slow(6) * 1000)
    server = Server(data_dir=str(tmp_path), env={"CLOWDY_ENDPOINTS_HWM": "1",
                                                  "CLOWDY_DEBUG_WEDGE": "gateway:%d" % wedge_ms})
    started = time.monotonic()
    server.start()
    try:
        r = server.post("/api/functions", json={"name": "changed", "code": CODE})
        assert r.status_code == 200, r.text
        fid = r.json()["id"]
        # Fill gateway's queue, then save new code: its INVALIDATE cannot be queued now
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            calls = [pool.submit(requests.post, server.url + "/api/invoke/" + fid,
                                 json={"input": {"n": n}}, timeout=slow(120)) for n in range(8)]
            r = server.put("/api/functions/" + fid, json={"code": NEW_CODE})
            assert r.status_code == 200 and r.json()["active_version"] == 2, r.text
            assert time.monotonic() - started < wedge_ms / 1000.0, "the stall ended too early to show anything"
            statuses = sorted(c.result().status_code for c in calls)
        assert set(statuses) <= {200, 503}, statuses
        assert "waits in the backlog" in server.log(), server.log()[-2000:]
        # Once gateway is back, the next call runs version 2
        r = server.post("/api/invoke/" + fid, json={"input": {"n": 5}}, timeout=slow(30))
        assert r.status_code == 200 and r.json()["output"] == -5, r.text
    finally:
        server.stop()
