"""Sandboxes a call waits for are made first (issue 15): a spare being made for no one and one a
call now waits for compete for the same two cores, so the one the call waits for gets ten times
the CPU weight of its cgroup while it is made, and the default again before the function's own
code runs in it (a function never gets more than its share; its quota caps it anyway). The bench's
burst row measures what that buys; this checks what a user relies on: every function's sandbox,
and every spare, is at the default weight once its call is answered.
"""
import concurrent.futures
import os
import uuid

from conftest import ok, sandboxes, slow, wait_for


def cpu_weight(pid):
    """The CPU weight of pid's cgroup (v1 cpu.shares, v2 cpu.weight), normalised to v2's scale
    (100 = the default), or None when pid is gone."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        try:
            if controllers == "":
                with open("/sys/fs/cgroup%s/cpu.weight" % path) as f:
                    return int(f.read())
            if "cpu" in controllers.split(","):
                with open("/sys/fs/cgroup/%s%s/cpu.shares" % (controllers, path)) as f:
                    return int(f.read()) * 100 // 1024
        except OSError:
            return None             # a spare let go meanwhile
    return None


def test_no_function_runs_at_the_raised_weight(make_server):
    # One pre-started sandbox per worker: a burst of eight cold starts takes the spare, adopts the
    # spares being made (raised while made) and has new ones made for it (raised from the start)
    server = make_server(args=["--workers", "2", "--prewarm", "1"])
    functions = [ok(server.post("/api/functions", json={
        "name": "prio_" + uuid.uuid4().hex[:8],
        "code": "import os\ndef handler(event):\n    return {'n': event['n'], 'pid': os.getpid()}\n"}))
        for _ in range(8)]

    def call(pair):
        index, function = pair
        result = ok(server.post("/api/invoke/" + function["id"], json={"input": {"n": index}},
                                timeout=slow(60)))
        assert result["success"] is True and result["cold_start"] is True, result
        return result["output"]["n"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(call, enumerate(functions))) == list(range(8))

    # Every sandbox, the eight functions' and the spares made since, at the default weight
    wait_for(lambda: len(sandboxes(server.proc.pid)) >= 8 + 2, slow(15),
             lambda: "%d sandboxes, expected the 8 warm ones and 2 spares" % len(sandboxes(server.proc.pid)))
    weights = [cpu_weight(pid) for pid in sandboxes(server.proc.pid)]
    assert [w for w in weights if w is not None] == [100] * len([w for w in weights if w is not None]), weights
    assert len([w for w in weights if w is not None]) >= 10, weights
    # and warm calls still go to them
    for index, function in enumerate(functions):
        result = ok(server.post("/api/invoke/" + function["id"], json={"input": {"n": index}}))
        assert result["cold_start"] is False and result["output"]["n"] == index
