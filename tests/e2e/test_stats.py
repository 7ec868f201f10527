"""/api/stats against the real binary: real invocations (some failing, the first of each function
cold), then the stats reflect them: totals, success and cold-start shares, p50/p95 duration, the
last 14 UTC days and the per-function breakdown; deleting a function takes it out, and retention
pruning of old records never lowers the numbers.

Each test runs its own server so that the numbers are exact. Records reach the store through the
batched recorder, so the tests poll /api/stats for a moment rather than sleep.
"""
import datetime
import math
import uuid

from conftest import ok, wait_for

FLAKY = """\
import time
def handler(input):
    time.sleep(input.get('ms', 0) / 1000)
    if input.get('fail'):
        raise RuntimeError('asked to fail')
    return input.get('ms', 0)
"""


def make_function(server, code, name=None):
    return ok(server.post("/api/functions",
                          json={"name": name or "fn_" + uuid.uuid4().hex[:8], "code": code}))


def invoke(server, function_id, value):
    result = ok(server.post("/api/invoke/" + function_id, json={"input": value}))
    assert isinstance(result["cold_start"], bool)
    return result


def wait_stats(server, total, timeout=5.0):
    """Poll /api/stats until total_invocations reaches total (the recorder batches writes)."""
    last = {}

    def counted():
        last.update(ok(server.get("/api/stats")))
        return last["total_invocations"] >= total
    wait_for(counted, timeout, lambda: "expected %d invocations: %r" % (total, last))
    assert last["total_invocations"] == total, last
    return dict(last)


def records(server, function_id):
    """Every record of the function the server keeps (up to its list's 500)."""
    return ok(server.get("/api/functions/%s/invocations?limit=500" % function_id))


def nearest_rank(values, percent):
    values = sorted(values)
    return values[max(1, math.ceil(len(values) * percent / 100)) - 1]


def assert_close(reported, true):
    """The histogram reports a percentile within its bucket's width (19%); records are whole ms."""
    assert true / 1.19 - 1 <= reported <= true * 1.19 + 1, (reported, true)


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date()


def test_stats_reflect_real_invocations(make_server):
    server = make_server()
    flaky = make_function(server, FLAKY, name="flaky")
    other = make_function(server, "def handler(input):\n    return 1\n", name="other")
    quiet = make_function(server, "def handler(input):\n    return 1\n", name="quiet")

    results = [invoke(server, flaky["id"], value) for value in
               [{"ms": 5}, {"ms": 5}, {"ms": 150}, {"ms": 150, "fail": True}, {"ms": 5},
                {"fail": True}]]
    results += [invoke(server, other["id"], {}) for _ in range(2)]
    assert results[0]["cold_start"] is True and results[6]["cold_start"] is True
    assert [r["success"] for r in results].count(False) == 2
    cold = sum(r["cold_start"] for r in results)

    stats = wait_stats(server, 8)
    assert stats["total_functions"] == 3
    assert stats["total_projects"] == 0
    assert stats["success_rate"] == 75
    assert stats["cold_start_rate"] == round(cold * 100 / 8)
    for field in ("success_rate", "avg_duration_ms", "cold_start_rate"):
        assert isinstance(stats[field], int), (field, stats[field])

    # Percentiles against the durations the server recorded
    durations = [r["duration_ms"] for f in (flaky, other) for r in records(server, f["id"])]
    assert len(durations) == 8
    assert_close(stats["p50_duration_ms"], nearest_rank(durations, 50))
    assert_close(stats["p95_duration_ms"], nearest_rank(durations, 95))
    assert stats["p95_duration_ms"] >= 150 / 1.19
    assert stats["p50_duration_ms"] <= stats["p95_duration_ms"]
    assert abs(stats["avg_duration_ms"] - sum(durations) / 8) <= 1

    # The last 14 UTC days, oldest first, today last with everything
    days = stats["invocations_per_day"]
    assert len(days) == 14
    today = today_utc()
    assert [d["date"] for d in days] == [(today - datetime.timedelta(days=13 - i)).isoformat()
                                         for i in range(14)]
    assert days[-1]["count"] == 8 and days[-1]["errors"] == 2
    assert all(d["count"] == 0 and d["errors"] == 0 for d in days[:-1])

    # Per function, busiest first; a function never called is there with zeros
    functions = stats["functions"]
    assert [f["function_id"] for f in functions] == [flaky["id"], other["id"], quiet["id"]]
    assert [f["name"] for f in functions] == ["flaky", "other", "quiet"]
    assert [(f["count"], f["errors"]) for f in functions] == [(6, 2), (2, 0), (0, 0)]
    flaky_durations = [r["duration_ms"] for r in records(server, flaky["id"])]
    assert_close(functions[0]["p50_duration_ms"], nearest_rank(flaky_durations, 50))
    assert functions[2]["p50_duration_ms"] == 0

    # Deleting a function takes it out of everything
    ok(server.delete("/api/functions/" + other["id"]))
    stats = ok(server.get("/api/stats"))
    assert stats["total_functions"] == 2 and stats["total_invocations"] == 6
    assert [f["function_id"] for f in stats["functions"]] == [flaky["id"], quiet["id"]]
    assert stats["invocations_per_day"][-1] == {"date": today.isoformat(), "count": 6, "errors": 2}
    assert stats["success_rate"] == round(4 * 100 / 6)


def test_retention_does_not_lower_stats(make_server):
    server = make_server(args=["--retention", "10"])
    function = make_function(server, FLAKY)
    cold = sum(invoke(server, function["id"], {"fail": n % 4 == 0})["cold_start"] for n in range(12))
    stats = wait_stats(server, 12)
    wait_for(lambda: len(records(server, function["id"])) <= 10, 5, "never pruned to 10 records")
    assert len(records(server, function["id"])) == 10      # pruned to the newest 10
    stats = ok(server.get("/api/stats"))
    assert stats["total_invocations"] == 12
    assert stats["success_rate"] == 75
    assert stats["functions"][0]["count"] == 12 and stats["functions"][0]["errors"] == 3
    assert stats["invocations_per_day"][-1]["count"] == 12
    assert stats["cold_start_rate"] == round(cold * 100 / 12)

    # and a restart reads the same numbers back from the file
    server.restart()
    assert ok(server.get("/api/stats")) == stats


def test_stats_need_get(server):
    assert server.post("/api/stats", json={}).status_code == 405
