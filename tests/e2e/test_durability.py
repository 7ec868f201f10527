"""Durability of the control data: a restart keeps everything, a kill -9 right after an acknowledged
write keeps that write, and many concurrent clients creating objects lose nothing.
"""
import concurrent.futures
import os
import signal
import time
import uuid

import requests

from conftest import descendants, ok, slow, start_time

CODE = "def handler(event):\n    return event\n"


def kill_9(server):
    """SIGKILL the server, give what it started (its sandboxes, slirp4netns) 5 s to die with it
    (stretched on a slow machine), kill any that did not so that tests leak nothing, and return
    those survivors' pids."""
    started = {pid: start_time(pid) for pid in descendants(server.proc.pid)}
    server.kill()
    deadline = time.time() + slow(5)
    alive = list(started)
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if start_time(pid) == started[pid]]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return started, alive


def snapshot(server):
    """Everything the API shows, keyed so that two snapshots compare equal when nothing was lost."""
    projects = ok(server.get("/api/projects"))
    functions = ok(server.get("/api/functions"))
    state = {"projects": projects, "functions": functions, "env": {}, "routes": {}, "versions": {}}
    for project in projects:
        state["env"][project["id"]] = ok(server.get("/api/projects/%s/env" % project["id"]))
        state["routes"][project["id"]] = ok(server.get("/api/projects/%s/routes" % project["id"]))
    for function in functions:
        state["versions"][function["id"]] = ok(server.get("/api/functions/%s/versions" % function["id"]))
    return state


def test_restart_keeps_all_data(make_server):
    server = make_server()
    project = ok(server.post("/api/projects", json={"name": "Durable", "description": "keeps"}))
    pid = project["id"]
    function = ok(server.post("/api/functions", json={"name": "f", "code": CODE, "project_id": pid,
                                                      "memory_mb": 256}))
    ok(server.put("/api/functions/" + function["id"], json={"code": CODE + "# v2\n"}))
    ok(server.put("/api/functions/%s/versions/1" % function["id"]))
    ok(server.post("/api/projects/%s/env" % pid, json={"key": "SECRET", "value": "x"}))
    ok(server.post("/api/projects/%s/env" % pid, json={"key": "PLAIN", "value": "y", "is_secret": False}))
    ok(server.post("/api/projects/%s/routes" % pid,
                   json={"function_id": function["id"], "method": "GET", "path": "/items/:id"}))
    ok(server.post("/api/functions", json={"name": "loose", "code": CODE}))
    before = snapshot(server)

    server.restart()
    after = snapshot(server)
    assert after == before
    assert after["versions"][function["id"]][0]["version"] == 2
    assert ok(server.get("/api/functions/" + function["id"]))["active_version"] == 1
    # and the store still accepts writes after the restart
    ok(server.post("/api/projects", json={"name": "After restart"}))
    assert len(ok(server.get("/api/projects"))) == 2


def test_kill_9_keeps_acknowledged_writes(make_server):
    server = make_server()
    written = []
    for round_ in range(20):
        kind = round_ % 3
        if kind == 0:
            created = ok(server.post("/api/projects", json={"name": "kill %d" % round_}))
            written.append(("/api/projects/" + created["id"], "name", created["name"]))
        elif kind == 1:
            created = ok(server.post("/api/functions", json={"name": "k%d" % round_, "code": CODE}))
            written.append(("/api/functions/" + created["id"], "name", created["name"]))
        else:
            fid = written[-1][0].rsplit("/", 1)[1]
            updated = ok(server.put("/api/functions/" + fid, json={"code": CODE + "# %d\n" % round_}))
            written.append(("/api/functions/" + fid, "active_version", updated["active_version"]))
        kill_9(server)         # SIGKILL right after the acknowledged write
        server.start()
        for path, field, value in written:
            assert ok(server.get(path))[field] == value, (round_, path)
    assert len(ok(server.get("/api/projects"))) == 7


def test_concurrent_creates_lose_nothing(make_server):
    # 640 projects of one user: past the default --max-projects (test_quotas.py tests that)
    server = make_server(args=["--max-projects", "0"])
    clients, each = 32, 20
    tag = uuid.uuid4().hex[:6]

    def client(number):
        session = requests.Session()
        made = []
        for index in range(each):
            # every client uses the same names: slugs must still come out unique
            response = session.post(server.url + "/api/projects",
                                    json={"name": "Busy %s %d" % (tag, index % 4)}, timeout=60)
            assert response.status_code == 200, response.text
            project = response.json()
            response = session.post(server.url + "/api/functions",
                                    json={"name": "c%d_%d" % (number, index), "code": CODE,
                                          "project_id": project["id"]}, timeout=60)
            assert response.status_code == 200, response.text
            made.append((project["id"], project["slug"], response.json()["id"]))
        return made

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        results = [row for made in pool.map(client, range(clients)) for row in made]

    assert len(results) == clients * each
    projects = ok(server.get("/api/projects"))
    functions = ok(server.get("/api/functions"))
    assert len(projects) == clients * each
    assert len(functions) == clients * each
    assert {p["id"] for p in projects} == {r[0] for r in results}
    assert {f["id"] for f in functions} == {r[2] for r in results}
    slugs = [p["slug"] for p in projects]
    assert len(set(slugs)) == len(slugs)
    assert all(p["function_count"] == 1 for p in projects)
    # and after a kill -9 all of it is still there
    kill_9(server)
    server.start()
    assert len(ok(server.get("/api/projects"))) == clients * each
    assert len(ok(server.get("/api/functions"))) == clients * each


def test_kill_9_leaves_no_processes(make_server):
    server = make_server()
    function = ok(server.post("/api/functions", json={"name": "f", "code": CODE,
                                                       "network_enabled": True}))
    result = ok(server.post("/api/invoke/" + function["id"], json={"input": {"x": 1}}))
    assert result["success"] and result["output"] == {"x": 1}, result
    started, survivors = kill_9(server)
    # The warm sandbox, the pre-started ones and the function's slirp4netns were all running
    assert len(started) >= 3, started
    assert survivors == [], "processes outlived a SIGKILLed server: %s" % survivors
