"""Quotas: what one user may keep through the API, so that no user can fill the server's disk or its
lists by creating things (--max-functions, --max-projects, --max-code-mb, --max-tokens per user;
--max-routes and --max-env-vars per project; --max-versions per function).

Two users with API tokens on a server in jwt mode. Past a quota the create is a 409 whose detail names
the limit and its flag, nothing of it is stored, and the user's other data is intact; the other user is
not affected; removing one makes room again. Creates racing each other never pass the limit together.
A function keeps its newest --max-versions and the one active before a save: a save past it removes the
oldest others.
"""
import concurrent.futures
import shutil
import sqlite3
import subprocess
import tempfile
import uuid

import pytest

from conftest import BINARY, Server, slow


def token_for(data_dir, user):
    made = subprocess.run([BINARY, "token", "create", "--user", user, "--name", "t", "--data-dir", data_dir],
                          capture_output=True, text=True, timeout=slow(30))
    assert made.returncode == 0, made.stderr
    return {"Authorization": "Bearer " + made.stdout.strip()}


@pytest.fixture(scope="module")
def quota():
    data_dir = tempfile.mkdtemp(prefix="clowdy-e2e-")
    users = {name: token_for(data_dir, name) for name in ("alice", "bob", "carol", "dave", "erin")}
    server = Server(data_dir=data_dir, args=[
        "--auth", "jwt", "--jwks-url", "http://127.0.0.1:9/jwks",
        "--max-functions", "3", "--max-projects", "2", "--max-versions", "3", "--max-code-mb", "2",
        "--max-routes", "2", "--max-env-vars", "2", "--max-tokens", "3"]).start()
    yield server, users
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def status(response, expected):
    assert response.status_code == expected, (response.status_code, response.text)
    return response.json()


def refused(response, flag):
    detail = status(response, 409)["detail"]
    assert isinstance(detail, str) and "--" + flag in detail, detail
    return detail


def new_function(server, user, code="def handler(e):\n    return e\n", **extra):
    body = dict(name="q_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return server.post("/api/functions", json=body, headers=user)


def test_functions_per_user(quota):
    server, users = quota
    alice, bob = users["alice"], users["bob"]
    made = [status(new_function(server, alice), 200)["id"] for _ in range(3)]
    detail = refused(new_function(server, alice), "max-functions")
    assert "3" in detail, detail
    assert sorted(f["id"] for f in status(server.get("/api/functions", headers=alice), 200)) == sorted(made)
    # Her functions still work; bob is not affected
    result = status(server.post("/api/invoke/" + made[0], json={"input": {"n": 1}}, headers=alice), 200)
    assert result["output"] == {"n": 1}, result
    status(new_function(server, bob), 200)
    # Deleting one makes room for one
    status(server.delete("/api/functions/" + made[0], headers=alice), 200)
    status(new_function(server, alice), 200)
    refused(new_function(server, alice), "max-functions")


def test_creates_at_once_never_pass_the_limit_together(quota):
    server, users = quota
    carol = users["carol"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = [r.status_code for r in pool.map(lambda _: new_function(server, carol), range(8))]
    assert sorted(codes) == [200] * 3 + [409] * 5, codes
    assert len(status(server.get("/api/functions", headers=carol), 200)) == 3


def test_versions_kept_per_function(quota):
    server, users = quota
    dave = users["dave"]
    function = status(new_function(server, dave, code="def handler(e):\n    return 1\n"), 200)
    fid = function["id"]
    for n in range(2, 6):
        saved = status(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return %d\n" % n},
                                  headers=dave), 200)
        assert saved["active_version"] == n, saved
    versions = status(server.get("/api/functions/%s/versions" % fid, headers=dave), 200)
    assert [v["version"] for v in versions] == [5, 4, 3], versions
    assert status(server.post("/api/invoke/" + fid, json={"input": {}}, headers=dave), 200)["output"] == 5
    # A removed version is gone for reads and rollbacks; a kept one can be rolled back to
    status(server.get("/api/functions/%s/versions/2" % fid, headers=dave), 404)
    status(server.put("/api/functions/%s/versions/2" % fid, headers=dave), 404)
    status(server.put("/api/functions/%s/versions/3" % fid, headers=dave), 200)
    assert status(server.post("/api/invoke/" + fid, json={"input": {}}, headers=dave), 200)["output"] == 3
    # A save after the rollback is numbered past every version and keeps the newest three, and the
    # version that was active until then (the one rolled back to), to go back to again
    status(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return 6\n"}, headers=dave), 200)
    versions = status(server.get("/api/functions/%s/versions" % fid, headers=dave), 200)
    assert [v["version"] for v in versions] == [6, 5, 4, 3], versions
    status(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return 7\n"}, headers=dave), 200)
    versions = status(server.get("/api/functions/%s/versions" % fid, headers=dave), 200)
    assert [v["version"] for v in versions] == [7, 6, 5], versions


def test_code_per_user_counts_every_kept_version(quota):
    server, users = quota
    erin = users["erin"]
    big = "def handler(e):\n    return 1\n" + "#" * (900 * 1024) + "\n"
    first = status(new_function(server, erin, code=big), 200)["id"]
    second = status(new_function(server, erin, code=big.replace("1", "2", 1)), 200)["id"]
    # A third 0.9 MB would pass 2 MB: refused, nothing stored
    refused(new_function(server, erin, code=big.replace("1", "3", 1)), "max-code-mb")
    assert len(status(server.get("/api/functions", headers=erin), 200)) == 2
    # So is a bigger new version: the function keeps its version and code
    refused(server.put("/api/functions/" + second, json={"code": big.replace("1", "4", 1) + "# more\n" * 10000},
                       headers=erin), "max-code-mb")
    kept = status(server.get("/api/functions/" + second, headers=erin), 200)
    assert kept["active_version"] == 1 and kept["code"] == big.replace("1", "2", 1)
    assert [v["version"] for v in status(server.get("/api/functions/%s/versions" % second, headers=erin), 200)] == [1]
    # Small code still fits, and deleting a function makes room
    status(new_function(server, erin), 200)
    status(server.delete("/api/functions/" + first, headers=erin), 200)
    status(server.put("/api/functions/" + second, json={"code": big.replace("1", "4", 1) + "# more\n" * 10000},
                      headers=erin), 200)


def test_projects_routes_env_vars_and_tokens(quota):
    server, users = quota
    bob, carol = users["bob"], users["carol"]
    projects = [status(server.post("/api/projects", json={"name": "p%d" % n}, headers=bob), 200)["id"]
                for n in range(2)]
    refused(server.post("/api/projects", json={"name": "p2"}, headers=bob), "max-projects")
    assert len(status(server.get("/api/projects", headers=bob), 200)) == 2
    status(server.post("/api/projects", json={"name": "p0"}, headers=carol), 200)       # her own count
    project = projects[0]
    function = status(new_function(server, bob, project_id=project), 200)["id"]
    for path in ("/a", "/b"):
        status(server.post("/api/projects/%s/routes" % project,
                           json={"function_id": function, "method": "GET", "path": path}, headers=bob), 200)
    refused(server.post("/api/projects/%s/routes" % project,
                        json={"function_id": function, "method": "GET", "path": "/c"}, headers=bob), "max-routes")
    assert sorted(r["path"] for r in status(server.get("/api/projects/%s/routes" % project, headers=bob), 200)) \
        == ["/a", "/b"]
    for key in ("A", "B"):
        status(server.post("/api/projects/%s/env" % project, json={"key": key, "value": "v"}, headers=bob), 200)
    refused(server.post("/api/projects/%s/env" % project, json={"key": "C", "value": "v"}, headers=bob),
            "max-env-vars")
    # Changing an existing key is no new env var
    status(server.post("/api/projects/%s/env" % project, json={"key": "A", "value": "w"}, headers=bob), 200)
    assert sorted(e["key"] for e in status(server.get("/api/projects/%s/env" % project, headers=bob), 200)) \
        == ["A", "B"]
    # Tokens: bob has the one the CLI made; two more through the API, then no more
    made = [status(server.post("/api/tokens", json={"name": "t%d" % n}, headers=bob), 200) for n in range(2)]
    refused(server.post("/api/tokens", json={"name": "t3"}, headers=bob), "max-tokens")
    assert len(status(server.get("/api/tokens", headers=bob), 200)) == 3
    status(server.delete("/api/tokens/" + made[0]["id"], headers=bob), 200)
    fresh = status(server.post("/api/tokens", json={"name": "t4"}, headers=bob), 200)
    assert status(server.get("/api/functions", headers={"Authorization": "Bearer " + fresh["token"]}), 200)


def test_revoked_tokens_do_not_pile_up(quota):
    """A revoked token still says it was revoked, but a user who makes and revokes tokens in a loop keeps
    at most the newest --max-tokens revoked ones."""
    server, users = quota
    alice = users["alice"]
    revoked = []
    for n in range(8):
        made = status(server.post("/api/tokens", json={"name": "loop%d" % n}, headers=alice), 200)
        status(server.delete("/api/tokens/" + made["id"], headers=alice), 200)
        revoked.append(made["token"])
    db = sqlite3.connect("file:%s/clowdy.db?mode=ro" % server.data_dir, uri=True)
    try:
        (kept,), = db.execute("SELECT count (*) FROM api_tokens WHERE user_id = 'alice'").fetchall()
    finally:
        db.close()
    # the CLI's token, the three newest revoked when the last was made, and the last
    assert kept == 1 + 3 + 1, kept
    newest = server.get("/api/functions", headers={"Authorization": "Bearer " + revoked[-1]})
    assert newest.status_code == 401 and "revoked" in newest.text.lower(), newest.text
    # The oldest revoked token's row is gone: it is an unknown token now, no longer "revoked"
    oldest = server.get("/api/functions", headers={"Authorization": "Bearer " + revoked[0]})
    assert oldest.status_code == 401 and "revoked" not in oldest.text.lower(), oldest.text
