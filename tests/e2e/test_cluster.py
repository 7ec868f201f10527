"""Three hosts (a control host and two worker hosts, network namespaces on a bridge, CurveZMQ over
tcp) under load from 12 clients, while one worker host is killed (-9), frozen (SIGSTOP, then
SIGCONT), cut off (link down, then up) or stopped as planned (SIGTERM), and a burst queued beyond
--max-concurrency behind a worker that dies.

What a user would notice, and what is asserted each time:
  - no call without an answer: every call returns (the per-call guard is only against a hang);
  - every call that ran is recorded: the function's records are exactly the calls answered 200 or
    504 (a 503 never ran and has no record);
  - a platform failure says so: 504 with a record of status `lost` whose message says the call may
    have run, never a function error (200 with success false) nor a record of status `error`, and
    /api/stats counts it apart (its success rate stays 100: no function here ever fails);
  - a planned stop fails no call at all;
  - calls queued behind a worker that dies are sent to the other worker: only the calls running on
    the dead worker fail (when it froze rather than died: or were sent to it before its silence was
    noticed).

The hosts are shared by the whole module (tests/e2e/cluster.py); each case calls its own function, so
its counts are its own, hits the worker host running most of that function's environments, and ends
with that host back in the cluster. Which host runs a function under load is told by the runners
(environments) that appeared under its worker process; for the burst, how many calls run at once and
where is told by the control process (GET /api/cluster, each worker's calls running), which no spare
sandbox or zygote on a worker host can skew.
"""
import collections
import json
import re
import threading
import time

import pytest

from cluster import Cluster, Load
from conftest import slow, wait_for

CLIENTS = 12
CODE = "import time\ndef handler(i):\n    time.sleep(0.05)\n    return i\n"
BURST_CODE = "import time\ndef handler(i):\n    time.sleep(2)\n    return i\n"
MAX_CONCURRENCY = 4


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(workers=2, control_args=["--max-concurrency", str(MAX_CONCURRENCY)],
                worker_args=["--prewarm", "0"], start_timeout=slow(60))
    try:
        yield c
    finally:
        c.close()


def restart(cluster, host, since):
    """Bring a worker host back after an event and wait until it is a member again."""
    cluster.restore(host, since, timeout=slow(30))


def under_load(cluster, name, event):
    """Calls a new function from CLIENTS clients; once calls succeed, runs event(host) on the worker
    host running most of the function's environments, brings that host back, and ends the load once
    calls succeed again. Returns (function id, every call, the host, control log offset before)."""
    fid = cluster.create_function(name, CODE)
    before = {w.name: w.environments() for w in cluster.workers}   # idle ones of earlier cases
    load = Load(cluster, fid, clients=CLIENTS, guard=slow(60)).start()
    host = None
    try:
        wait_for(lambda: load.successes_after(0) >= 3 * CLIENTS, 30,
                 lambda: "no calls succeed before %s: %r\n%s" % (name, load.snapshot()[-5:], cluster.logs()))
        host = max(cluster.workers, key=lambda w: w.environments() - before[w.name])
        since = cluster.control.log_size()
        event(host)
        after = time.monotonic()
        wait_for(lambda: load.successes_after(after) >= 3 * CLIENTS, 60,
                 lambda: "no calls succeed after %s: %r\n%s" % (name, load.snapshot()[-5:], cluster.logs()))
    finally:
        calls = load.stop()
        if host:
            restart(cluster, host, since)
    return fid, calls, host, since


def check(cluster, fid, calls, may_fail=True):
    """The assertions every case shares (see the module's docstring)."""
    assert calls
    hangs = [c for c in calls if not c.answered]
    assert not hangs, "calls without an answer: %r" % hangs[:10]
    function_errors = [c for c in calls if c.status == 200 and not c.succeeded]
    assert not function_errors, "platform failures reported as the function's: %r" % function_errors[:10]
    failed = [c for c in calls if not c.succeeded]
    if not may_fail:
        assert not failed, "a planned stop failed calls: %r" % failed[:10]
    odd = [c for c in failed if c.status not in (503, 504)]
    assert not odd, "failures other than lost (504) or not run (503): %r" % odd[:10]
    lost = [c for c in failed if c.status == 504]
    assert all(c.invocation_id for c in lost), lost

    # Every call that ran is recorded, with the status it was answered with
    ran = [c for c in calls if c.status in (200, 504)]
    counts = wait_for(lambda: (lambda n: n if sum(n.values()) >= len(ran) else None)(
        cluster.invocation_counts(fid)), 30,
        lambda: "records %r, calls that ran %d" % (cluster.invocation_counts(fid), len(ran)))
    expected = {"success": len(ran) - len(lost)}
    if lost:
        expected["lost"] = len(lost)
    assert counts == expected, (counts, expected)
    for c in lost[:5]:
        status, record = cluster.get("/api/functions/%s/invocations/%s" % (fid, c.invocation_id))
        assert status == 200 and record["status"] == "lost", record
        text = json.dumps(record).lower()
        assert "may have run" in text, record
    check_stats(cluster)
    return failed


def check_stats(cluster):
    """/api/stats counts lost calls apart: no function in this module ever fails, so every call of a
    known outcome succeeded, and the lost ones are all the records of status lost."""
    status, stats = cluster.get("/api/stats")
    assert status == 200, stats
    everything = cluster.invocation_counts()
    assert stats["success_rate"] == 100 and stats.get("lost", 0) == everything.get("lost", 0), (stats, everything)


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_burst_queued_behind_a_worker_that_dies(cluster, how):
    """16 calls to a 2 s function, 4 running and 12 queued; the worker running most of them dies
    (kill -9: its connection closes; or frozen by SIGSTOP: it just goes silent): every call is
    answered, and only those that ran on the lost worker fail (frozen: or were sent to it before its
    silence was noticed), the queued ones run on the other worker."""
    fid = cluster.create_function("burst-" + how, BURST_CODE)
    calls = []
    lock = threading.Lock()
    pool = cluster.executor(16)

    def one(n):
        conn = cluster.connection(slow(90))
        try:
            conn.request("POST", "/api/invoke/" + fid, body=json.dumps({"input": n}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = json.loads(r.read() or b"null")
            result = (r.status, body, (body or {}).get("invocation_id") or r.getheader("X-Clowdy-Invocation-Id"))
        except Exception as e:
            result = (None, "%s: %s" % (type(e).__name__, e), None)
        finally:
            conn.close()
        with lock:
            calls.append(result)

    victim = None

    def at_once():
        """The calls in flight per worker host once MAX_CONCURRENCY run at once (None until then)."""
        running = cluster.running_calls() or {}
        return running if sum(running.values()) >= MAX_CONCURRENCY else None
    try:
        futures = [pool.submit(one, n) for n in range(16)]
        running = wait_for(lambda: at_once() or all(f.done() for f in futures), 60,
                           lambda: "the burst never ran %d calls at once (%r):\n%s" % (
                               MAX_CONCURRENCY, cluster.running_calls(), cluster.logs()))
        assert running is not True, "the burst ended before it ran %d calls at once: %r\n%s" % (
            MAX_CONCURRENCY, calls, cluster.logs())
        victim = max(cluster.workers, key=lambda w: running[w.name])
        running_there = running[victim.name]
        since = cluster.control.log_size()
        victim.kill() if how == "kill" else victim.pause()
        for f in futures:
            f.result()
    finally:
        pool.shutdown(wait=True)
        if victim:
            restart(cluster, victim, since)

    statuses = collections.Counter(status for status, _, _ in calls)
    assert None not in statuses, "calls without an answer: %r" % [c for c in calls if c[0] is None]
    odd = [c for c in calls if not (c[0] == 504 or (c[0] == 200 and c[1]["success"]))]
    assert not odd, odd
    # Killed, its connection closes and it is lost at once: only its running calls fail. Frozen, it
    # is lost after a short silence; until then a slot freed elsewhere may send it one more call (a
    # call takes 2 s, far longer than that silence, so each slot does so at most once)
    allowance = 0 if how == "kill" else MAX_CONCURRENCY
    assert statuses[504] <= running_there + allowance, (
        "%d calls lost, but only %d ran on the lost host: queued calls were sent to it after it was "
        "known lost (%r)" % (statuses[504], running_there, statuses))
    assert statuses[200] >= 16 - running_there - allowance, statuses
    ran = statuses[200] + statuses[504]
    counts = wait_for(lambda: (lambda n: n if sum(n.values()) >= ran else None)(cluster.invocation_counts(fid)),
                      30, lambda: "records: %r" % cluster.invocation_counts(fid))
    assert counts == {k: v for k, v in (("success", statuses[200]), ("lost", statuses[504])) if v}, counts
    check_stats(cluster)


def test_kill_9_under_load(cluster):
    fid, calls, _, _ = under_load(cluster, "killed", lambda host: host.kill())
    check(cluster, fid, calls)


def test_sigstop_then_sigcont_under_load(cluster):
    def freeze(host):
        host.pause()
        time.sleep(4)       # the event itself: frozen this long, then thawed
        host.resume()
    fid, calls, _, _ = under_load(cluster, "frozen", freeze)
    check(cluster, fid, calls)


def test_link_down_then_up_under_load(cluster):
    def cut(host):
        host.link_down()
        time.sleep(3)       # the event itself: the partition lasts this long
        host.link_up()
    fid, calls, host, since = under_load(cluster, "partitioned", cut)
    check(cluster, fid, calls)
    # After the partition heals, each of its workers registers once (not dropped and joined again)
    joins = collections.Counter(re.findall(r"worker (\S*-%d-\d+) joined" % host.pid,
                                           cluster.control.log_text(since)))
    assert all(n <= 1 for n in joins.values()), joins


def test_sigterm_under_load_fails_nothing(cluster):
    def planned_stop(host):
        assert host.terminate(timeout=slow(60)) == 0, host.log_text(host.log_start)[-3000:]
    fid, calls, _, _ = under_load(cluster, "stopped", planned_stop)
    check(cluster, fid, calls, may_fail=False)
