"""The warm path of issue 15, by what a user notices.

In one process a worker sends a run's result to gateway itself, after telling assignment the
environment is free (actors/worker.c, s_send_result). What must not change for a user:

- back-to-back calls of one client stay on the environment their first call made: never a second
  cold start (the environment is free before the next call is taken, whatever thread runs first);
- many clients at once each get their own answer (no result crosses to another caller), every call
  succeeds, and no more environments are made than the per-function cap;
- a failed call and a timed-out one are answered and recorded as before, and the call after a
  timeout runs on a new environment.

One server for the module.
"""
import concurrent.futures
import uuid

from conftest import ok, records, slow


def make_function(server, code="def handler(event):\n    return event\n", **extra):
    body = dict(name="warm_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke(server, function_id, value):
    return ok(server.post("/api/invoke/" + function_id, json={"input": value}, timeout=slow(60)))


def test_back_to_back_calls_stay_on_one_environment(server):
    fn = make_function(server)
    first = invoke(server, fn["id"], {"i": -1})
    assert first["success"] and first["cold_start"], first
    for i in range(150):
        result = invoke(server, fn["id"], {"i": i})
        assert result["success"] and result["output"] == {"i": i}, (i, result)
        assert not result["cold_start"], (i, result)


def test_concurrent_clients_each_get_their_own_answer(server):
    fn = make_function(server)

    def client(c):
        answers = []
        for i in range(20):
            value = {"client": c, "i": i, "tag": uuid.uuid4().hex}
            answers.append((value, invoke(server, fn["id"], value)))
        return answers

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = [answer for answers in pool.map(client, range(12)) for answer in answers]
    assert len(results) == 240
    for value, result in results:
        assert result["success"] and result["output"] == value, (value, result)
    assert len({result["invocation_id"] for _, result in results}) == 240
    cold = sum(1 for _, result in results if result["cold_start"])
    assert 1 <= cold <= 8, cold          # the per-function cap is 8 environments
    listed = ok(server.get("/api/functions/%s/invocations?limit=500" % fn["id"]))
    assert {record["id"] for record in listed} == {result["invocation_id"] for _, result in results}


def test_failures_and_timeouts_still_answered_and_recorded(server):
    code = ("import time\n"
            "def handler(event):\n"
            "    if event.get('fail'):\n"
            "        raise ValueError('asked to fail')\n"
            "    if event.get('sleep'):\n"
            "        time.sleep(event['sleep'])\n"
            "    return event\n")
    fn = make_function(server, code, timeout_seconds=1)
    assert invoke(server, fn["id"], {"n": 1})["success"]
    failed = invoke(server, fn["id"], {"fail": True})
    assert not failed["success"] and "asked to fail" in failed["error"] and not failed["cold_start"], failed
    timed_out = invoke(server, fn["id"], {"sleep": 5})
    assert not timed_out["success"] and timed_out.get("timeout"), timed_out
    after = invoke(server, fn["id"], {"n": 2})
    assert after["success"] and after["output"] == {"n": 2} and after["cold_start"], after
    statuses = {record["id"]: record["status"] for record in records(server, fn["id"], 4, seconds=10)}
    assert statuses[failed["invocation_id"]] == "error", statuses
    assert statuses[timed_out["invocation_id"]] == "timeout", statuses
    assert statuses[after["invocation_id"]] == "success", statuses
