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
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Server, free_port, ok, slow, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"


# ---------------------------------------------------------------------------------------------------
# Helpers

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
    # After a restart of the server the project still has its database, and its data
    server.restart()
    status = database(server, project)
    assert status["has_database"] is True and status["status"] == "ready", status
    result = invoke(server, function, {"add": "four"})
    assert result["cold_start"] is True
    assert output(result)["rows"] == ["one", "two", "three", "four"]


def test_sqlite_isolated_between_projects(sqlite_server):
    server = sqlite_server
    a, b = make_project(server), make_project(server)
    provision(server, a)
    provision(server, b)
    fa, fb = make_function(server, a, SQLITE_CODE), make_function(server, b, SQLITE_CODE)
    assert output(invoke(server, fa, {"add": "secret-a"}))["rows"] == ["secret-a"]
    assert output(invoke(server, fb))["rows"] == []
    # B's sandbox sees only its own database file: not A's file (by name or by content), nor the
    # directory that holds every project's, nor the server's data dir by its host path
    peek = make_function(server, b, '''
import os
def handler(event, context):
    found = {}
    for folder, _, files in os.walk("/opt/database"):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[path] = b"secret-a" in f.read()
    return {"db": sorted(os.listdir("/opt/database")), "found": found,
            "host": {path: os.path.exists(path) for path in event["host_paths"]}}
''')
    host_paths = [server.data_dir, os.path.join(server.data_dir, "databases"),
                  os.path.join(server.data_dir, "databases", a, "db.sqlite3")]
    assert os.path.exists(host_paths[2])        # A's file is there to be found
    seen = output(invoke(server, peek, {"host_paths": host_paths}))
    assert seen["db"] and all(name.startswith("db.sqlite3") for name in seen["db"]), seen
    assert a not in json.dumps(seen["found"]) and not any(seen["found"].values()), seen
    assert "/opt/database/db.sqlite3" in seen["found"], seen     # the walk did read B's own file
    assert not any(seen["host"].values()), seen
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


CONCURRENT_CODE = '''
import os, sqlite3, time
def handler(event, context):
    db = sqlite3.connect(os.environ["DATABASE_URL"][len("sqlite:///"):], timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS hits (who TEXT, n INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS arrived (who TEXT)")
    db.execute("INSERT INTO arrived VALUES (?)", (event["who"],))
    db.commit()
    # Wait (bounded) until the other calls are in their handlers too, so the writes run at once
    deadline = time.monotonic() + event.get("wait", 0)
    arrived = lambda: db.execute("SELECT count(DISTINCT who) FROM arrived").fetchone()[0]
    while arrived() < event.get("together", 1) and time.monotonic() < deadline:
        time.sleep(0.02)
    together = arrived()
    for n in range(event["rows"]):
        db.execute("INSERT INTO hits VALUES (?, ?)", (event["who"], n))
        db.commit()
    total = db.execute("SELECT count(*) FROM hits").fetchone()[0]
    db.close()
    return {"together": together, "total": total}
'''


def test_sqlite_concurrent_environments_share_it(sqlite_server):
    import concurrent.futures
    server = sqlite_server
    project = make_project(server)
    provision(server, project)
    wait = slow(20)
    function = make_function(server, project, CONCURRENT_CODE, timeout_seconds=int(wait) + 30)
    whos = ["a", "b", "c", "d"]
    with concurrent.futures.ThreadPoolExecutor(len(whos)) as pool:
        results = list(pool.map(lambda who: invoke(server, function, {
            "who": who, "rows": 25, "together": len(whos), "wait": wait}), whos))
    outs = [output(r) for r in results]
    # All four calls were in their handlers, in four environments, before any of them wrote
    assert [out["together"] for out in outs] == [len(whos)] * len(whos), outs
    # Every write of every environment is there, none lost to another's
    assert output(invoke(server, function, {"who": "e", "rows": 0}))["total"] == 100


def job_rows(server, project):
    """The server's own record of the project's database (read-only look at its store)."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(server.data_dir, "clowdy.db"), uri=True, timeout=10)
    try:
        return db.execute("SELECT state FROM project_databases WHERE project_id = ?", (project,)).fetchall()
    finally:
        db.close()


def test_sqlite_provision_racing_a_delete_leaves_nothing(sqlite_server):
    server = sqlite_server
    for _ in range(3):
        project = make_project(server)
        ok(server.post("/api/projects/%s/database/provision" % project))
        ok(server.delete("/api/projects/" + project))
        files = os.path.join(server.data_dir, "databases", project)
        wait_for(lambda: not os.path.exists(files) and not job_rows(server, project), 30,
                 "a database (or its job) outlived its project")
        time.sleep(slow(0.5))       # a provision that was under way has finished by now
        assert not os.path.exists(files) and not job_rows(server, project)
        assert server.get("/api/projects/%s/database" % project).status_code == 404


MAKE_CODE = '''
import errno, os
def handler(event, context):
    tries = {
        "file": lambda: os.close(os.open("/opt/database/new.bin", os.O_WRONLY | os.O_CREAT, 0o644)),
        "dir": lambda: os.mkdir("/opt/database/d"),
        "symlink": lambda: os.symlink("/", "/opt/database/up"),
        "hard link": lambda: os.link("/opt/database/db.sqlite3", "/opt/database/copy"),
        "rename": lambda: os.rename("/opt/database/db.sqlite3-wal", "/opt/database/moved"),
        "remove": lambda: os.unlink("/opt/database/db.sqlite3-shm"),
        "chmod": lambda: os.chmod("/opt/database", 0o777),
    }
    out = {}
    for name, attempt in tries.items():
        try:
            attempt()
            out[name] = "DONE"
        except OSError as error:
            out[name] = errno.errorcode.get(error.errno, str(error.errno))
    return {"tries": out, "files": sorted(os.listdir("/opt/database"))}
'''


def test_sqlite_a_function_makes_no_files_beside_its_database(sqlite_server):
    """The database's dir holds SQLite's three files and nothing else: a function cannot make a
    file, directory or link there, nor move or remove the three (each is capped in size, so the
    project's disk use is bounded; test_database_backstop.py), and the database still works."""
    server = sqlite_server
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, MAKE_CODE)
    seen = output(invoke(server, function))
    assert seen["tries"] == {name: ("EPERM" if name == "chmod" else "EACCES") for name in seen["tries"]}, seen
    assert seen["files"] == ["db.sqlite3", "db.sqlite3-shm", "db.sqlite3-wal"], seen
    files = os.path.join(server.data_dir, "databases", project)
    assert sorted(os.listdir(files)) == seen["files"]
    # SQLite keeps working with journals it can neither make nor remove: writes, reads across
    # connections and environments, a restart of the connection
    writer = make_function(server, project, SQLITE_CODE)
    assert output(invoke(server, writer, {"add": "one"}))["rows"] == ["one"]
    assert output(invoke(server, writer, {"add": "two"}))["rows"] == ["one", "two"]
    ok(server.put("/api/functions/" + writer, json={"code": SQLITE_CODE + "\n# v2\n"}))    # a new environment
    assert output(invoke(server, writer))["rows"] == ["one", "two"]
    assert sorted(os.listdir(files)) == seen["files"]


def test_sqlite_read_on_the_host_then_calls_still_write(sqlite_server):
    """SQLite on the host (root) removes the journals at its last close, and functions cannot make
    them: the worker makes them again before the project's next call, warm or cold."""
    server = sqlite_server
    project = make_project(server)
    provision(server, project)
    writer = make_function(server, project, SQLITE_CODE)
    assert output(invoke(server, writer, {"add": "before"}))["rows"] == ["before"]
    files = os.path.join(server.data_dir, "databases", project)
    import sqlite3
    host = sqlite3.connect(os.path.join(files, "db.sqlite3"))
    assert [r[0] for r in host.execute("SELECT body FROM notes")] == ["before"]
    host.close()
    assert sorted(os.listdir(files)) == ["db.sqlite3"]
    warm = invoke(server, writer, {"add": "warm"})
    assert warm["cold_start"] is False and output(warm)["rows"] == ["before", "warm"], warm
    assert sorted(os.listdir(files)) == ["db.sqlite3", "db.sqlite3-shm", "db.sqlite3-wal"]
    host = sqlite3.connect(os.path.join(files, "db.sqlite3"))
    host.execute("SELECT 1").fetchall()
    host.close()
    ok(server.put("/api/functions/" + writer, json={"code": SQLITE_CODE + "\n# after the host's read\n"}))
    cold = invoke(server, writer, {"add": "cold"})
    assert cold["cold_start"] is True and output(cold)["rows"] == ["before", "warm", "cold"], cold
    assert sorted(os.listdir(files)) == ["db.sqlite3", "db.sqlite3-shm", "db.sqlite3-wal"]


def test_sqlite_a_deep_tree_is_removed_and_blocks_nobody(sqlite_server):
    """A database dir from before its files were sealed (0777) may hold a directory tree of any
    depth that a function left: deleting the project still removes all of it (in bounded steps:
    a tree deeper than the remover's own depth limit is moved up and taken apart in pieces), and
    the job does not stay in the way of later ones. The tree is planted from the host, as such a
    function made it, one level at a time (a path this deep is longer than PATH_MAX)."""
    server = sqlite_server
    project = make_project(server)
    provision(server, project)
    files = os.path.join(server.data_dir, "databases", project)
    folder = os.open(files, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(300):
        os.mkdir("d", dir_fd=folder)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
        os.close(folder)
        folder = inner
    with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder), "w") as f:
        f.write("x")
    os.symlink("/", "up", dir_fd=folder)
    os.close(folder)
    ok(server.delete("/api/projects/" + project))
    wait_for(lambda: not os.path.exists(files) and not job_rows(server, project), 30,
             lambda: "the deep tree or its job stayed: %s" % job_rows(server, project))
    # The server's own files are where they were (the link at the bottom led nowhere)
    assert os.path.exists(os.path.join(server.data_dir, "clowdy.db"))
    later = make_project(server)
    assert provision(server, later)["status"] == "ready"


# ---------------------------------------------------------------------------------------------------
# postgres provider, against a real PostgreSQL server

class Postgres:
    """A throwaway cluster: initdb in a temp dir (as the postgres user: initdb refuses root), a unix
    socket dir and a loopback port, password authentication for everyone."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="clowdy-pg-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.sockets = os.path.join(self.tmp, "sockets")
        os.mkdir(self.sockets)
        os.chmod(self.sockets, 0o755)
        self.port = free_port()
        self.password = uuid.uuid4().hex
        user = pwd.getpwnam("postgres")
        self.uid, self.gid = user.pw_uid, user.pw_gid
        os.chown(self.tmp, self.uid, self.gid)
        os.chown(self.sockets, self.uid, self.gid)
        pwfile = os.path.join(self.tmp, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chown(pwfile, self.uid, self.gid)
        self.run([PG_BIN + "/initdb", "-D", self.data, "-U", "postgres", "--pwfile", pwfile,
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8"])
        self.log = os.path.join(self.tmp, "server.log")
        self.run([PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(int(slow(60))),
                  "-o", "-k %s -p %d -c listen_addresses=127.0.0.1" % (self.sockets, self.port), "start"])
        self.admin_url = "host=%s port=%d user=postgres password=%s dbname=postgres" % (
            self.sockets, self.port, self.password)

    def run(self, argv):
        def demote():
            os.setgid(self.gid)
            os.setuid(self.uid)
        subprocess.run(argv, check=True, preexec_fn=demote, cwd=self.tmp,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=slow(120))

    def query(self, sql, dbname="postgres"):
        import psycopg2
        connection = psycopg2.connect(host=self.sockets, port=self.port, user="postgres",
                                      password=self.password, dbname=dbname)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
        connection.close()
        return rows

    def stop(self):
        try:
            self.run([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres()
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def pg_server(postgres):
    server = Server(args=["--database-provider", "postgres", "--postgres-admin-url", postgres.admin_url]).start()
    yield server
    server.cleanup()


PG_CODE = '''
import os, psycopg2
def handler(event, context):
    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text)")
    cursor.execute("INSERT INTO notes (body) VALUES (%s)", (event["add"],))
    cursor.execute("SELECT body FROM notes ORDER BY id")
    rows = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT current_user, current_database()")
    who = cursor.fetchone()
    connection.close()
    return {"rows": rows, "user": who[0], "database": who[1]}
'''

PG_PROBE = '''
import os, socket, psycopg2
from urllib.parse import urlparse, parse_qs
def attempt(action):
    try:
        return ["ok", action()]
    except Exception as error:
        return ["error", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__]
def handler(event, context):
    url = os.environ["DATABASE_URL"]
    parts = urlparse(url)
    query = parse_qs(parts.query)
    def connect(dbname):
        return psycopg2.connect(host=query["host"][0], port=query["port"][0], user=parts.username,
                                password=parts.password, dbname=dbname)
    def run(sql):
        connection = connect(parts.path[1:])
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else None
        connection.close()
        return rows
    def tcp():
        socket.create_connection(("127.0.0.1", event["port"]), timeout=2).close()
        return "connected"
    return {
        "other_database": attempt(lambda: connect(event["other"]).close()),
        "postgres_database": attempt(lambda: connect("postgres").close()),
        "list_databases": attempt(lambda: run("SELECT datname FROM pg_database")),
        "list_roles": attempt(lambda: run("SELECT rolname FROM pg_roles")),
        "create_database": attempt(lambda: run("CREATE DATABASE sneaky")),
        "create_role": attempt(lambda: run("CREATE ROLE sneaky")),
        "tcp": attempt(tcp),
    }
'''


def test_postgres_provision_use_and_isolation(pg_server, postgres):
    server = pg_server
    a, b = make_project(server), make_project(server)
    status = provision(server, a)
    assert status["status"] == "ready" and status["has_database"] is True, status
    assert status["provider"] == "postgres"
    url = status["database_url"]
    assert url.startswith("postgresql://clowdy_%s:***@/clowdy_%s?" % (a, a)), url
    assert "host=/opt/postgresql" in url
    # A function with the network off (the default) creates, inserts and reads back
    fa = make_function(server, a, PG_CODE)
    out = output(invoke(server, fa, {"add": "first"}))
    assert out == {"rows": ["first"], "user": "clowdy_" + a, "database": "clowdy_" + a}
    assert output(invoke(server, fa, {"add": "second"}))["rows"] == ["first", "second"]
    # The server sees the database and its role
    assert postgres.query("SELECT count(*) FROM pg_database WHERE datname = 'clowdy_%s'" % a) == [(1,)]
    # Project B, with its own database, cannot reach A's or do more than use its own
    provision(server, b)
    probe = output(invoke(server, make_function(server, b, PG_PROBE),
                          {"other": "clowdy_" + a, "port": postgres.port}))
    assert probe["other_database"][0] == "error" and "permission denied" in probe["other_database"][1], probe
    assert probe["postgres_database"][0] == "error", probe
    for action in ("list_databases", "list_roles", "create_database", "create_role"):
        assert probe[action][0] == "error" and "permission denied" in probe[action][1], (action, probe)
    # The network is off: only the socket, and a tcp connect is refused at once rather than timing out
    assert probe["tcp"][0] == "error" and "timed out" not in probe["tcp"][1], probe
    assert postgres.query("SELECT count(*) FROM pg_database WHERE datname = 'sneaky'") == [(0,)]
    # Deprovision removes the database and the role; the function loses DATABASE_URL
    deprovision(server, a)
    assert postgres.query("SELECT count(*) FROM pg_database WHERE datname = 'clowdy_%s'" % a) == [(0,)]
    assert postgres.query("SELECT count(*) FROM pg_roles WHERE rolname = 'clowdy_%s'" % a) == [(0,)]
    result = invoke(server, fa, {"add": "third"})
    assert not result["success"] and "DATABASE_URL" in json.dumps(result)
    # Deleting project B drops its database too
    ok(server.delete("/api/projects/" + b))
    wait_for(lambda: postgres.query("SELECT count(*) FROM pg_roles WHERE rolname = 'clowdy_%s'" % b) == [(0,)],
             30, "project B's role stayed")
    assert postgres.query("SELECT count(*) FROM pg_database WHERE datname = 'clowdy_%s'" % b) == [(0,)]


def test_postgres_server_down_is_a_clear_error(make_server, postgres):
    server = make_server(args=["--database-provider", "postgres", "--postgres-admin-url",
                               "host=%s port=%d user=postgres password=wrong dbname=postgres" % (
                                   postgres.sockets, free_port())])
    project = make_project(server)
    status = provision(server, project)
    assert status["status"] == "failed" and status["has_database"] is False, status
    assert "Could not connect to the PostgreSQL server" in status["error"], status
    # Nothing stored says otherwise, and it may be tried again
    assert ok(server.get("/api/projects/" + project))["has_database"] is False
    r = server.delete("/api/projects/%s/database/deprovision" % project)
    assert r.status_code == 400
    assert provision(server, project)["status"] == "failed"
    # A wrong password is refused with PostgreSQL's reason
    other = make_server(args=["--database-provider", "postgres", "--postgres-admin-url",
                              "host=%s port=%d user=postgres password=wrong dbname=postgres" % (
                                  postgres.sockets, postgres.port)])
    project = make_project(other)
    status = provision(other, project)
    assert status["status"] == "failed" and "password authentication failed" in status["error"], status


# ---------------------------------------------------------------------------------------------------
# neon provider, against a fake Neon API on loopback

NEON_KEY = "neon-test-key"


class FakeNeon:
    """Neon's REST API v2 as documented, for the requests Clowdy makes: organisations, create a
    project (201, with operations and connection URIs), operation status, delete; errors as
    {"code", "message"}; 423 (running operations) and 429 (rate limit) on demand."""

    def __init__(self):
        self.projects = {}              # id -> {"name", "org_id"}
        self.requests = []              # (method, path)
        self.lock = threading.Lock()
        self.rate_limit_next = 0        # answer this many requests 429 first
        self.locked_deletes = 0         # answer this many DELETEs 423 first
        self.failing_deletes = 0        # answer this many DELETEs 500 (after any 423s) first
        self.instant = False            # the create's operations come finished (no polling)
        self.create_error = None        # (status, body) for POST /projects
        self.create_garbage = False     # POST /projects answers 201 with a body that is not JSON
        self.operation_status = "finished"
        self.held = set()               # names of projects whose operations stay "running"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, raw=None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                with fake.lock:
                    fake.requests.append((method, path))
                    if self.headers.get("Authorization") != "Bearer " + NEON_KEY:
                        return self.reply(401, {"code": "", "message": "authentication failed"})
                    if not path.startswith("/api/v2/"):
                        return self.reply(404, {"code": "", "message": "not found"})
                    path = path[len("/api/v2"):]
                    if fake.rate_limit_next > 0:
                        fake.rate_limit_next -= 1
                        return self.reply(429, {"code": "", "message": "rate limit exceeded"})
                    if method == "GET" and path == "/users/me/organizations":
                        return self.reply(200, {"organizations": [{"id": "org-fake-1", "name": "Fake"}]})
                    if method == "POST" and path == "/projects":
                        if fake.create_error:
                            return self.reply(*fake.create_error)
                        request = json.loads(body)
                        if fake.create_garbage:
                            return self.reply(201, None, raw=b"<html>oops</html>")
                        project_id = "fake-%s" % uuid.uuid4().hex[:10]
                        fake.projects[project_id] = {"name": request["project"]["name"],
                                                     "org_id": request["project"].get("org_id")}
                        return self.reply(201, {
                            "project": {"id": project_id, "name": request["project"]["name"]},
                            "connection_uris": [{"connection_uri":
                                "postgresql://neondb_owner:npg_secret@ep-%s.eu-central-1.aws.neon.tech/neondb"
                                "?sslmode=require" % project_id}],
                            "roles": [{"name": "neondb_owner"}], "databases": [{"name": "neondb"}],
                            "operations": [{"id": "op-1", "project_id": project_id, "action": "create_timeline",
                                            "status": "finished" if fake.instant else "running"}]})
                    parts = path.strip("/").split("/")
                    if len(parts) >= 2 and parts[0] == "projects":
                        if parts[1] not in fake.projects:
                            return self.reply(404, {"code": "", "message": "project not found"})
                        if method == "GET" and len(parts) == 4 and parts[2] == "operations":
                            held = fake.projects[parts[1]]["name"] in fake.held
                            return self.reply(200, {"operation": {"id": parts[3], "status":
                                                                  "running" if held else fake.operation_status}})
                        if method == "DELETE" and len(parts) == 2:
                            if fake.locked_deletes > 0:
                                fake.locked_deletes -= 1
                                return self.reply(423, {"code": "", "message": "project already has running operations"})
                            if fake.failing_deletes > 0:
                                fake.failing_deletes -= 1
                                return self.reply(500, {"code": "", "message": "internal server error"})
                            del fake.projects[parts[1]]
                            return self.reply(200, {"project": {"id": parts[1]}})
                    return self.reply(404, {"code": "", "message": "not found"})

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_DELETE(self):
                self.handle_any("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/api/v2" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, method, prefix):
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith("/api/v2" + prefix))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def neon():
    fake = FakeNeon()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def neon_server(neon):
    server = Server(args=["--database-provider", "neon", "--neon-api-url", neon.url],
                    env={"NEON_API_KEY": NEON_KEY}).start()
    yield server
    server.cleanup()


def test_neon_provision_retries_and_deprovision(neon_server, neon):
    server = neon_server
    project = make_project(server)
    neon.rate_limit_next = 2                    # the first two requests are rate limited
    status = provision(server, project, seconds=60)
    assert status["status"] == "ready" and status["has_database"] is True, status
    assert status["provider"] == "neon"
    neon_id = status["neon_project_id"]
    assert neon_id in neon.projects
    assert neon.projects[neon_id] == {"name": "clowdy-" + project, "org_id": "org-fake-1"}
    assert status["database_url"] == (
        "postgresql://neondb_owner:***@ep-%s.eu-central-1.aws.neon.tech/neondb?sslmode=require" % neon_id)
    assert neon.count("GET", "/projects/%s/operations/op-1" % neon_id) >= 1
    # Functions see the URL unmasked
    function = make_function(server, project, '''
import os
def handler(event, context):
    return os.environ["DATABASE_URL"]
''')
    assert output(invoke(server, function)) == (
        "postgresql://neondb_owner:npg_secret@ep-%s.eu-central-1.aws.neon.tech/neondb?sslmode=require" % neon_id)
    # Deprovision: the project is locked by a running operation at first (423), then goes
    neon.locked_deletes = 2
    deprovision(server, project, seconds=60)
    assert neon_id not in neon.projects
    assert neon.count("DELETE", "/projects/" + neon_id) == 3
    result = invoke(server, function)
    assert not result["success"] and "DATABASE_URL" in json.dumps(result)


def test_a_ready_database_is_seen_by_the_next_call_while_another_project_waits(neon_server, neon):
    """Read-your-writes across projects: the database actor makes one project's database after
    another and tells gateway when its whole round is done. While another project's Neon operation
    still runs, a project whose database already shows ready gives its functions DATABASE_URL."""
    server = neon_server
    first, waiting, blocker = (make_project(server) for _ in range(3))
    function = make_function(server, first, "import os\ndef handler(event, context):\n"
                                            "    return os.environ.get('DATABASE_URL', 'none')\n")
    assert output(invoke(server, function)) == "none"           # its context is cached now

    def made(project):
        with neon.lock:
            return any(p["name"] == "clowdy-" + project for p in neon.projects.values())

    def left_provisioning(project):
        status = database(server, project)
        return status if status["status"] != "provisioning" else None

    neon.held.update({"clowdy-" + blocker, "clowdy-" + waiting})
    try:
        # The blocker's job holds the round; the next two are then done in one round, in the order
        # they were asked: first (quick), then waiting (held)
        ok(server.post("/api/projects/%s/database/provision" % blocker))
        wait_for(lambda: made(blocker), 30, "the blocker's Neon project was never made")
        ok(server.post("/api/projects/%s/database/provision" % first))
        ok(server.post("/api/projects/%s/database/provision" % waiting))
        assert output(invoke(server, function)) == "none"       # still provisioning
        neon.held.discard("clowdy-" + blocker)
        status = wait_for(lambda: left_provisioning(first), 60, "the first project's database never came")
        assert status["status"] == "ready", status
        wait_for(lambda: made(waiting), 30, "the waiting project's Neon project was never made")
        assert database(server, waiting)["status"] == "provisioning"    # the round goes on
        url = output(invoke(server, function))
        assert url.startswith("postgresql://neondb_owner:npg_secret@ep-fake-"), url
        neon.held.clear()
        assert wait_for(lambda: left_provisioning(waiting), 60, "never provisioned")["status"] == "ready"
        assert output(invoke(server, function)) == url
    finally:
        # Nothing left for the module's next tests, which compare the fake's projects before and after
        neon.held.clear()
        for project in (first, waiting, blocker):
            ok(server.delete("/api/projects/" + project))
        wait_for(lambda: not any(made(project) for project in (first, waiting, blocker)), 60,
                 "a Neon project stayed after its project was deleted")


def test_neon_errors_are_shown_and_nothing_is_left(neon_server, neon):
    server = neon_server
    project = make_project(server)
    before = set(neon.projects)
    # Neon's error message reaches the user
    neon.create_error = (422, {"code": "", "message": "Projects limit exceeded"})
    status = provision(server, project, seconds=60)
    neon.create_error = None
    assert status["status"] == "failed" and status["has_database"] is False, status
    assert status["error"] == "Neon: Projects limit exceeded"
    # A 5xx without a body, then garbage: clear details too
    neon.create_error = (500, None)
    status = provision(server, project, seconds=60)
    neon.create_error = None
    assert status["status"] == "failed" and "500" in status["error"], status
    neon.create_garbage = True
    status = provision(server, project, seconds=60)
    neon.create_garbage = False
    assert status["status"] == "failed" and "not JSON" in status["error"], status
    # An operation that fails: the new Neon project is deleted again
    neon.operation_status = "failed"
    status = provision(server, project, seconds=60)
    neon.operation_status = "finished"
    assert status["status"] == "failed" and "failed" in status["error"], status
    assert set(neon.projects) == before
    # Rate limited for good: given up with Neon's message
    neon.rate_limit_next = 100
    status = provision(server, project, seconds=120)
    neon.rate_limit_next = 0
    assert status["status"] == "failed" and status["error"] == "Neon: rate limit exceeded", status
    assert set(neon.projects) == before
    # And then it works
    assert provision(server, project, seconds=60)["status"] == "ready"
    ok(server.delete("/api/projects/" + project))
    wait_for(lambda: set(neon.projects) == before, 60, "the Neon project stayed after the project was deleted")


def neon_ids(neon, project):
    """The fake's Neon projects made for a Clowdy project."""
    with neon.lock:
        return {key for key, value in neon.projects.items() if value["name"] == "clowdy-" + project}


def test_neon_a_deprovision_that_keeps_failing_says_why_a_new_provision_must_wait(neon_server, neon):
    """While a database's deletion keeps failing (it is retried with a growing wait), provisioning
    the project again is a 409 that gives the last failure, not a bare "try again shortly"."""
    server = neon_server
    project = make_project(server)
    status = provision(server, project, seconds=60)
    assert status["status"] == "ready", status
    neon.failing_deletes = 1000
    try:
        r = server.delete("/api/projects/%s/database/deprovision" % project)
        assert r.status_code == 200, r.text

        def refused_with_reason():
            r = server.post("/api/projects/%s/database/provision" % project)
            assert r.status_code == 409, r.text
            return "last attempt failed" in r.json()["detail"] and r.json()["detail"]
        said = wait_for(refused_with_reason, 30)
        assert "Neon" in said or "500" in said, said
    finally:
        neon.failing_deletes = 0
    wait_for(lambda: database(server, project)["status"] is None, 90, "never deprovisioned")
    assert not neon_ids(neon, project)


def test_neon_a_failed_provision_whose_delete_failed_is_deleted_later(neon_server, neon):
    """A provision that fails after Neon made the project deletes it; when that DELETE fails too,
    the Neon project is not forgotten: the user sees failed, and the delete is tried again until it
    works, even if the user provisions again and deletes the Clowdy project meanwhile."""
    server = neon_server
    project = make_project(server)
    before = set(neon.projects)
    neon.operation_status = "failed"
    neon.failing_deletes = 1000
    try:
        status = provision(server, project, seconds=60)
        assert status["status"] == "failed" and status["has_database"] is False, status
        assert "failed" in status["error"], status
        leaked = neon_ids(neon, project)
        assert len(leaked) == 1, leaked
        assert neon.count("DELETE", "/projects/" + next(iter(leaked))) >= 1     # it was tried at once
        # Provisioning again makes a second one (and does not lose the first); deleting the project
        # drops the failed row's successor, still with DELETE failing
        neon.operation_status = "finished"
        status = provision(server, project, seconds=60)
        assert status["status"] == "ready" and status["neon_project_id"] not in leaked, status
        assert neon_ids(neon, project) == leaked | {status["neon_project_id"]}
        ok(server.delete("/api/projects/" + project))
        wait_for(lambda: neon.count("DELETE", "/projects/" + status["neon_project_id"]) >= 1, 30,
                 "the deprovision was never tried")
        assert len(neon_ids(neon, project)) == 2
    finally:
        neon.operation_status = "finished"
        neon.failing_deletes = 0
    # DELETE works again: both go, the failed provision's one too
    wait_for(lambda: not neon_ids(neon, project), 90, lambda: "Neon projects stayed: %s" % neon_ids(neon, project))
    assert set(neon.projects) == before


def test_neon_a_provision_raced_by_a_delete_whose_delete_failed_is_deleted_later(neon_server, neon):
    """The project is deleted while Neon still makes its database: the new Neon project is deleted
    once made, and when that DELETE fails it is tried again later, not forgotten."""
    server = neon_server
    project = make_project(server)
    before = set(neon.projects)
    neon.held.add("clowdy-" + project)
    try:
        ok(server.post("/api/projects/%s/database/provision" % project))
        wait_for(lambda: neon_ids(neon, project), 30, "the Neon project was never made")
        made = next(iter(neon_ids(neon, project)))
        ok(server.delete("/api/projects/" + project))
        neon.failing_deletes = 1000
        neon.held.discard("clowdy-" + project)
        wait_for(lambda: neon.count("DELETE", "/projects/" + made) >= 1, 60, "the new project was never deleted")
        assert made in neon.projects
    finally:
        neon.held.discard("clowdy-" + project)
        neon.failing_deletes = 0
    wait_for(lambda: made not in neon.projects, 90, "the raced Neon project stayed")
    assert set(neon.projects) == before


def test_neon_stuck_deprovisions_do_not_delay_a_new_provision(make_server):
    """Deprovisions that keep failing (Neon answers DELETE with 500) are retried with backoff; however
    many there are, a project that asks for a database later gets it at once, and they go once
    Neon works again."""
    fake = FakeNeon()
    fake.instant = True
    try:
        server = make_server(args=["--database-provider", "neon", "--neon-api-url", fake.url],
                             env={"NEON_API_KEY": NEON_KEY})
        stuck = [make_project(server) for _ in range(40)]
        for project in stuck:
            ok(server.post("/api/projects/%s/database/provision" % project))
        for project in stuck:
            wait_for(lambda: database(server, project)["status"] == "ready", 60, "never provisioned")
        fake.failing_deletes = 10 ** 6
        for project in stuck:
            ok(server.delete("/api/projects/" + project))
        # Enough of them have been tried, and have failed, to fill a scan's 32 places
        wait_for(lambda: fake.count("DELETE", "/projects/") >= 32, 60, "the deprovisions never ran")
        assert len(fake.projects) == len(stuck)
        later = make_project(server)
        status = provision(server, later, seconds=30)
        assert status["status"] == "ready", status
        assert len(fake.projects) == len(stuck) + 1
        fake.failing_deletes = 0
        wait_for(lambda: len(fake.projects) == 1, 120,
                 lambda: "%d stuck Neon projects stayed" % (len(fake.projects) - 1))
    finally:
        fake.stop()


def test_neon_bad_key_is_a_clear_error(make_server, neon):
    server = make_server(args=["--database-provider", "neon", "--neon-api-url", neon.url,
                               "--neon-api-key", "wrong"])
    project = make_project(server)
    status = provision(server, project, seconds=60)
    assert status["status"] == "failed" and status["error"] == "Neon: authentication failed", status
