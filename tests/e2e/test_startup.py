"""Start-up handshake and bounded shutdown (issue 9, item 1), end to end against build/clowdy.

Every actor says READY or FAILED <reason> before main goes on. A failure must end the process quickly,
non-zero, with one line "clowdy: <actor>: <cause>" and no "listening on" line, so that nobody is
handed an address whose invokes would hang (the old case: assignment could not bind its worker
endpoint, main printed "listening on", every invoke hung in the gateway and SIGTERM hung too).

Shutdown is bounded: with an actor wedged (the test hook CLOWDY_DEBUG_WEDGE=<actor> makes it sleep for
ever once started), SIGTERM still ends the process within the drain time (10 s) plus the stop margin
(5 s), and the last line names the actor that did not stop.

The bounds below are the behaviour ("does not hang"), so they are wide: a slow VM must pass them.
"""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import BINARY, Server, slow

START_BOUND = 20            # seconds a failed start may take to end the process
SHUTDOWN_BOUND = 15 + slow(30)   # hang guard: drain (10 s) + stop margin (5 s), and a margin


def held_port():
    """A tcp port that stays taken (listening) while the socket lives."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def run_clowdy(data_dir, args=("--listen", "127.0.0.1:0"), env=None):
    """Run clowdy to its end; a hang past START_BOUND fails the test (TimeoutExpired)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([BINARY, "--data-dir", data_dir] + list(args), env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=START_BOUND)


def failure_line(output, actor):
    lines = [line for line in output.splitlines() if line.startswith("clowdy: %s: " % actor)]
    assert len(lines) == 1, output
    return lines[0]


def test_worker_endpoint_in_use_fails_the_start(tmp_path):
    holder, port = held_port()
    with holder:
        endpoint = "tcp://127.0.0.1:%d" % port
        done = run_clowdy(str(tmp_path), env={"CLOWDY_ENDPOINT_WORKER": endpoint})
    assert done.returncode != 0, done.stdout
    line = failure_line(done.stdout, "assignment")
    assert endpoint in line and "in use" in line, line
    assert "listening on" not in done.stdout
    # The actors started before assignment were stopped in order, not abandoned
    assert "clowdy: stopped" in done.stdout


def test_http_port_in_use_fails_the_start(tmp_path):
    holder, port = held_port()
    with holder:
        done = run_clowdy(str(tmp_path), args=("--listen", "127.0.0.1:%d" % port))
    assert done.returncode != 0, done.stdout
    line = failure_line(done.stdout, "http")
    assert "127.0.0.1:%d" % port in line and "in use" in line, line
    assert "listening on" not in done.stdout


def test_data_dir_that_is_a_file_fails_the_start(tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the data dir should be")
    done = run_clowdy(str(not_a_dir))
    assert done.returncode != 0, done.stdout
    assert re.search(r"^clowdy: .*%s.*not a directory" % re.escape(str(not_a_dir)), done.stdout, re.M), done.stdout
    assert "listening on" not in done.stdout


def test_database_that_cannot_be_opened_fails_the_start(tmp_path):
    # The data dir is there, its database cannot be: the first actor that opens it says so
    (tmp_path / "clowdy.db").mkdir()
    done = run_clowdy(str(tmp_path))
    assert done.returncode != 0, done.stdout
    line = failure_line(done.stdout, "recorder")
    assert str(tmp_path) in line, line
    assert "listening on" not in done.stdout


def test_a_good_start_still_answers(tmp_path):
    # The handshake did not cost the happy path anything: it starts, serves, stops with status 0
    server = Server(data_dir=str(tmp_path)).start()
    try:
        assert server.get("/api/projects").status_code == 200
    finally:
        assert server.stop() == 0


def wedged_server(tmp_path, actor):
    return Server(data_dir=str(tmp_path), env={"CLOWDY_DEBUG_WEDGE": actor}).start()


@pytest.mark.parametrize("actor", ["gateway", "recorder"])
def test_sigterm_ends_the_process_with_an_actor_wedged(tmp_path, actor):
    server = wedged_server(tmp_path, actor)
    assert server.get("/api/projects").status_code == 200     # http itself still serves
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(SHUTDOWN_BOUND)            # a hang guard: the wedged actor never stops
    except subprocess.TimeoutExpired:
        server.proc.kill()
        pytest.fail("SIGTERM did not end the process with %s wedged:\n%s" % (actor, server.log()))
    # It ended because the shutdown watchdog gave up on the wedged actor, and says which
    assert server.proc.returncode != 0
    assert re.search(r"^clowdy: %s did not stop" % actor, server.log(), re.M), server.log()
    server.stop()


def test_sigterm_with_an_invoke_stuck_behind_a_wedged_assignment(tmp_path):
    """The issue's case: the gateway hands a call to an assignment that never reads. The gateway's
    send is queued (bounded, never blocking its loop), the caller gets an answer at shutdown, and
    SIGTERM still ends the process."""
    server = wedged_server(tmp_path, "assignment")
    function = server.post("/api/functions", json={
        "name": "fn_" + uuid.uuid4().hex[:8], "code": "def handler(input):\n    return 1\n"}).json()
    answer = {}

    def call():
        try:
            answer["status"] = server.post("/api/invoke/" + function["id"], json={"input": {}},
                                           timeout=SHUTDOWN_BOUND).status_code
        except requests.RequestException as error:
            answer["error"] = error

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1)                                   # the call is parked behind assignment
    assert caller.is_alive() and not answer
    # The gateway's loop is not stuck in a send: it still answers what it can answer alone
    assert server.post("/api/invoke/aaaaaaaaaaaa", json={"input": {}}, timeout=10).status_code == 404
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(SHUTDOWN_BOUND)            # a hang guard
    except subprocess.TimeoutExpired:
        server.proc.kill()
        pytest.fail("SIGTERM did not end the process:\n" + server.log())
    caller.join(10)
    assert not caller.is_alive()
    # The parked call got an answer (503 at shutdown, or a 5xx from its deadline), or at worst a closed
    # connection: never an endless wait (which the client would see as its read timing out)
    if "status" in answer:
        assert answer["status"] >= 500, answer
    else:
        error = answer.get("error")
        assert isinstance(error, requests.ConnectionError) and not isinstance(error, requests.Timeout), answer
    assert re.search(r"^clowdy: assignment did not stop", server.log(), re.M), server.log()
    server.stop()
