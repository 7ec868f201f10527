"""A planned stop (SIGTERM of a worker) fails no call, even when the cluster is full.

Two worker processes over loopback tcp, each offering memory for two environments of the
function. A burst fills both and leaves calls waiting for memory; one worker is stopped with
SIGTERM while it runs its two. What a user would notice: every call of the burst succeeds (none is
answered 503 "No worker can run" or recorded lost), the stopped worker exits cleanly, and the
calls that waited ran on the one left. Times are hang guards only (wait_for), never assertions.
"""
import signal

from conftest import records, slow, wait_for
from test_cluster_local import Cluster, burst, cluster, make_function


def test_sigterm_of_a_full_worker_while_calls_wait_for_memory(tmp_path):
    # Each worker offers 256 MB: two environments of 128 MB. The budget the control process sees
    # must shrink by the leaving worker's memory at once; if it did not, the memory its ending
    # environments free would be handed to the waiting calls, and placement, which already leaves
    # the leaving worker out, would find no worker with room: 503 while the other worker was busy
    # but about to free its own environments
    c = Cluster(tmp_path, workers=2, control_args=["--max-concurrency", "8"],
                worker_args=["--memory-budget-mb", "256"])
    try:
        view = cluster(c.control)
        assert view["memory_mb"] == 512, view
        fid = make_function(c.control, "full", memory_mb=128)
        count = 8
        pool, futures = burst(c.control, fid, count, 3)
        # Both workers run two calls; the other four wait for memory
        wait_for(lambda: [w["running"] for w in cluster(c.control)["workers"]] == [2, 2], 60,
                 lambda: cluster(c.control))
        leaving_id = cluster(c.control)["workers"][0]["id"]
        leaving = next(w for w in c.workers if w.proc.pid == int(leaving_id.rsplit("-", 2)[1]))
        leaving.proc.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
        pool.shutdown()
        assert all(status == 200 and body.get("success") for status, body in answers), answers
        assert sorted(body["output"] for _, body in answers) == list(range(count))
        assert leaving.proc.wait(slow(30)) == 0
        # It left (drained), it was not lost (a lost one stays listed as such); the one left runs
        # what comes next. The view is republished each heartbeat, and the goodbye may still be on
        # its way when the process has exited: wait for it
        wait_for(lambda: [w["state"] for w in cluster(c.control)["workers"]] == ["ready"], 10,
                 lambda: cluster(c.control))
        assert cluster(c.control)["memory_mb"] == 256
        r = c.control.post("/api/invoke/" + fid, json={"input": {"n": 99}})
        assert r.status_code == 200 and r.json()["output"] == 99, r.text
        rows = records(c.control, fid, count + 1, seconds=10)
        assert all(row["status"] == "success" for row in rows), [row["status"] for row in rows]
        stats = c.control.get("/api/stats").json()
        assert not stats.get("lost"), stats
    finally:
        c.cleanup()
