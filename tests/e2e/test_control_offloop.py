"""Control-plane requests run off the http loop (issue 9, item 5), and two issue-18 answers.

- While another process holds SQLite's write lock on the server's database (BEGIN IMMEDIATE), a
  control-plane write waits for it, and meanwhile warm invokes and /api/health are answered: the
  write waits on a control-plane thread, not on the http loop. It completes once the lock goes.
- SIGTERM while such a write waits: it still completes, then the server exits 0.
- A route whose shape clashes with an existing one is a 409 naming that route and its id.
- The database status of a project without one is 200 with has_database false; 404 for no project.
"""
import os
import signal
import sqlite3
import threading
import time

from conftest import connected_clients, request_read, slow, wait_for

CODE = "def handler(input):\n    return {'n': input.get('n')}\n"


def test_invokes_and_health_go_on_while_the_database_is_locked(server):
    function = server.post("/api/functions", json={"name": "offloop", "code": CODE}).json()
    invoke = "/api/invoke/" + function["id"]
    first = server.post(invoke, json={"input": {"n": 0}})
    assert first.status_code == 200 and first.json()["output"] == {"n": 0}, first.text

    events = {}
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        db = sqlite3.connect(os.path.join(server.data_dir, "clowdy.db"), timeout=30, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        locked.set()
        # Held until the test is done (at most 4 s: the server's writes give up after 5 s busy)
        release.wait(4)
        events["released"] = time.monotonic()
        db.execute("ROLLBACK")
        db.close()

    def control_write():
        response = server.post("/api/projects", json={"name": "written during the lock"}, timeout=60)
        events["write"] = (response.status_code, time.monotonic())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(30)
        wait_for(lambda: connected_clients(server.url) == 0, 5, "an earlier request's connection stayed")
        writer = threading.Thread(target=control_write)
        writer.start()
        wait_for(lambda: connected_clients(server.url) >= 1, 5, "the write never reached the server")

        for n in range(1, 4):
            response = server.post(invoke, json={"input": {"n": n}}, timeout=60)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["output"] == {"n": n} and body["cold_start"] is False, body
        health = server.get("/api/health", timeout=60)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        # Everything else was answered while the write still waited for the lock
        assert writer.is_alive() and "write" not in events, events
    finally:
        release.set()

    holder.join(30)
    writer.join(60)
    status, written_at = events["write"]
    assert status == 200
    # The lock was really held: the write finished only after it was released
    assert written_at > events["released"]


def test_a_route_clash_names_the_route_and_its_id(server):
    project = server.post("/api/projects", json={"name": "Clash"}).json()
    function = server.post("/api/functions", json={"name": "u", "code": CODE,
                                                   "project_id": project["id"]}).json()
    routes = "/api/projects/%s/routes" % project["id"]
    first = server.post(routes, json={"function_id": function["id"], "method": "GET", "path": "/users/:id"})
    assert first.status_code == 200, first.text
    clash = server.post(routes, json={"function_id": function["id"], "method": "GET", "path": "/users/:uid"})
    assert clash.status_code == 409
    assert clash.json()["detail"] == \
        "A route for GET /users/:uid clashes with GET /users/:id (route %s)" % first.json()["id"]
    # Another method is no clash
    other = server.post(routes, json={"function_id": function["id"], "method": "POST", "path": "/users/:uid"})
    assert other.status_code == 200, other.text


def test_database_status_of_a_fresh_project(server):
    project = server.post("/api/projects", json={"name": "No database"}).json()
    response = server.get("/api/projects/%s/database" % project["id"])
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["has_database"] is False
    assert status["database_url"] is None
    assert server.get("/api/projects/%s" % project["id"]).json()["has_database"] is False
    missing = server.get("/api/projects/abcdefabcdef/database")
    assert missing.status_code == 404 and missing.json()["detail"] == "Project not found"


def test_a_graceful_stop_finishes_a_parked_control_plane_request(make_server):
    """SIGTERM while a control-plane write waits for the database lock: the write still completes
    (200) once the lock goes, and the server then exits 0."""
    server = make_server()
    db = sqlite3.connect(os.path.join(server.data_dir, "clowdy.db"), timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    result = {}

    def control_write():
        result["response"] = server.post("/api/projects", json={"name": "parked across SIGTERM"}, timeout=60)

    writer = threading.Thread(target=control_write)
    writer.start()
    # Parked on a control-plane thread, waiting for the lock (the server gives up after 5 s busy).
    # Read by http, not just connected: a SIGTERM that came first would find nothing in flight
    wait_for(lambda: request_read(server.url), 3, "the server never read the write")
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert writer.is_alive() and "response" not in result, "the write should still wait for the lock"
    db.execute("ROLLBACK")
    db.close()
    writer.join(slow(60))
    assert result["response"].status_code == 200, result["response"].text
    assert server.proc.wait(slow(30)) == 0
    server.proc = None
