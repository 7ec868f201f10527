"""The API gateway end to end (issue 4): projects' routes answering real HTTP clients at
/api/gateway/:slug/..., through the real build/clowdy and real sandboxes.

Covers README.md's project example, matching (params, the final wildcard with zero, one or many
segments, exact method before ANY, the more specific route first whatever the creation order,
trailing slashes, case, percent encoding, raw UTF-8), the event the function gets (method, path,
params, query with the last value winning, lower-cased headers without the private ones, JSON /
text / binary bodies), the result mapping (statusCode, headers, string and JSON bodies, base64
responses such as a PNG, invalid results), the error answers (404 project, 404 route, 429, 502,
504, what a deleted function leaves), env vars at run time, route, code and project changes taking
effect at once, the invocation records (source "gateway") and stats, and curl as the client.

The module shares one server and one "shop" project built by the shop fixture; tests that change
routes or env vars make their own project.
"""
import base64
import concurrent.futures
import json
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests

from conftest import ok, record_of, slow, wait_for

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


# ---------------------------------------------------------------------------------------------------
# Helpers

def detail(response, status):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


def make_project(server):
    return ok(server.post("/api/projects", json={"name": "gw " + uuid.uuid4().hex[:10]}))


def make_function(server, project, code, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code, project_id=project["id"])
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def tagged(server, project, tag):
    """A function that answers {"tag": tag, "event": event}."""
    code = "TAG = %r\ndef handler(event):\n    return {'tag': TAG, 'event': event}\n" % tag
    return make_function(server, project, code)


def add_route(server, project, function, method, path):
    return ok(server.post("/api/projects/%s/routes" % project["id"],
                          json={"function_id": function["id"], "method": method, "path": path}))


def gateway(server, project, method, path, **kw):
    """One HTTP call to the project's API; path is inside the project ("/users/1")."""
    return requests.request(method, server.url + "/api/gateway/" + project["slug"] + path,
                            timeout=kw.pop("timeout", slow(30)), **kw)


def hit(server, project, method, path, **kw):
    """Call a tagged function's route; return (tag, event)."""
    response = gateway(server, project, method, path, **kw)
    data = ok(response)
    return data["tag"], data["event"]


@pytest.fixture(scope="module")
def shop(server):
    """The issue's example API plus routes that compete with it."""
    project = make_project(server)
    fns = {tag: tagged(server, project, tag) for tag in
           ["get_user", "create_user", "files", "me", "any_user", "readme"]}
    add_route(server, project, fns["get_user"], "GET", "/users/:id")
    add_route(server, project, fns["create_user"], "POST", "/users")
    add_route(server, project, fns["files"], "ANY", "/files/*path")
    # Created after the routes they must beat
    add_route(server, project, fns["me"], "GET", "/users/me")
    add_route(server, project, fns["any_user"], "ANY", "/users/:id")
    add_route(server, project, fns["readme"], "GET", "/files/readme")
    project["fns"] = fns
    return project


def test_readme_project_example(server):
    """README.md's project example: a route, an env var, a call through the gateway."""
    name = "Shop API " + uuid.uuid4().hex[:6]
    project = ok(server.post("/api/projects", json={"name": name}))
    assert project["slug"] == name.lower().replace(" ", "-")
    code = ("import os\ndef handler(event, context):\n    return {\"statusCode\": 200, \"body\": "
            "{\"id\": event[\"params\"][\"id\"], \"region\": os.environ[\"REGION\"]}}\n")
    function = ok(server.post("/api/functions", json={"name": "user", "project_id": project["id"], "code": code}))
    add_route(server, project, function, "GET", "/users/:id")
    ok(server.post("/api/projects/%s/env" % project["id"], json={"key": "REGION", "value": "eu-1"}))
    out = subprocess.run(["curl", "-sS", "--max-time", "30",
                          server.url.replace("http://", "") + "/api/gateway/%s/users/42" % project["slug"]],
                         capture_output=True, check=True)
    assert json.loads(out.stdout) == {"id": "42", "region": "eu-1"}


# ---------------------------------------------------------------------------------------------------
# Matching

def test_param(server, shop):
    tag, event = hit(server, shop, "GET", "/users/42")
    assert tag == "get_user"
    assert event["method"] == "GET"
    assert event["path"] == "/users/42"
    assert event["params"] == {"id": "42"}
    assert event["query"] == {}
    assert event["body"] is None


def test_param_is_percent_decoded(server, shop):
    assert hit(server, shop, "GET", "/users/a%20b")[1]["params"] == {"id": "a b"}
    tag, event = hit(server, shop, "GET", "/users/z%C3%BCrich")
    assert event["params"] == {"id": "zürich"} and event["path"] == "/users/zürich"


def test_param_needs_a_segment(server, shop):
    # GET /users has no route (only POST /users): a :param never matches an empty segment
    assert detail(gateway(server, shop, "GET", "/users"), 404) == "No route matches GET /users"
    assert detail(gateway(server, shop, "GET", "/users/"), 404) == "No route matches GET /users"
    assert detail(gateway(server, shop, "GET", "/users/1/extra"), 404) == "No route matches GET /users/1/extra"


@pytest.mark.parametrize("path, rest", [("/files", ""), ("/files/", ""), ("/files/a.txt", "a.txt"),
                                        ("/files/a/b/c.txt", "a/b/c.txt"), ("/files/x%20y/z", "x y/z")])
def test_wildcard_zero_one_many_segments(server, shop, path, rest):
    for method in ["GET", "PUT", "DELETE", "PATCH", "POST"]:
        tag, event = hit(server, shop, method, path)
        assert tag == "files", (method, path)
        assert event["params"] == {"path": rest}
        assert event["method"] == method


def test_literal_beats_param_whatever_the_creation_order(server, shop):
    assert hit(server, shop, "GET", "/users/me")[0] == "me"      # /users/me was created after /users/:id
    assert hit(server, shop, "GET", "/users/mee")[0] == "get_user"
    project = make_project(server)
    special, generic = tagged(server, project, "special"), tagged(server, project, "generic")
    add_route(server, project, special, "GET", "/items/special")  # the other order
    add_route(server, project, generic, "GET", "/items/:id")
    assert hit(server, project, "GET", "/items/special")[0] == "special"
    assert hit(server, project, "GET", "/items/other")[0] == "generic"


def test_literal_beats_wildcard(server, shop):
    assert hit(server, shop, "GET", "/files/readme")[0] == "readme"
    assert hit(server, shop, "GET", "/files/readme/more")[0] == "files"
    assert hit(server, shop, "PUT", "/files/readme")[0] == "files"    # GET-only literal, ANY wildcard


def test_more_literals_then_fewer_params_win(server):
    project = make_project(server)
    fns = {tag: tagged(server, project, tag) for tag in ["two_params", "one_param", "all_literal", "wild"]}
    add_route(server, project, fns["wild"], "GET", "/a/*rest")
    add_route(server, project, fns["two_params"], "GET", "/a/:x/:y")
    add_route(server, project, fns["one_param"], "GET", "/a/:x/c")
    add_route(server, project, fns["all_literal"], "GET", "/a/b/c")
    assert hit(server, project, "GET", "/a/b/c")[0] == "all_literal"
    assert hit(server, project, "GET", "/a/z/c")[0] == "one_param"
    tag, event = hit(server, project, "GET", "/a/z/q")
    assert tag == "two_params" and event["params"] == {"x": "z", "y": "q"}
    assert hit(server, project, "GET", "/a/z/q/r")[0] == "wild"
    assert hit(server, project, "GET", "/a")[0] == "wild"


def test_exact_method_beats_any(server, shop):
    assert hit(server, shop, "GET", "/users/7")[0] == "get_user"     # ANY /users/:id was created later
    for method in ["DELETE", "PUT", "PATCH"]:
        tag, event = hit(server, shop, method, "/users/7")
        assert tag == "any_user" and event["params"] == {"id": "7"} and event["method"] == method
    assert hit(server, shop, "POST", "/users")[0] == "create_user"


def test_exact_method_comes_before_specificity(server):
    project = make_project(server)
    any_literal, get_param = tagged(server, project, "any_literal"), tagged(server, project, "get_param")
    add_route(server, project, any_literal, "ANY", "/things/special")
    add_route(server, project, get_param, "GET", "/things/:id")
    assert hit(server, project, "GET", "/things/special")[0] == "get_param"
    assert hit(server, project, "POST", "/things/special")[0] == "any_literal"


def test_trailing_slash_and_case(server, shop):
    assert hit(server, shop, "GET", "/users/42/")[1]["params"] == {"id": "42"}
    assert hit(server, shop, "GET", "/users/42/")[1]["path"] == "/users/42"
    assert detail(gateway(server, shop, "GET", "/Users/42"), 404) == "No route matches GET /Users/42"
    project = make_project(server)
    function = tagged(server, project, "slashed")
    route = add_route(server, project, function, "GET", "/slashed/")
    assert route["path"] == "/slashed"
    assert hit(server, project, "GET", "/slashed")[0] == "slashed"
    assert hit(server, project, "GET", "/slashed/")[0] == "slashed"


def test_project_root(server):
    project = make_project(server)
    assert detail(gateway(server, project, "GET", ""), 404) == "No route matches GET /"
    root = tagged(server, project, "root")
    add_route(server, project, root, "GET", "/")
    for path in ["", "/"]:
        tag, event = hit(server, project, "GET", path)
        assert tag == "root" and event["path"] == "/"


def test_head_and_options_routes(server):
    project = make_project(server)
    function = tagged(server, project, "h")
    add_route(server, project, function, "HEAD", "/h")
    add_route(server, project, function, "OPTIONS", "/h")
    response = gateway(server, project, "HEAD", "/h")
    assert response.status_code == 200 and response.content == b""
    assert hit(server, project, "OPTIONS", "/h")[1]["method"] == "OPTIONS"
    assert detail(gateway(server, project, "GET", "/h"), 404) == "No route matches GET /h"


# ---------------------------------------------------------------------------------------------------
# The event

def test_query_last_value_wins(server, shop):
    _, event = hit(server, shop, "GET", "/users/1?a=1&a=2&b=x%20y&flag&c=%E2%9C%93&d=1+2")
    assert event["query"] == {"a": "2", "b": "x y", "flag": "", "c": "✓", "d": "1 2"}
    assert event["path"] == "/users/1"


def test_headers_lower_cased_without_private_ones(server, shop):
    _, event = hit(server, shop, "GET", "/users/1",
                   headers={"X-Custom-Thing": "Some Value", "Cookie": "session=secret",
                            "Authorization": "Bearer secret", "Connection": "keep-alive",
                            "Accept": "application/json"})
    headers = event["headers"]
    assert headers["x-custom-thing"] == "Some Value"
    assert headers["accept"] == "application/json"
    assert all(name == name.lower() for name in headers)
    for private in ["host", "cookie", "authorization", "connection", "content-length"]:
        assert private not in headers, headers
    assert "secret" not in json.dumps(event)


def test_json_body_is_parsed(server, shop):
    tag, event = hit(server, shop, "POST", "/users", json={"name": "Ada", "langs": ["en", "fr"]})
    assert tag == "create_user"
    assert event["body"] == {"name": "Ada", "langs": ["en", "fr"]}
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    assert "content-length" not in event["headers"]


def test_text_body_is_text(server, shop):
    _, event = hit(server, shop, "POST", "/users", data="hello there ✓".encode(),
                   headers={"Content-Type": "text/plain; charset=utf-8"})
    assert event["body"] == "hello there ✓" and event["isBase64Encoded"] is False
    _, event = hit(server, shop, "POST", "/users", data=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert event["body"] == "{not json"


def test_empty_body_is_null(server, shop):
    _, event = hit(server, shop, "POST", "/users", data=b"")
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_binary_body_is_base64(server, shop):
    payload = bytes(range(256)) + PNG
    _, event = hit(server, shop, "PUT", "/files/upload.bin", data=payload,
                   headers={"Content-Type": "application/octet-stream"})
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_body_with_nul_bytes_arrives_whole(server, shop):
    """Valid UTF-8 with NULs (C strings would cut it) reaches the function whole, as base64."""
    payload = b"abc\x00def\x00"
    _, event = hit(server, shop, "POST", "/files/nul", data=payload, headers={"Content-Type": "text/plain"})
    if event["isBase64Encoded"]:
        assert base64.b64decode(event["body"]) == payload
    else:
        assert event["body"] == payload.decode()


def test_large_binary_round_trip_and_413(server):
    project = make_project(server)
    code = ("def handler(event):\n    return {'statusCode': 200, 'isBase64Encoded': True, 'body': event['body'],"
            " 'headers': {'Content-Type': 'application/octet-stream'}} if event['isBase64Encoded'] else 'text'\n")
    add_route(server, project, make_function(server, project, code, memory_mb=256), "PUT", "/blob")
    payload = os.urandom(4 << 20)
    response = gateway(server, project, "PUT", "/blob", data=payload)
    assert response.status_code == 200, response.text[:200]
    assert response.content == payload
    response = gateway(server, project, "PUT", "/blob", data=b"x" * (7 << 20))
    assert response.status_code == 413, response.text[:200]


# ---------------------------------------------------------------------------------------------------
# The result mapping

MIRROR = """\
import base64
PNG = base64.b64decode(%r)
def handler(event):
    body = event["body"]
    if body == "png":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(PNG).decode(), "isBase64Encoded": True}
    return body["result"]
""" % base64.b64encode(PNG).decode()


@pytest.fixture(scope="module")
def mirror(server):
    """POST /mirror answers with whatever result the request's body asks for."""
    project = make_project(server)
    add_route(server, project, make_function(server, project, MIRROR), "POST", "/mirror")
    return project


def answer(server, mirror, result):
    return gateway(server, mirror, "POST", "/mirror", json={"result": result}, allow_redirects=False)


def test_status_headers_and_dict_body(server, mirror):
    response = answer(server, mirror, {"statusCode": 201, "headers": {"X-Thing": "yes"},
                                       "body": {"id": 7, "ok": True}})
    assert response.status_code == 201
    assert response.headers["X-Thing"] == "yes"
    assert response.json() == {"id": 7, "ok": True}
    assert response.headers["X-Clowdy-Invocation-Id"]


def test_string_body_is_sent_as_is(server, mirror):
    html = "<h1>Hello ✓</h1>"
    response = answer(server, mirror, {"statusCode": 202, "headers": {"Content-Type": "text/html"},
                                       "body": html})
    assert response.status_code == 202
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content == html.encode()


@pytest.mark.parametrize("value", [[1, "two"], "just text", 3.5, None, {"a": {"b": [1]}}, True])
def test_any_other_value_is_json_with_200(server, mirror, value):
    response = answer(server, mirror, value)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == value


def test_base64_response_is_decoded_png(server, mirror):
    response = gateway(server, mirror, "POST", "/mirror", data="png", headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == PNG
    assert int(response.headers["Content-Length"]) == len(PNG)


def test_redirect_and_no_content(server, mirror):
    response = answer(server, mirror, {"statusCode": 302, "headers": {"Location": "/elsewhere"}})
    assert response.status_code == 302 and response.headers["Location"] == "/elsewhere"
    response = answer(server, mirror, {"statusCode": 204})
    assert response.status_code == 204 and response.content == b""


def test_bad_result_headers_are_not_injected(server, mirror):
    response = answer(server, mirror, {"statusCode": 200, "body": "fine",
                                       "headers": {"X-Inject": "a\r\nSet-Cookie: evil=1",
                                                   "Bad Name\r\nX-Evil": "1",
                                                   "Content-Length": "1000"}})
    assert response.status_code == 200
    assert response.content == b"fine"
    assert "Set-Cookie" not in response.headers and "X-Evil" not in response.headers
    assert "evil" not in response.cookies
    assert response.headers["Content-Length"] == "4"


@pytest.mark.parametrize("result", [{"statusCode": 999, "body": "x"}, {"statusCode": "abc"},
                                    {"statusCode": 200, "body": "!!!not base64", "isBase64Encoded": True}])
def test_invalid_result_is_502(server, mirror, result):
    assert isinstance(detail(answer(server, mirror, result), 502), str)


def answer_within(server, mirror, result, seconds):
    return gateway(server, mirror, "POST", "/mirror", json={"result": result}, timeout=seconds)


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_informational_status_is_not_a_final_answer(server, mirror, status):
    """A 1xx is not a final response (100 leaves the client waiting, 101 switches protocols): the
    function's answer is invalid, so 502, and promptly."""
    try:
        response = answer_within(server, mirror, {"statusCode": status, "body": "x"}, slow(5))
    except requests.exceptions.ReadTimeout:
        pytest.fail("statusCode %d left the client waiting" % status)
    assert response.status_code == 502, (response.status_code, response.text)
    assert ok(server.get("/api/health")) == {"status": "ok"}


def test_result_headers_cannot_forge_the_invocation_id(server, mirror):
    response = answer(server, mirror, {"statusCode": 200, "body": "b",
                                       "headers": {"X-Clowdy-Invocation-Id": "forged"}})
    assert response.status_code == 200
    assert "forged" not in response.headers["X-Clowdy-Invocation-Id"]


# ---------------------------------------------------------------------------------------------------
# Errors

def test_project_not_found(server):
    for path in ["/api/gateway/no-such-project-%s" % uuid.uuid4().hex[:6],
                 "/api/gateway/no-such-project-%s/users/1" % uuid.uuid4().hex[:6]]:
        assert detail(server.get(path), 404) == "Project not found"


def test_no_route_matches(server, shop):
    assert detail(gateway(server, shop, "GET", "/nothing/here"), 404) == "No route matches GET /nothing/here"
    assert detail(gateway(server, shop, "DELETE", "/users"), 404) == "No route matches DELETE /users"


FAILING = """\
import time
def handler(event):
    if event["params"]["mode"] == "raise":
        raise ValueError("the gateway must not leak this as a 500")
    if event["params"]["mode"] == "sleep":
        time.sleep(60)
    if event["params"]["mode"] == "exit":
        import os
        os._exit(1)
    return "fine"
"""


@pytest.fixture(scope="module")
def failing(server):
    project = make_project(server)
    function = make_function(server, project, FAILING, timeout_seconds=1)
    add_route(server, project, function, "GET", "/f/:mode")
    project["function"] = function
    return project


def test_exception_is_502(server, failing):
    message = detail(gateway(server, failing, "GET", "/f/raise"), 502)
    assert "ValueError" in message
    assert ok(gateway(server, failing, "GET", "/f/ok")) == "fine"


def test_crash_is_502(server, failing):
    assert isinstance(detail(gateway(server, failing, "GET", "/f/exit"), 502), str)
    assert ok(gateway(server, failing, "GET", "/f/ok")) == "fine"


def test_timeout_is_504(server, failing):
    message = detail(gateway(server, failing, "GET", "/f/sleep"), 504)
    assert "timed out after 1 s" in message, message      # the function's 1 s, not its 60 s sleep
    assert ok(gateway(server, failing, "GET", "/f/ok")) == "fine"


def raw_get(server, target):
    """GET with a request target sent byte for byte (requests would percent-encode it)."""
    host, port = server.url[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=slow(10)) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_raw_utf8_path_matches(server, shop):
    status, body = raw_get(server, b"/api/gateway/" + shop["slug"].encode() + "/users/zürich".encode())
    assert status == 200, body
    assert json.loads(body.decode("utf-8"))["event"]["params"] == {"id": "zürich"}


@pytest.mark.parametrize("path", [b"/nothing/\xff\xfe", b"/users/1/\xc3", b"/" + "é".encode() * 300,
                                  b"/nothing/" + "✓".encode() * 200],
                         ids=["invalid-utf8", "cut-utf8", "long-2-byte-chars", "long-3-byte-chars"])
def test_no_route_answer_is_valid_json_for_any_path(server, shop, path):
    """The 404 detail quotes the path: it must still be UTF-8 JSON when the path is not."""
    status, body = raw_get(server, b"/api/gateway/" + shop["slug"].encode() + path)
    assert status == 404, body
    message = json.loads(body.decode("utf-8"))["detail"]
    assert message.startswith("No route matches GET /")


def test_deleted_function_takes_its_routes(server):
    """Routes cascade with their function: the route disappears and the path no longer matches."""
    project = make_project(server)
    doomed, kept = tagged(server, project, "doomed"), tagged(server, project, "kept")
    add_route(server, project, doomed, "GET", "/doomed")
    add_route(server, project, kept, "GET", "/kept")
    assert hit(server, project, "GET", "/doomed")[0] == "doomed"       # the route table is now cached
    ok(server.delete("/api/functions/" + doomed["id"]))
    routes = ok(server.get("/api/projects/%s/routes" % project["id"]))
    assert [r["path"] for r in routes] == ["/kept"]
    response = gateway(server, project, "GET", "/doomed")
    assert detail(response, 404) == "No route matches GET /doomed"
    assert hit(server, project, "GET", "/kept")[0] == "kept"


def test_disabled_function_answers_503_on_its_routes(server):
    project = make_project(server)
    paused, other = tagged(server, project, "paused"), tagged(server, project, "other")
    add_route(server, project, paused, "GET", "/paused")
    add_route(server, project, other, "GET", "/other")
    assert hit(server, project, "GET", "/paused")[0] == "paused"       # cached before the change
    ok(server.put("/api/functions/" + paused["id"], json={"status": "disabled"}))
    assert detail(gateway(server, project, "GET", "/paused"), 503) == "The route's function is disabled"
    assert hit(server, project, "GET", "/other")[0] == "other"
    ok(server.put("/api/functions/" + paused["id"], json={"status": "active"}))
    assert hit(server, project, "GET", "/paused")[0] == "paused"


def test_deleted_project_is_not_found(server):
    project = make_project(server)
    add_route(server, project, tagged(server, project, "x"), "GET", "/x")
    assert hit(server, project, "GET", "/x")[0] == "x"
    ok(server.delete("/api/projects/" + project["id"]))
    assert detail(gateway(server, project, "GET", "/x"), 404) == "Project not found"


# ---------------------------------------------------------------------------------------------------
# Changes take effect at once

def test_route_changes_take_effect_at_once(server):
    project = make_project(server)
    first, second = tagged(server, project, "first"), tagged(server, project, "second")
    route = add_route(server, project, first, "GET", "/thing/:id")
    assert hit(server, project, "GET", "/thing/1")[0] == "first"
    ok(server.put("/api/projects/%s/routes/%s" % (project["id"], route["id"]),
                  json={"function_id": second["id"]}))
    assert hit(server, project, "GET", "/thing/1")[0] == "second"
    ok(server.put("/api/projects/%s/routes/%s" % (project["id"], route["id"]),
                  json={"path": "/other/:id", "method": "POST"}))
    assert detail(gateway(server, project, "GET", "/thing/1"), 404) == "No route matches GET /thing/1"
    assert hit(server, project, "POST", "/other/1")[0] == "second"
    ok(server.delete("/api/projects/%s/routes/%s" % (project["id"], route["id"])))
    assert detail(gateway(server, project, "POST", "/other/1"), 404) == "No route matches POST /other/1"


def test_new_code_is_served_at_once(server):
    project = make_project(server)
    function = tagged(server, project, "old")
    add_route(server, project, function, "GET", "/v")
    assert hit(server, project, "GET", "/v")[0] == "old"
    ok(server.put("/api/functions/" + function["id"],
                  json={"code": "def handler(event):\n    return {'tag': 'new', 'event': event}\n"}))
    assert hit(server, project, "GET", "/v")[0] == "new"


def test_renamed_project_answers_at_its_new_slug(server):
    project = make_project(server)
    add_route(server, project, tagged(server, project, "r"), "GET", "/r")
    assert hit(server, project, "GET", "/r")[0] == "r"
    renamed = ok(server.put("/api/projects/" + project["id"], json={"name": "renamed " + uuid.uuid4().hex[:8]}))
    assert renamed["slug"] != project["slug"]
    assert detail(gateway(server, project, "GET", "/r"), 404) == "Project not found"
    assert hit(server, renamed, "GET", "/r")[0] == "r"


def test_env_vars_visible_and_changes_seen(server):
    project = make_project(server)
    ok(server.post("/api/projects/%s/env" % project["id"], json={"key": "API_KEY", "value": "first-secret"}))
    ok(server.post("/api/projects/%s/env" % project["id"],
                   json={"key": "MODE", "value": "test", "is_secret": False}))
    code = "import os\ndef handler(event):\n    return [os.environ.get('API_KEY'), os.environ.get('MODE')]\n"
    add_route(server, project, make_function(server, project, code), "GET", "/env")
    assert ok(gateway(server, project, "GET", "/env")) == ["first-secret", "test"]
    listed = ok(server.get("/api/projects/%s/env" % project["id"]))
    assert {e["key"]: e["value"] for e in listed}["API_KEY"] == "********"    # masked for the API only
    ok(server.post("/api/projects/%s/env" % project["id"], json={"key": "API_KEY", "value": "second-secret"}))
    assert ok(gateway(server, project, "GET", "/env")) == ["second-secret", "test"]
    ok(server.delete("/api/projects/%s/env/MODE" % project["id"]))
    assert ok(gateway(server, project, "GET", "/env")) == ["second-secret", None]


# ---------------------------------------------------------------------------------------------------
# Records and stats

def test_gateway_invocations_are_recorded(server, shop):
    response = gateway(server, shop, "PUT", "/files/a/b.txt?x=1", data=b"content")
    assert response.status_code == 200
    invocation_id = response.headers["X-Clowdy-Invocation-Id"]
    record = record_of(server, shop["fns"]["files"]["id"], invocation_id)
    assert record["source"] == "gateway"
    assert record["http_method"] == "PUT"
    assert record["http_path"] == "/files/a/b.txt"
    assert record["status"] == "success"
    event = json.loads(record["input"])
    assert event["params"] == {"path": "a/b.txt"} and event["body"] == "content"
    assert json.loads(record["output"])["tag"] == "files"


def test_failed_gateway_invocations_are_recorded(server, failing):
    response = gateway(server, failing, "GET", "/f/raise")
    assert response.status_code == 502
    record = record_of(server, failing["function"]["id"], response.headers["X-Clowdy-Invocation-Id"])
    assert record["status"] == "error" and record["source"] == "gateway"
    assert record["http_method"] == "GET" and record["http_path"] == "/f/raise"
    assert "ValueError" in record["error"]


def test_timeout_is_recorded_as_timeout(server, failing):
    response = gateway(server, failing, "GET", "/f/sleep")
    assert response.status_code == 504
    record = record_of(server, failing["function"]["id"], response.headers["X-Clowdy-Invocation-Id"])
    assert record["status"] == "timeout" and record["http_path"] == "/f/sleep"


def test_overload_through_the_gateway_is_429(make_server):
    server = make_server(args=["--max-concurrency", "1", "--queue-depth", "1"])
    project = make_project(server)
    code = "import time\ndef handler(event):\n    time.sleep(float(event['query'].get('s', '0')))\n    return 'done'\n"
    add_route(server, project, make_function(server, project, code), "GET", "/slow")
    assert ok(gateway(server, project, "GET", "/slow")) == "done"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        # Long enough that all four arrive while the first one runs
        responses = list(pool.map(lambda _: gateway(server, project, "GET", "/slow?s=%g" % slow(1)), range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429], [r.text for r in responses]
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert isinstance(response.json()["detail"], str)
        else:
            assert response.json() == "done"
    assert ok(gateway(server, project, "GET", "/slow")) == "done"


def test_stats_count_gateway_calls(make_server):
    server = make_server()
    project = make_project(server)
    function = tagged(server, project, "s")
    add_route(server, project, function, "ANY", "/s")
    for method in ["GET", "POST", "PUT"]:
        assert gateway(server, project, method, "/s").status_code == 200
    assert gateway(server, project, "GET", "/nope").status_code == 404    # no function ran: not counted
    wait_for(lambda: ok(server.get("/api/stats"))["total_invocations"] >= 3, 3, "the 3 calls were never counted")
    time.sleep(0.1)                                 # room for a 4th count that should not come
    stats = ok(server.get("/api/stats"))
    assert stats["total_invocations"] == 3 and stats["success_rate"] == 100


# ---------------------------------------------------------------------------------------------------
# A real HTTP client

def test_curl(server, shop, mirror, tmp_path):
    url = server.url + "/api/gateway/" + shop["slug"] + "/users"
    out = subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                          "-d", '{"name": "curl"}', url], capture_output=True, timeout=slow(30), check=True)
    data = json.loads(out.stdout)
    assert data["tag"] == "create_user" and data["event"]["body"] == {"name": "curl"}
    png = tmp_path / "out.png"
    url = server.url + "/api/gateway/" + mirror["slug"] + "/mirror"
    out = subprocess.run(["curl", "-sS", "-o", str(png), "-w", "%{http_code} %{content_type}",
                          "-H", "Content-Type: text/plain", "--data-binary", "png", url],
                         capture_output=True, timeout=slow(30), check=True)
    assert out.stdout.decode() == "200 image/png"
    assert png.read_bytes() == PNG
    assert os.path.getsize(png) == len(PNG)
