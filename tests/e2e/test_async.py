"""Async invocations, retries, the dead-letter list and schedules (issue 14), end to end.

POST /api/invoke/:id?async=1 answers 202 once the event is in SQLite, and 404 at once for a function
that does not exist; the events actor runs each event with up to max_retries retries, each attempt
its own invocation record linked to the first, then keeps it as a failed event that can be
redriven or deleted; kill -9 with events queued and running loses none and runs none again after
its success; a flood of events runs at most --async-concurrency at once and leaves room for direct
calls; schedules fire (rate intervals shortened by the test-only --test-clock-scale), and firings
missed while the server was down run once.

The module shares one server (rates 60 times faster: rate(1 minute) fires every second, retries
after 50 ms); the kill -9 test has its own.
"""
import json
import os
import re
import signal
import sqlite3
import time
import uuid

import pytest

from conftest import Server, ok, record_of, slow, wait_for
from conftest import records as wait_records

ID = re.compile(r"^[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ARGS = ["--async-backoff-ms", "50", "--async-concurrency", "2", "--test-clock-scale", "60"]

# Returns when and where it ran, after sleeping as asked; fails when asked to
CODE = """\
import os, time
def handler(input):
    started = time.time()
    time.sleep(input.get("sleep", 0))
    if input.get("fail"):
        raise ValueError("asked to fail: %s" % input["fail"])
    return {"n": input.get("n"), "started": started, "ended": time.time(), "source": input.get("source")}
"""


@pytest.fixture(scope="module")
def server():
    s = Server(args=ARGS).start()
    yield s
    s.cleanup()


def make_function(server, code=CODE, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke_async(server, function_id, value):
    response = server.post("/api/invoke/%s?async=1" % function_id, json={"input": value})
    assert response.status_code == 202, response.text
    body = response.json()
    assert ID.match(body["invocation_id"]) and body["status"] == "queued", body
    return body["invocation_id"]


def chain(rows, first_id):
    """The records of one event's attempts (the first and those linked to it), by attempt."""
    found = [r for r in rows if r["id"] == first_id or r.get("parent_invocation_id") == first_id]
    return sorted(found, key=lambda r: r["attempt"])


def failed_events(server, function_id):
    return ok(server.get("/api/functions/%s/failed-events" % function_id))


# ---------------------------------------------------------------------------------------------------
# Async invoke

def test_async_call_answers_202_and_runs(server):
    function = make_function(server)
    assert function["max_retries"] == 2
    invocation_id = invoke_async(server, function["id"], {"n": 7})
    record = record_of(server, function["id"], invocation_id, seconds=20)
    assert record["status"] == "success", record
    assert record["source"] == "async" and record["attempt"] == 1
    assert record["parent_invocation_id"] is None
    assert '"n": 7' in record["output"] or '"n":7' in record["output"]
    # async=true works too; async=0 is a direct call
    second = server.post("/api/invoke/%s?async=true" % function["id"], json={"input": {"n": 8}})
    assert second.status_code == 202
    direct = ok(server.post("/api/invoke/%s?async=0" % function["id"], json={"input": {"n": 9}}))
    assert direct["success"] and direct["output"]["n"] == 9
    record = record_of(server, function["id"], second.json()["invocation_id"], seconds=20)
    assert record["status"] == "success"


def test_async_refusals_come_at_once(server):
    # A function that does not exist is a 404, never a 202
    for path in ("/api/invoke/000000000000?async=1", "/api/invoke/nothing?async=true"):
        response = server.post(path, json={"input": {}})
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "Function not found"}
    function = make_function(server)
    path = "/api/invoke/%s?async=1" % function["id"]
    response = server.post(path, data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["detail"] == "Request body is not valid JSON"
    response = server.post(path, data="[1]", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]
    response = server.post(path, data="x" * (300 * 1024))
    assert response.status_code == 413 and "async" in response.json()["detail"]
    assert server.get(path).status_code == 405
    ok(server.put("/api/functions/" + function["id"], json={"status": "disabled"}))
    response = server.post(path, json={"input": {}})
    assert response.status_code == 503 and response.json()["detail"] == "Function is disabled"
    # None of these left anything behind
    assert ok(server.get("/api/functions/%s/invocations" % function["id"])) == []
    # max_retries is checked like the other limits
    for bad in (-1, 11, "2", 1.5):
        response = server.put("/api/functions/" + function["id"], json={"max_retries": bad})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "max_retries"]


# ---------------------------------------------------------------------------------------------------
# Retries and the dead-letter list

def test_retries_counted_exactly_then_failed_event_then_redrive(server):
    function = make_function(server)
    first = invoke_async(server, function["id"], {"fail": "always", "n": 1})
    events = wait_for(lambda: failed_events(server, function["id"]), 30, "the event never failed")
    rows = wait_records(server, function["id"], 3, seconds=10)
    attempts = chain(rows, first)
    # 1 + max_retries attempts, each its own record, linked to the first
    assert [r["attempt"] for r in attempts] == [1, 2, 3], attempts
    assert len(rows) == 3, rows
    assert attempts[0]["id"] == first and attempts[0]["parent_invocation_id"] is None
    assert all(r["parent_invocation_id"] == first for r in attempts[1:])
    assert all(r["status"] == "error" and r["source"] == "async" for r in attempts)
    assert "asked to fail: always" in attempts[2]["error"]
    assert len(events) == 1
    event = events[0]
    assert set(event) >= {"id", "invocation_id", "input", "error", "attempts", "failed_at"}
    assert event["invocation_id"] == first and event["attempts"] == 3
    assert event["input"] == {"fail": "always", "n": 1}
    assert "asked to fail: always" in event["error"] and TIME.match(event["failed_at"])

    # The bug is fixed; the event is redriven and now succeeds, as a new chain
    ok(server.put("/api/functions/" + function["id"],
                  json={"code": CODE.replace('if input.get("fail")', 'if False')}))
    response = server.post("/api/functions/%s/failed-events/%s/redrive" % (function["id"], event["id"]))
    assert response.status_code == 202, response.text
    again = response.json()["invocation_id"]
    assert ID.match(again) and again != first
    record = record_of(server, function["id"], again, seconds=20)
    assert record["status"] == "success" and record["attempt"] == 1, record
    assert failed_events(server, function["id"]) == []
    response = server.post("/api/functions/%s/failed-events/%s/redrive" % (function["id"], event["id"]))
    assert response.status_code == 404


def test_no_retries_and_delete_a_failed_event(server):
    function = make_function(server, max_retries=0)
    assert function["max_retries"] == 0
    first = invoke_async(server, function["id"], {"fail": "once"})
    events = wait_for(lambda: failed_events(server, function["id"]), 30, "the event never failed")
    assert events[0]["attempts"] == 1
    assert [r["attempt"] for r in chain(wait_records(server, function["id"], 1), first)] == [1]
    path = "/api/functions/%s/failed-events/%s" % (function["id"], events[0]["id"])
    response = server.delete(path)
    assert response.status_code == 204 and response.content == b""
    assert failed_events(server, function["id"]) == []
    assert server.delete(path).status_code == 404
    assert server.get("/api/functions/000000000000/failed-events").status_code == 404


# ---------------------------------------------------------------------------------------------------
# A flood of events and direct calls

def overlap(intervals):
    """The most intervals that were open at one moment."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda p: (p[0], p[1]))
    most = now = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


def test_flood_runs_two_at_a_time_and_direct_calls_pass(server):
    function = make_function(server)
    ids = [invoke_async(server, function["id"], {"n": i, "sleep": 0.5}) for i in range(20)]
    # The last one waits behind the others: no record yet, its invocation id shows its event
    waiting = ok(server.get("/api/functions/%s/invocations/%s" % (function["id"], ids[-1])))
    assert waiting["status"] in ("queued", "running") and waiting["source"] == "async", waiting
    assert waiting["attempt"] == 1 and waiting["parent_invocation_id"] is None
    direct = ok(server.post("/api/invoke/" + function["id"], json={"input": {"n": "direct"}},
                            timeout=slow(30)))
    assert direct["success"], direct
    path = "/api/functions/%s/invocations?limit=100" % function["id"]
    runs = {}

    def all_ran():
        for r in ok(server.get(path)):
            if r["source"] == "async" and r["status"] == "success":
                output = json.loads(r["output"])
                runs[r["parent_invocation_id"] or r["id"]] = (output["started"], output["ended"])
        return len(runs) == len(ids)
    wait_for(all_ran, 60, lambda: "%d of %d events ran: %r" % (len(runs), len(ids), ok(server.get(path))))
    assert set(runs) == set(ids)
    # Never more than --async-concurrency at once
    assert overlap(list(runs.values())) <= 2, sorted(runs.values())
    # The direct call did not wait behind the flood: async calls still started after it ended
    ended = direct["output"]["ended"]
    assert any(started > ended for started, _ in runs.values()), (ended, sorted(runs.values()))


# ---------------------------------------------------------------------------------------------------
# Schedules

def test_schedules_fire_list_and_delete(server):
    function = make_function(server)
    path = "/api/functions/%s/schedules" % function["id"]
    response = server.post(path, json={"expression": "rate(1 minute)"})
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert set(schedule) >= {"id", "function_id", "expression", "next_run_at", "last_run_at",
                             "created_at", "enabled"}
    assert schedule["function_id"] == function["id"] and schedule["expression"] == "rate(1 minute)"
    assert TIME.match(schedule["next_run_at"]) and schedule["last_run_at"] is None
    assert schedule["enabled"] is True
    # rate(1 minute) is a second here: it fires, again and again, as async calls with source schedule
    rows = wait_for(lambda: (lambda got: got if len(got) >= 2 else None)(
        [r for r in ok(server.get("/api/functions/%s/invocations" % function["id"]))
         if r["source"] == "schedule"]), 20, "the schedule did not fire twice")
    assert all(r["status"] == "success" and r["attempt"] == 1 for r in rows)
    assert '"source": "clowdy.schedule"' in rows[0]["input"] or '"source":"clowdy.schedule"' in rows[0]["input"]
    assert schedule["id"] in rows[0]["input"]
    listed = ok(server.get(path))
    assert [s["id"] for s in listed] == [schedule["id"]]
    assert listed[0]["last_run_at"] is not None
    # A cron expression: next firing on a whole minute, a multiple of 5
    cron = server.post(path, json={"expression": "*/5 * * * *"})
    assert cron.status_code == 201, cron.text
    assert re.match(r".*T\d\d:[0-5][05]:00\.000000Z$", cron.json()["next_run_at"]), cron.json()
    assert len(ok(server.get(path))) == 2
    for sid in (schedule["id"], cron.json()["id"]):
        response = server.delete("%s/%s" % (path, sid))
        assert response.status_code == 204
        assert server.delete("%s/%s" % (path, sid)).status_code == 404
    assert ok(server.get(path)) == []


@pytest.mark.parametrize("expression", [
    "", "rate(0 minutes)", "rate(5 weeks)", "rate(5)", "rate(1.5 hours)", "every minute",
    "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
    "*/0 * * * *", "0 0 30 2 *", "MON * * * *", "x" * 200, 5, None])
def test_bad_schedule_expressions_are_422(server, expression):
    function = make_function(server)
    response = server.post("/api/functions/%s/schedules" % function["id"], json={"expression": expression})
    assert response.status_code == 422, (expression, response.text)
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "expression"] and detail[0]["msg"], detail


def test_schedules_of_a_missing_function_are_404(server):
    path = "/api/functions/000000000000/schedules"
    assert server.post(path, json={"expression": "rate(1 hour)"}).status_code == 404
    assert server.get(path).status_code == 404


# ---------------------------------------------------------------------------------------------------
# kill -9 with events queued and running; missed firings

def test_kill_9_loses_no_event_and_runs_none_twice(make_server):
    s = make_server(args=["--async-concurrency", "2", "--async-backoff-ms", "50"])
    function = make_function(s)
    ids = [invoke_async(s, function["id"], {"n": i, "sleep": 1}) for i in range(8)]
    # A schedule due every hour, created before the crash
    schedule = s.post("/api/functions/%s/schedules" % function["id"], json={"expression": "rate(1 hour)"})
    assert schedule.status_code == 201
    # Some have run; others are running or queued
    wait_for(lambda: [r for r in ok(s.get("/api/functions/%s/invocations" % function["id"]))
                      if r["status"] == "success"], 30, "no event ran")
    # A freed slot takes the next event and each runs 1 s: kill in the middle of one claimed since
    # (at the first success itself the next ones may not have started yet, and a fixed pause may
    # fall between two on a slow machine). A claim sets next_run_ms to its time (wall clock, ms).
    # And not while a success is heard but its record not yet written (status done): a kill -9
    # then loses that record by design (actors/events.c), which this test would count as lost.
    # The server is stopped (SIGSTOP) while it is looked at, so that nothing changes between the
    # look and the kill
    since_ms = int(time.time() * 1000)

    def mid_run():
        s.proc.send_signal(signal.SIGSTOP)
        try:
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(s.data_dir, "clowdy.db"), uri=True,
                                 timeout=slow(2))
            try:
                found = db.execute("SELECT (SELECT count(*) FROM async_events WHERE status = 'running'"
                                   " AND next_run_ms >= ?) > 0 AND (SELECT count(*) FROM async_events"
                                   " WHERE status = 'done') = 0", (since_ms,)).fetchone()[0]
            finally:
                db.close()
        except sqlite3.OperationalError:        # stopped holding a lock: look again later
            found = False
        if not found:
            s.proc.send_signal(signal.SIGCONT)
        return found
    wait_for(mid_run, 30, "no event was claimed after the first success")
    s.kill()                                    # SIGKILL ends it stopped as it is
    # While it is down, the schedule misses five firings
    db = sqlite3.connect(s.data_dir + "/clowdy.db")
    db.execute("UPDATE schedules SET next_run_ms = ?", (int((time.time() - 5 * 3600) * 1000),))
    db.commit()
    db.close()
    s.start()
    path = "/api/functions/%s/invocations?limit=500" % function["id"]

    def settled():
        rows = ok(s.get(path))
        done = [i for i in ids if any(r["status"] == "success" for r in chain(rows, i))]
        fired = [r for r in rows if r["source"] == "schedule" and r["status"] == "success"]
        return rows if len(done) == len(ids) and fired else None
    rows = wait_for(settled, 60, lambda: "not all events ended: %r" % ok(s.get(path)))
    for first in ids:
        attempts = chain(rows, first)
        # Exactly one success, and it is the last attempt: nothing ran after it
        assert [r["status"] for r in attempts].count("success") == 1, attempts
        assert attempts[-1]["status"] == "success", attempts
        assert [r["attempt"] for r in attempts] == list(range(1, len(attempts) + 1)), attempts
    # Those running at the crash were recorded as lost and run again as a new attempt
    retried = [chain(rows, i) for i in ids if len(chain(rows, i)) > 1]
    assert retried, "no event was running when the server was killed"
    assert all("server stopped" in c[0]["error"] for c in retried), retried
    assert failed_events(s, function["id"]) == []
    # The missed firings ran once, and the next is an hour away
    assert len([r for r in rows if r["source"] == "schedule"]) == 1
    listed = ok(s.get("/api/functions/%s/schedules" % function["id"]))
    assert listed[0]["last_run_at"] is not None
    assert listed[0]["next_run_at"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3000))
    # Nothing is left to run
    db = sqlite3.connect(s.data_dir + "/clowdy.db")
    left = db.execute("SELECT count(*) FROM async_events").fetchone()[0]
    db.close()
    assert left == 0


def test_queue_caps_per_function_and_in_all(make_server):
    s = make_server(args=["--async-max-per-function", "2", "--async-max-queued", "3",
                          "--async-concurrency", "1"])
    first, second = make_function(s), make_function(s)
    # Waiting counts what runs and what is queued; a slow first call keeps both there
    invoke_async(s, first["id"], {"sleep": 3})
    invoke_async(s, first["id"], {})
    response = s.post("/api/invoke/%s?async=1" % first["id"], json={"input": {}})
    assert response.status_code == 429 and "limit" in response.json()["detail"], response.text
    invoke_async(s, second["id"], {})
    response = s.post("/api/invoke/%s?async=1" % second["id"], json={"input": {}})
    assert response.status_code == 503 and "full" in response.json()["detail"], response.text
    # Refusals leave nothing behind; once the queue drains there is room again
    rows = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(
        [r for r in ok(s.get("/api/functions/%s/invocations" % first["id"])) if r["status"] == "success"]), 30,
        "the first function's two calls did not run")
    assert len(rows) == 2
    wait_for(lambda: ok(s.get("/api/functions/%s/invocations" % second["id"])), 30)
    invoke_async(s, first["id"], {})
