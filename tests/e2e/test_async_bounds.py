"""The dead-letter list is bounded (issue 14, review): POST /api/invoke/:id?async=1 is public, so
failing calls of 256 KiB must not pile up without end, nor make GET .../failed-events answer
megabytes. A function keeps its newest --async-max-failed failed events; the list cuts long inputs
(named in list_truncated); GET .../failed-events/:event_id gives one whole.
"""
import sqlite3
import uuid

import pytest

from conftest import Server, ok, wait_for

ARGS = ["--async-backoff-ms", "50", "--async-concurrency", "2", "--async-max-failed", "3"]

CODE = """\
def handler(input):
    raise ValueError("asked to fail: %s" % input.get("n"))
"""

PAD = 100_000


@pytest.fixture(scope="module")
def server():
    s = Server(args=ARGS).start()
    yield s
    s.cleanup()


def test_failed_events_are_capped_and_the_list_is_bounded(server):
    function = ok(server.post("/api/functions", json=dict(name="fn_" + uuid.uuid4().hex[:8], code=CODE,
                                                          max_retries=0)))
    fid = function["id"]
    for n in range(5):
        response = server.post("/api/invoke/%s?async=1" % fid, json={"input": {"n": n, "pad": "x" * PAD}})
        assert response.status_code == 202, response.text

    db = sqlite3.connect(server.data_dir + "/clowdy.db")

    def settled():
        # All five ran and failed (five records), none waits, and only the newest three are kept
        records = db.execute("SELECT count(*) FROM invocations WHERE function_id = ?", (fid,)).fetchone()[0]
        states = dict(db.execute("SELECT status, count(*) FROM async_events WHERE function_id = ?"
                                 " GROUP BY status", (fid,)).fetchall())
        return (records, states) if records == 5 and states == {"failed": 3} else None

    wait_for(settled, 60, lambda: "not settled: %r" % (
        db.execute("SELECT status, count(*) FROM async_events WHERE function_id = ? GROUP BY status",
                   (fid,)).fetchall(),))
    db.close()
    assert "failed events; dropped the 1 oldest" in server.log()

    response = server.get("/api/functions/%s/failed-events" % fid)
    assert response.status_code == 200, response.text
    events = response.json()
    assert len(events) == 3
    # Each input is long: it comes cut, as the start of its JSON text, and says so
    assert len(response.content) < 3 * PAD
    for event in events:
        assert isinstance(event["input"], str) and event["input"].startswith('{"n":'), event["input"][:40]
        assert len(event["input"]) < PAD
        assert event["list_truncated"] == ["input"]
        assert "asked to fail" in event["error"]

    # One, whole
    one = ok(server.get("/api/functions/%s/failed-events/%s" % (fid, events[0]["id"])))
    assert one["id"] == events[0]["id"] and one["input"]["pad"] == "x" * PAD
    assert "list_truncated" not in one
    assert server.get("/api/functions/%s/failed-events/000000000000" % fid).status_code == 404
