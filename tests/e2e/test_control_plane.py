"""Control-plane API end to end: every endpoint of ../shared/API.md that core/api.c serves, over real
HTTP against build/clowdy, error cases included (404, 405, 409, 422 shapes, 400 malformed JSON, 501 for
the endpoints whose issues have not landed).

The module shares one server; tests create their own objects and never assume an empty store, except
the ones that start their own server with make_server.
"""
import json
import re
import uuid

import pytest
import requests

from conftest import ok, records, slow

ID = re.compile(r"^[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

PROJECT_FIELDS = {"id", "name", "slug", "description", "status", "function_count", "requirements_txt",
                  "has_database", "created_at", "updated_at"}
FUNCTION_FIELDS = {"id", "name", "description", "code", "runtime", "status", "network_enabled",
                   "timeout_seconds", "memory_mb", "active_version", "project_id", "created_at", "updated_at"}
ENV_FIELDS = {"id", "key", "value", "is_secret", "created_at", "updated_at"}
ROUTE_FIELDS = {"id", "project_id", "function_id", "method", "path", "description", "created_at", "updated_at"}
CODE = "def handler(event):\n    return {'ok': True}\n"


def unique(prefix="p"):
    return "%s %s" % (prefix, uuid.uuid4().hex[:8])


def detail(response, status):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


def invalid(response, loc):
    """Assert a 422 whose errors include one at loc; return the list."""
    errors = detail(response, 422)
    assert isinstance(errors, list) and errors
    for error in errors:
        assert set(error) >= {"loc", "msg", "type"}
        assert isinstance(error["msg"], str) and isinstance(error["type"], str)
    assert any(error["loc"] == loc for error in errors), errors
    return errors


def make_project(server, name=None, **extra):
    return ok(server.post("/api/projects", json=dict(name=name or unique(), **extra)))


def make_function(server, project_id=None, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:6], code=CODE)
    if project_id:
        body["project_id"] = project_id
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def post_raw(server, path, data):
    return requests.post(server.url + path, data=data, headers={"Content-Type": "application/json"},
                         timeout=slow(30))


# ---------------------------------------------------------------------------------------------------
# Health, routing, not-yet endpoints

def test_health(server):
    assert ok(server.get("/api/health")) == {"status": "ok"}


def test_unknown_api_path_is_json_404(server):
    response = server.get("/api/nope")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_wrong_method_is_405(server):
    assert detail(server.delete("/api/projects"), 405)


def test_stats_are_zero_on_a_new_server(make_server):
    fresh = make_server()
    stats = ok(fresh.get("/api/stats"))
    assert stats["total_functions"] == 0
    assert stats["total_invocations"] == 0
    assert stats["success_rate"] == 0
    assert stats["avg_duration_ms"] == 0
    make_function(fresh)
    stats = ok(fresh.get("/api/stats"))
    assert stats["total_functions"] == 1 and stats["total_invocations"] == 0
    assert all(isinstance(stats[k], int) for k in ("success_rate", "avg_duration_ms"))


# ---------------------------------------------------------------------------------------------------
# Request bodies

def test_malformed_json_is_400(server):
    for data in (b"{", b"{\"name\": }", b"not json", b"{} trailing", b"{\"name\": \"\xff\"}"):
        assert detail(post_raw(server, "/api/projects", data), 400) == "Request body is not valid JSON"


def test_non_object_body_is_422(server):
    for data in (b"[]", b"\"text\"", b"42", b"null"):
        invalid(post_raw(server, "/api/projects", data), ["body"])


def test_missing_body_is_422(server):
    invalid(post_raw(server, "/api/projects", b""), ["body"])


def test_unknown_fields_are_ignored(server):
    project = ok(server.post("/api/projects", json={"name": unique(), "color": "red", "id": "x"}))
    assert "color" not in project and ID.match(project["id"])


# ---------------------------------------------------------------------------------------------------
# Projects

def test_project_create_get_list(server):
    name = unique("Proj")
    project = make_project(server, name="  %s  " % name, description="about")
    assert set(project) >= PROJECT_FIELDS
    assert ID.match(project["id"]) and TIME.match(project["created_at"]) and TIME.match(project["updated_at"])
    assert project["name"] == name
    assert project["description"] == "about"
    assert project["status"] == "active"
    assert project["function_count"] == 0
    assert project["has_database"] is False
    assert project["requirements_txt"] == ""
    assert ok(server.get("/api/projects/" + project["id"])) == project
    listed = ok(server.get("/api/projects"))
    assert listed[0]["id"] == project["id"]     # newest first
    assert any(p == project for p in listed)


def test_project_list_newest_first(server):
    first = make_project(server)
    second = make_project(server)
    ids = [p["id"] for p in ok(server.get("/api/projects"))]
    assert ids.index(second["id"]) < ids.index(first["id"])


def test_project_validation(server):
    invalid(server.post("/api/projects", json={}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": "   "}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": ""}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": None}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": 12}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": "x" * 101}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": "a\nb"}), ["body", "name"])
    invalid(server.post("/api/projects", json={"name": "ok", "description": "d" * 1001}),
            ["body", "description"])
    assert ok(server.post("/api/projects", json={"name": "é" * 100}))["name"] == "é" * 100
    assert ok(server.post("/api/projects", json={"name": "ok", "description": "d" * 1000}))


def test_slugs(server):
    base = "Slug Test " + uuid.uuid4().hex[:6]
    expected = base.lower().replace(" ", "-")
    first = make_project(server, name=base)
    assert first["slug"] == expected
    second = make_project(server, name=base.upper().replace(" ", "_"))
    assert second["slug"] == expected + "-1"
    third = make_project(server, name=base + "!!!")
    assert third["slug"] == expected + "-2"
    assert make_project(server, name="  --Héllo,   World--  " + base)["slug"] == "hllo-world-" + expected
    # renamed to a name that gives the same slug: keeps it
    renamed = ok(server.put("/api/projects/" + third["id"], json={"name": base.upper()}))
    assert renamed["slug"] == expected + "-2"
    # renamed to something else: a new slug
    other = "Other " + uuid.uuid4().hex[:6]
    renamed = ok(server.put("/api/projects/" + third["id"], json={"name": other}))
    assert renamed["slug"] == other.lower().replace(" ", "-")
    # its old slug is free again
    assert make_project(server, name=base)["slug"] == expected + "-2"


def test_project_update_partial(server):
    project = make_project(server, description="before")
    updated = ok(server.put("/api/projects/" + project["id"], json={"description": "after"}))
    assert updated["description"] == "after" and updated["name"] == project["name"]
    assert updated["updated_at"] >= project["updated_at"]
    updated = ok(server.put("/api/projects/" + project["id"], json={"name": "Renamed " + project["id"]}))
    assert updated["description"] == "after"
    invalid(server.put("/api/projects/" + project["id"], json={"name": ""}), ["body", "name"])


def test_project_not_found(server):
    for pid in ("000000000000", "nonsense", "ABCDEF123456"):
        assert detail(server.get("/api/projects/" + pid), 404) == "Project not found"
        assert detail(server.put("/api/projects/" + pid, json={"name": "x"}), 404) == "Project not found"
        assert detail(server.delete("/api/projects/" + pid), 404) == "Project not found"
        assert detail(server.get("/api/projects/%s/functions" % pid), 404) == "Project not found"
        assert detail(server.get("/api/projects/%s/env" % pid), 404) == "Project not found"
        assert detail(server.get("/api/projects/%s/routes" % pid), 404) == "Project not found"


def test_project_delete_cascades(server):
    project = make_project(server)
    pid = project["id"]
    function = make_function(server, pid)
    ok(server.post("/api/projects/%s/env" % pid, json={"key": "K", "value": "v"}))
    ok(server.post("/api/projects/%s/routes" % pid,
                   json={"function_id": function["id"], "method": "GET", "path": "/x"}))
    assert ok(server.get("/api/projects/" + pid))["function_count"] == 1
    assert ok(server.delete("/api/projects/" + pid)) == {"detail": "Project deleted"}
    assert detail(server.get("/api/projects/" + pid), 404) == "Project not found"
    assert detail(server.get("/api/functions/" + function["id"]), 404) == "Function not found"
    assert detail(server.get("/api/functions/%s/versions" % function["id"]), 404) == "Function not found"
    assert detail(server.delete("/api/projects/" + pid), 404) == "Project not found"
    assert all(f["id"] != function["id"] for f in ok(server.get("/api/functions")))


# ---------------------------------------------------------------------------------------------------
# Functions and versions

def test_function_create_defaults(server):
    project = make_project(server)
    function = ok(server.post("/api/functions", json={"name": "hello", "code": CODE,
                                                      "project_id": project["id"]}))
    assert set(function) >= FUNCTION_FIELDS
    assert ID.match(function["id"])
    assert function["name"] == "hello"
    assert function["code"] == CODE
    assert function["description"] == ""
    assert function["runtime"] == "python"
    assert function["status"] == "active"
    assert function["network_enabled"] is False
    assert function["timeout_seconds"] == 30
    assert function["memory_mb"] == 128
    assert function["active_version"] == 1
    assert function["project_id"] == project["id"]
    assert ok(server.get("/api/functions/" + function["id"])) == function
    assert ok(server.get("/api/projects/%s/functions" % project["id"])) == [function]
    assert ok(server.get("/api/projects/" + project["id"]))["function_count"] == 1
    assert ok(server.get("/api/functions"))[0]["id"] == function["id"]


def test_function_create_all_fields(server):
    function = ok(server.post("/api/functions", json={
        "name": "My Function 2", "code": CODE, "description": "does things", "runtime": "python",
        "project_id": None, "network_enabled": True, "timeout_seconds": 900, "memory_mb": 2048}))
    assert function["project_id"] is None
    assert function["network_enabled"] is True
    assert (function["timeout_seconds"], function["memory_mb"]) == (900, 2048)
    assert function["description"] == "does things"


@pytest.mark.parametrize("field,value", [
    ("name", None), ("name", ""), ("name", "  "), ("name", 5), ("name", "n" * 101),
    ("code", None), ("code", ""), ("code", "   \n"), ("code", 123), ("code", ["x"]),
    ("code", "x" * (1024 * 1024 + 1)),
    ("description", "d" * 1001), ("description", 3),
    ("memory_mb", 63), ("memory_mb", 2049), ("memory_mb", "128"), ("memory_mb", 128.5), ("memory_mb", True),
    ("timeout_seconds", 0), ("timeout_seconds", 901), ("timeout_seconds", "30"),
    ("network_enabled", "yes"), ("network_enabled", 1),
    ("runtime", "node"), ("runtime", 3),
    ("project_id", 7),
])
def test_function_validation(server, field, value):
    body = {"name": "f", "code": CODE}
    if value is None:
        body.pop(field)
    else:
        body[field] = value
    invalid(server.post("/api/functions", json=body), ["body", field])


def test_function_validation_reports_every_field(server):
    errors = invalid(server.post("/api/functions", json={"memory_mb": 1}), ["body", "name"])
    locs = [e["loc"] for e in errors]
    assert ["body", "code"] in locs and ["body", "memory_mb"] in locs


def test_function_project_must_exist(server):
    response = server.post("/api/functions", json={"name": "f", "code": CODE, "project_id": "000000000000"})
    assert detail(response, 404) == "Project not found"


def test_function_update_partial(server):
    function = make_function(server)
    fid = function["id"]
    updated = ok(server.put("/api/functions/" + fid, json={"memory_mb": 512, "description": "d"}))
    assert updated["memory_mb"] == 512 and updated["description"] == "d"
    assert updated["active_version"] == 1 and updated["code"] == CODE and updated["name"] == function["name"]
    updated = ok(server.put("/api/functions/" + fid, json={"network_enabled": True, "timeout_seconds": 5,
                                                           "name": "renamed"}))
    assert updated["network_enabled"] is True and updated["timeout_seconds"] == 5
    assert updated["name"] == "renamed" and updated["memory_mb"] == 512
    invalid(server.put("/api/functions/" + fid, json={"memory_mb": 4096}), ["body", "memory_mb"])
    invalid(server.put("/api/functions/" + fid, json={"code": ""}), ["body", "code"])
    assert ok(server.get("/api/functions/" + fid))["memory_mb"] == 512


def test_function_status_active_or_disabled(server):
    function = make_function(server)
    fid = function["id"]
    assert function["status"] == "active"
    assert ok(server.put("/api/functions/" + fid, json={"status": "disabled"}))["status"] == "disabled"
    for bad in ("paused", "", 1, "x" * 100):
        errors = invalid(server.put("/api/functions/" + fid, json={"status": bad, "name": "kept?"}),
                         ["body", "status"])
        assert errors[0]["type"] in ("literal_error", "string_type", "string_too_long")
    stored = ok(server.get("/api/functions/" + fid))
    assert stored["status"] == "disabled" and stored["name"] == function["name"]
    # disabling changes nothing else: versions, code and limits stay
    assert stored["active_version"] == 1 and stored["code"] == CODE
    assert ok(server.put("/api/functions/" + fid, json={"status": "active"}))["status"] == "active"


def test_versions_and_rollback(server):
    function = make_function(server)
    fid = function["id"]
    v2 = ok(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return 2\n"}))
    assert v2["active_version"] == 2 and "return 2" in v2["code"]
    # the same code again makes no new version
    same = ok(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return 2\n"}))
    assert same["active_version"] == 2
    # rollback
    back = ok(server.put("/api/functions/%s/versions/1" % fid))
    assert back["active_version"] == 1 and back["code"] == CODE
    assert ok(server.get("/api/functions/" + fid))["active_version"] == 1
    # a save after a rollback gets max + 1, never a collision
    v3 = ok(server.put("/api/functions/" + fid, json={"code": "def handler(e):\n    return 3\n"}))
    assert v3["active_version"] == 3
    versions = ok(server.get("/api/functions/%s/versions" % fid))
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert set(versions[0]) >= {"function_id", "version", "code", "created_at", "updated_at"}
    assert versions[2]["code"] == CODE and versions[0]["function_id"] == fid
    assert detail(server.put("/api/functions/%s/versions/9" % fid), 404) == "Version not found"
    assert detail(server.put("/api/functions/%s/versions/0" % fid), 404) == "Version not found"
    invalid(server.put("/api/functions/%s/versions/abc" % fid), ["path", "version"])


def test_function_not_found(server):
    for fid in ("000000000000", "nonsense"):
        assert detail(server.get("/api/functions/" + fid), 404) == "Function not found"
        assert detail(server.put("/api/functions/" + fid, json={"name": "x"}), 404) == "Function not found"
        assert detail(server.delete("/api/functions/" + fid), 404) == "Function not found"
        assert detail(server.get("/api/functions/%s/versions" % fid), 404) == "Function not found"
        assert detail(server.put("/api/functions/%s/versions/1" % fid), 404) == "Function not found"
        assert detail(server.get("/api/functions/%s/invocations" % fid), 404) == "Function not found"


def test_function_delete(server):
    project = make_project(server)
    function = make_function(server, project["id"])
    ok(server.post("/api/projects/%s/routes" % project["id"],
                   json={"function_id": function["id"], "method": "GET", "path": "/f"}))
    assert ok(server.delete("/api/functions/" + function["id"])) == {"detail": "Function deleted"}
    assert detail(server.get("/api/functions/" + function["id"]), 404) == "Function not found"
    assert ok(server.get("/api/projects/%s/routes" % project["id"])) == []
    assert ok(server.get("/api/projects/" + project["id"]))["function_count"] == 0


def test_invocations_list(server):
    function = make_function(server)
    path = "/api/functions/%s/invocations" % function["id"]
    assert ok(server.get(path)) == []
    assert ok(server.get(path + "?limit=500")) == []
    assert ok(server.get(path + "?limit=1")) == []
    for bad in ("0", "501", "abc", "", "-1", "1.5"):
        invalid(server.get(path + "?limit=" + bad), ["query", "limit"])


# ---------------------------------------------------------------------------------------------------
# Env vars

def test_env_vars(server):
    project = make_project(server)
    path = "/api/projects/%s/env" % project["id"]
    assert ok(server.get(path)) == []
    secret = ok(server.post(path, json={"key": "ZED_TOKEN", "value": "s3cret"}))
    assert set(secret) >= ENV_FIELDS
    assert secret["key"] == "ZED_TOKEN" and secret["value"] == "********" and secret["is_secret"] is True
    plain = ok(server.post(path, json={"key": "A_MODE", "value": "debug", "is_secret": False}))
    assert plain["value"] == "debug" and plain["is_secret"] is False
    listed = ok(server.get(path))
    assert [e["key"] for e in listed] == ["A_MODE", "ZED_TOKEN"]     # sorted by key
    assert listed[1]["value"] == "********"
    # upsert keeps the row
    again = ok(server.post(path, json={"key": "ZED_TOKEN", "value": "visible", "is_secret": False}))
    assert again["id"] == secret["id"] and again["value"] == "visible"
    assert len(ok(server.get(path))) == 2
    ok(server.post(path, json={"key": "EMPTY", "value": ""}))
    ok(server.post(path, json={"key": "BIG", "value": "v" * 32768}))
    assert ok(server.delete(path + "/A_MODE")) == {"detail": "Env var 'A_MODE' deleted"}
    assert detail(server.delete(path + "/A_MODE"), 404) == "Env var 'A_MODE' not found"
    assert [e["key"] for e in ok(server.get(path))] == ["BIG", "EMPTY", "ZED_TOKEN"]
    # A key that is not UTF-8 once decoded names nothing, and the 404 is still JSON
    gone = server.delete(path + "/%C3%28")
    assert gone.status_code == 404 and json.loads(gone.content)["detail"]
    assert len(ok(server.get(path))) == 3


@pytest.mark.parametrize("body,field", [
    ({"value": "v"}, "key"),
    ({"key": "1ABC", "value": "v"}, "key"),
    ({"key": "A-B", "value": "v"}, "key"),
    ({"key": "", "value": "v"}, "key"),
    ({"key": "K" * 129, "value": "v"}, "key"),
    ({"key": "CLOWDY_X", "value": "v"}, "key"),
    ({"key": "clowdy_x", "value": "v"}, "key"),
    ({"key": 5, "value": "v"}, "key"),
    ({"key": "K"}, "value"),
    ({"key": "K", "value": 5}, "value"),
    ({"key": "K", "value": "v" * 32769}, "value"),
    ({"key": "K", "value": "v", "is_secret": "no"}, "is_secret"),
])
def test_env_validation(server, body, field):
    project = make_project(server)
    invalid(server.post("/api/projects/%s/env" % project["id"], json=body), ["body", field])


# ---------------------------------------------------------------------------------------------------
# Routes

def test_routes(server):
    project = make_project(server)
    pid = project["id"]
    function = make_function(server, pid)
    other = make_function(server, pid)
    path = "/api/projects/%s/routes" % pid
    assert ok(server.get(path)) == []
    route = ok(server.post(path, json={"function_id": function["id"], "method": "post",
                                       "path": "/users/:id", "description": "create"}))
    assert set(route) >= ROUTE_FIELDS
    assert route["method"] == "POST" and route["path"] == "/users/:id"
    assert route["project_id"] == pid and route["function_id"] == function["id"]
    assert route["description"] == "create"
    assert detail(server.post(path, json={"function_id": function["id"], "method": "POST",
                                          "path": "/users/:id"}), 409)
    # same shape, other param name: the same route to the gateway
    assert detail(server.post(path, json={"function_id": function["id"], "method": "POST",
                                          "path": "/users/:uid"}), 409)
    ok(server.post(path, json={"function_id": other["id"], "method": "GET", "path": "/users/:id"}))
    ok(server.post(path, json={"function_id": other["id"], "method": "ANY", "path": "/"}))
    ok(server.post(path, json={"function_id": other["id"], "method": "DELETE", "path": "/files/*rest"}))
    trailing = ok(server.post(path, json={"function_id": other["id"], "method": "GET", "path": "/t/"}))
    assert trailing["path"] == "/t"
    listed = ok(server.get(path))
    assert [(r["path"], r["method"]) for r in listed] == sorted((r["path"], r["method"]) for r in listed)
    assert len(listed) == 5
    # update
    one = "%s/%s" % (path, route["id"])
    updated = ok(server.put(one, json={"path": "/people/:id", "function_id": other["id"]}))
    assert updated["path"] == "/people/:id" and updated["method"] == "POST"
    assert updated["function_id"] == other["id"] and updated["description"] == "create"
    assert detail(server.put(one, json={"method": "ANY", "path": "/"}), 409)
    invalid(server.put(one, json={"path": "nope"}), ["body", "path"])
    assert ok(server.delete(one)) == {"detail": "Route deleted"}
    assert detail(server.delete(one), 404) == "Route not found"
    assert detail(server.put(one, json={}), 404) == "Route not found"


@pytest.mark.parametrize("body,field", [
    ({"method": "GET", "path": "/x"}, "function_id"),
    ({"method": "FETCH", "path": "/x"}, "method"),
    ({"path": "/x"}, "method"),
    ({"method": "GET"}, "path"),
    ({"method": "GET", "path": "x"}, "path"),
    ({"method": "GET", "path": "/a//b"}, "path"),
    ({"method": "GET", "path": "/:"}, "path"),
    ({"method": "GET", "path": "/*rest/more"}, "path"),
    ({"method": "GET", "path": 5}, "path"),
])
def test_route_validation(server, body, field):
    project = make_project(server)
    function = make_function(server, project["id"])
    body = dict(body)
    if field != "function_id":
        body["function_id"] = function["id"]
    invalid(server.post("/api/projects/%s/routes" % project["id"], json=body), ["body", field])


def test_route_function_must_be_in_project(server):
    project = make_project(server)
    elsewhere = make_function(server, make_project(server)["id"])
    loose = make_function(server)
    path = "/api/projects/%s/routes" % project["id"]
    for function in (elsewhere, loose):
        invalid(server.post(path, json={"function_id": function["id"], "method": "GET", "path": "/x"}),
                ["body", "function_id"])
    assert detail(server.post(path, json={"function_id": "000000000000", "method": "GET", "path": "/x"}),
                  404) == "Function not found"


def test_invocations_are_listed_newest_first_with_stats(make_server):
    fresh = make_server()
    function = make_function(fresh, code="def handler(event):\n    print('hi')\n    return event['n']\n")
    response = fresh.post("/api/invoke/" + function["id"], json={"input": {"n": 1}})
    if response.status_code != 200 or not response.json().get("success"):
        pytest.skip("functions cannot run here: %s" % response.text)
    ok(fresh.post("/api/invoke/" + function["id"], json={"input": {"n": 2}}))
    ok(fresh.post("/api/invoke/" + function["id"], json={"input": {}}))    # KeyError: an error
    path = "/api/functions/%s/invocations" % function["id"]
    rows = records(fresh, function["id"], 3, seconds=10)     # the recorder writes in batches
    assert len(rows) == 3
    assert set(rows[0]) >= {"id", "function_id", "input", "output", "status", "duration_ms", "source",
                            "http_method", "http_path", "created_at", "cold_start", "version", "logs"}
    assert [r["status"] for r in rows] == ["error", "success", "success"]       # newest first
    assert rows[2]["cold_start"] is True and rows[1]["cold_start"] is False
    assert json.loads(rows[1]["input"]) == {"n": 2} and json.loads(rows[1]["output"]) == 2
    assert rows[1]["source"] == "direct" and rows[1]["version"] == 1
    assert isinstance(rows[1]["duration_ms"], int)
    assert "hi" in rows[1]["logs"]
    assert len(ok(fresh.get(path + "?limit=2"))) == 2
    stats = ok(fresh.get("/api/stats"))
    assert stats["total_functions"] == 1 and stats["total_invocations"] == 3
    assert stats["success_rate"] == 67
    assert isinstance(stats["avg_duration_ms"], int)
