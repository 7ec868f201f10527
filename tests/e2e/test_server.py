"""The binary itself (issue 2): command line, access log, and a clean stop that lets calls in flight
finish, on SIGTERM and on SIGINT."""
import glob
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BINARY, free_port, requests_read, slow, wait_for


def test_help_and_version():
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=slow(10))
    assert out.returncode == 0
    for flag in ["--listen", "--data-dir", "--log-level", "CLOWDY_DATA_DIR"]:
        assert flag in out.stdout
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=slow(10))
    assert out.returncode == 0 and re.match(r"clowdy \d+\.\d+\.\d+", out.stdout)
    out = subprocess.run([BINARY, "--no-such-flag"], capture_output=True, text=True, timeout=slow(10))
    assert out.returncode == 2 and "unknown option" in out.stderr


def test_settings_from_environment_variables(tmp_path):
    """CLOWDY_LISTEN, CLOWDY_DATA_DIR and CLOWDY_LOG_LEVEL do what their flags do."""
    port = free_port()
    data_dir = tmp_path / "from-env"
    env = dict(os.environ, CLOWDY_LISTEN="127.0.0.1:%d" % port, CLOWDY_DATA_DIR=str(data_dir),
               CLOWDY_LOG_LEVEL="info", CLOWDY_PREWARM="0")
    proc = subprocess.Popen([BINARY], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def health():
            try:
                return requests.get("http://127.0.0.1:%d/api/health" % port, timeout=2)
            except requests.ConnectionError:
                assert proc.poll() is None, "clowdy exited"
                time.sleep(0.1)
                return None
        r = wait_for(health, 20, "clowdy never answered on its CLOWDY_LISTEN port")
        assert r.json()["status"] == "ok"
        assert (data_dir / "clowdy.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=slow(30))[0].decode()
    assert proc.returncode == 0
    assert "listening on http://127.0.0.1:%d" % port in output
    assert "GET /api/health 200" in output            # info level: the access log


def test_access_log_has_method_path_status_and_microseconds(server):
    server.get("/api/projects")
    server.get("/api/no/such/thing")
    wait_for(lambda: "/api/no/such/thing 404" in server.log(), 5, lambda: server.log()[-2000:])
    log = server.log()
    assert re.search(r"GET /api/projects 200 \d+us", log), log[-2000:]
    assert re.search(r"GET /api/no/such/thing 404 \d+us", log), log[-2000:]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_lets_calls_in_flight_finish(make_server, stop_signal):
    server = make_server()
    r = server.post("/api/functions", json={"name": "slow", "code":
                    "import time\ndef handler(input):\n    time.sleep(%g)\n    return 'finished'\n" % slow(1.5)})
    function_id = r.json()["id"]
    replies = []
    call = threading.Thread(target=lambda: replies.append(
        server.post("/api/invoke/" + function_id, json={"input": {}}, timeout=slow(30))))
    call.start()
    time.sleep(slow(0.7))               # the call is running in its sandbox now
    server.proc.send_signal(stop_signal)
    pid = server.proc.pid
    returncode = server.proc.wait(slow(30))
    call.join(slow(30))
    assert returncode == 0
    # It cleaned up after itself: none of its sandboxes' cgroups are left (named "<pid>-<n>")
    left = [os.path.join(parent, name)
            for parent in glob.glob("/sys/fs/cgroup/*/clowdy*") + glob.glob("/sys/fs/cgroup/clowdy*")
            if os.path.isdir(parent)
            for name in os.listdir(parent) if name.startswith("%d-" % pid)]
    assert not left, left
    assert replies and replies[0].status_code == 200, replies
    assert replies[0].json()["success"] and replies[0].json()["output"] == "finished"   # the drain waited
    # Stopped means stopped: nothing answers on its port any more
    with pytest.raises(Exception):
        server.get("/api/health", timeout=2)
    # And the data it acknowledged is there after a restart, the invocation record included
    server.proc = None
    server.start()
    records = server.get("/api/functions/%s/invocations" % function_id).json()
    assert [rec["status"] for rec in records] == ["success"]


def test_calls_still_running_when_the_drain_runs_out_are_answered_and_recorded_as_lost(make_server):
    # The drain waits 10 s: calls that run longer are cut off when their sandboxes stop. Their
    # clients get 504, outcome unknown (not a 503 that says a retry is safe: they ran; http cannot
    # tell them from the call still queued, which gets the same), and after a restart their records
    # say lost; the call that was still queued never ran and has no record
    server = make_server(args=["--max-concurrency", "2"])
    r = server.post("/api/functions", json={"name": "long", "code":
                    "import time\ndef handler(input):\n    time.sleep(60)\n    return 'finished'\n",
                    "timeout_seconds": 120})
    function_id = r.json()["id"]
    replies = []

    def call():
        try:
            replies.append(server.post("/api/invoke/" + function_id, json={"input": {}}, timeout=slow(60)))
        except Exception as error:      # said by the assertion on replies below
            replies.append(error)
    calls = [threading.Thread(target=call) for _ in range(3)]
    for thread in calls:
        thread.start()

    def two_running_one_queued():
        r = server.get("/api/cluster")
        running = r.status_code == 200 and sum(w["running"] for w in r.json()["workers"]) == 2
        return running and requests_read(server.url) >= 3
    wait_for(two_running_one_queued, 30, lambda: server.get("/api/cluster").text)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(slow(60)) == 0
    for thread in calls:
        thread.join(slow(30))
    assert [getattr(reply, "status_code", reply) for reply in replies] == [504, 504, 504], \
        [getattr(reply, "text", reply) for reply in replies]
    assert all("outcome is unknown" in reply.json()["detail"] for reply in replies)
    server.proc = None
    server.start()
    records = server.get("/api/functions/%s/invocations" % function_id).json()
    assert [rec["status"] for rec in records] == ["lost", "lost"], records
    assert all("stopped" in rec["error"] for rec in records), records
