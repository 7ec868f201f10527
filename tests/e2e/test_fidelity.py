"""Functions' answers and data, as sent (issue 10, hardening): what a function answers cannot act as the
dashboard, the data a function gets and gives back is never changed without an error, a result that
cannot be sent as a conforming HTTP answer is a failed call (and its record says so), and one stopped
runner never stalls the other functions of its worker.

Each test fails on the build before these fixes:
- a gateway function's text/html and Set-Cookie were served as they were on the dashboard's origin;
- 9007199254740993 reached the function as 9007199254740992, 10.0 as 10, 1e400 as None, a raw NUL
  cut a string; results came back the same way (2**60+1 rounded, 10**400 as null);
- an input nested too deep was "not valid JSON" or "Function's runner failed"; a result nested too deep
  (recursion limit raised by the function) made "the runner break the protocol";
- an invalid statusCode was a 502 whose record said success; 3000 headers made an answer no client
  reads, recorded as a success;
- a runner stopped with SIGSTOP blocked its worker's thread for the send timeout, and the other
  functions on that worker waited.
"""
import threading
import time
import uuid

import pytest
import requests

from conftest import descendants, slow, wait_for
from test_gateway import add_route, gateway


# ---------------------------------------------------------------------------------------------------
# Helpers

def ok(response):
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def make_project(server):
    return ok(server.post("/api/projects", json={"name": "fid " + uuid.uuid4().hex[:10]}))


def make_function(server, code, project=None, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code)
    if project:
        body["project_id"] = project["id"]
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke_raw(server, function, body, **kw):
    return requests.post(server.url + "/api/invoke/" + function["id"], data=body,
                         headers={"Content-Type": "application/json"},
                         timeout=kw.pop("timeout", slow(30)), **kw)


def wait_record(server, function_id, invocation_id):
    def find():
        for record in ok(server.get("/api/functions/%s/invocations" % function_id)):
            if record["id"] == invocation_id:
                return record
        return None
    return wait_for(find, 5, "no record for invocation %s" % invocation_id)


# A function that says how its input looks to Python, and gives it back
REPR = "def handler(event):\n    return {'repr': repr(event), 'same': event}\n"


# ---------------------------------------------------------------------------------------------------
# 1. The dashboard's origin does not serve functions' cookies or live pages

PAGE = """\
def handler(event):
    return {"statusCode": 200,
            "headers": {"Content-Type": "text/html", "set-cookie": "__session=stolen; Path=/",
                        "X-Content-Type-Options": "whatever"},
            "body": "<script>fetch('/api/projects')</script>"}
"""


@pytest.fixture(scope="module")
def page(server):
    project = make_project(server)
    function = make_function(server, PAGE, project)
    add_route(server, project, function, "GET", "/page")
    return project, function


def test_function_page_on_the_dashboard_origin_is_sandboxed_and_cookieless(server, page):
    project, _ = page
    response = gateway(server, project, "GET", "/page")
    assert response.status_code == 200
    assert response.content == b"<script>fetch('/api/projects')</script>"
    assert response.headers["Content-Type"] == "text/html"
    assert "Set-Cookie" not in response.headers and not response.cookies
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_invoke_answers_and_errors_carry_the_policy_too(server, page):
    _, function = page
    response = server.post("/api/invoke/" + function["id"], json={"input": {}})
    assert ok(response)["success"] is True
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    response = server.post("/api/invoke/" + "0" * 12, json={"input": {}})
    assert response.status_code == 404
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_gateway_host_is_the_functions_own_origin(make_server):
    """With --gateway-host, that host name serves functions only, and their answers as they are; the
    dashboard's host still gets the sandboxed, cookieless answer."""
    server = make_server(args=["--gateway-host", "fn.clowdy.test"])
    project = make_project(server)
    add_route(server, project, make_function(server, PAGE, project), "GET", "/page")
    port = server.url.rsplit(":", 1)[1]
    own = {"Host": "FN.clowdy.test:" + port}
    response = gateway(server, project, "GET", "/page", headers=own)
    assert response.status_code == 200
    assert response.cookies.get("__session") == "stolen"
    assert "Content-Security-Policy" not in response.headers
    # The dashboard's own host: as before
    response = gateway(server, project, "GET", "/page")
    assert "Set-Cookie" not in response.headers
    assert response.headers["Content-Security-Policy"] == "sandbox"
    # The functions' host serves nothing of the dashboard or the REST API
    for path in ("/", "/index.html", "/api/projects", "/api/functions", "/api/config"):
        response = server.get(path, headers=own)
        assert response.status_code == 404, path
        assert "only functions" in response.json()["detail"]
    assert ok(server.get("/api/health", headers=own)) == {"status": "ok"}
    assert ok(server.get("/api/projects"))          # the dashboard's host is unchanged


# ---------------------------------------------------------------------------------------------------
# 2. Data reaches the function, and comes back, as it was sent, or is refused with the reason

def test_input_numbers_reach_the_function_with_their_digits(server):
    function = make_function(server, REPR)
    body = (b'{"input": {"big": 9007199254740993, "neg": -123456789012345678901234567890, '
            b'"f": 10.0, "e": 1000000000000000, "z": -0.0, "small": 0.1, "exp": 1.5e300}}')
    response = invoke_raw(server, function, body)
    data = ok(response)
    assert data["success"] is True, data
    assert data["output"]["repr"] == ("{'big': 9007199254740993, 'neg': -123456789012345678901234567890, "
                                      "'f': 10.0, 'e': 1000000000000000, 'z': -0.0, 'small': 0.1, "
                                      "'exp': 1.5e+300}")
    # The answer carries the same digits back (as bytes, not through a JSON parser)
    assert (b'"same":{"big":9007199254740993,"neg":-123456789012345678901234567890,"f":10.0,'
            b'"e":1000000000000000,"z":-0.0,"small":0.1,"exp":1.5e+300}') in response.content
    record = wait_record(server, function["id"], data["invocation_id"])
    assert record["status"] == "success"
    assert "9007199254740993" in record["input"] and "10.0" in record["input"]
    assert '"big":9007199254740993' in record["output"]


@pytest.mark.parametrize("body, words", [
    (b'{"input": {"a": "x\x00y"}}', "NUL byte"),
    (b'{"input": {"a": 1e400}}', "1e400"),
    (b'{"input": [-1e400]}', "-1e400"),
    (b'{"input": {"a": 1.5e-400}}', "1.5e-400"),
    (b'{"input": ' + b"[" * 600 + b"]" * 600 + b"}", "nested 601 levels deep"),
    (b'{"input": ' + b"[" * 1200 + b"]" * 1200 + b"}", "nested 1201 levels deep"),
], ids=["raw-nul", "overflow", "negative-overflow", "underflow", "nested-600", "nested-1200"])
def test_input_that_would_change_is_refused_with_the_reason(server, body, words):
    function = make_function(server, REPR)
    response = invoke_raw(server, function, body)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert words in response.json()["detail"]
    assert ok(server.get("/api/functions/%s/invocations" % function["id"])) == []


def test_gateway_body_that_would_change_arrives_as_its_text(server):
    project = make_project(server)
    add_route(server, project, make_function(server, REPR, project), "POST", "/echo")
    # Kept as JSON, with the digits sent
    sent = b'{"big": 9007199254740993, "f": 2.50}'
    response = gateway(server, project, "POST", "/echo", data=sent)
    assert response.status_code == 200
    event = response.json()
    assert "'big': 9007199254740993, 'f': 2.5}" in event["repr"]
    assert b'"body":{"big":9007199254740993,"f":2.5}' in response.content
    # What no Python value holds stays the text sent: the function gets every byte
    for sent in (b'{"a": 1e400}', b'{"s": "a\\u0000b"}', b"[" * 700 + b"]" * 700):
        response = gateway(server, project, "POST", "/echo", data=sent)
        assert response.status_code == 200
        assert response.json()["same"]["body"] == sent.decode()


def test_gateway_query_left_out_of_query_is_in_raw_query_string(server):
    project = make_project(server)
    add_route(server, project, make_function(server, REPR, project), "GET", "/q")
    response = gateway(server, project, "GET", "/q?n=%00x&bad=%FF&ok=1&ok=2")
    assert response.status_code == 200
    event = response.json()["same"]
    assert event["query"] == {"ok": "2"}
    assert event["rawQueryString"] == "n=%00x&bad=%FF&ok=1&ok=2"


RESULTS = """\
import sys
def handler(event):
    if isinstance(event, dict):
        event = event["body"]
    if event == "numbers":
        return {"a": 2 ** 60 + 1, "b": 10 ** 400, "c": 1.0, "d": -0.0, "e": 1e16}
    if event == "deep":
        sys.setrecursionlimit(100000)
        x = []
        for _ in range(3000):
            x = [x]
        return x
    if event == "http":
        return {"statusCode": 201, "body": {"id": 2 ** 63 + 7, "price": 10.0}}
    return "fine"
"""


def test_results_come_back_with_their_digits(server):
    project = make_project(server)
    function = make_function(server, RESULTS, project)
    add_route(server, project, function, "POST", "/r")
    response = server.post("/api/invoke/" + function["id"], json={"input": "numbers"})
    data = ok(response)
    assert data["success"] is True, data
    assert (b'"output":{"a":1152921504606846977,"b":1' + b"0" * 400 + b',"c":1.0,"d":-0.0,"e":1e+16}'
            in response.content)
    record = wait_record(server, function["id"], data["invocation_id"])
    assert record["status"] == "success" and '"a":1152921504606846977' in record["output"]
    response = gateway(server, project, "POST", "/r", json="http")
    assert response.status_code == 201
    assert response.content == b'{"id":9223372036854775815,"price":10.0}'


def test_result_nested_too_deep_says_so(server):
    function = make_function(server, RESULTS)
    data = ok(server.post("/api/invoke/" + function["id"], json={"input": "deep"}))
    assert data["success"] is False
    assert "nested too deeply" in data["error"], data["error"]
    record = wait_record(server, function["id"], data["invocation_id"])
    assert record["status"] == "error"
    # The environment goes on serving
    assert ok(server.post("/api/invoke/" + function["id"], json={"input": "x"}))["output"] == "fine"


# ---------------------------------------------------------------------------------------------------
# 3. A result that cannot be sent as a conforming HTTP answer is a failed call, and recorded as one

MIRROR = """\
def handler(event):
    result = event["body"]["result"]
    if result == "many headers":
        return {"statusCode": 200, "headers": {"X-H%d" % i: "v" * 20 for i in range(3000)}, "body": "x"}
    if result == "huge header":
        return {"statusCode": 200, "headers": {"X-Big": "a" * 100000}, "body": "x"}
    if result == "bytes body":
        return {"statusCode": 200, "body": b"x"}
    return result
"""


@pytest.fixture(scope="module")
def mirror(server):
    project = make_project(server)
    function = make_function(server, MIRROR, project)
    add_route(server, project, function, "POST", "/m")
    return project, function


@pytest.mark.parametrize("result, words", [
    ({"statusCode": 700, "body": "x"}, "statusCode"),
    ({"statusCode": "200"}, "statusCode"),
    ({"statusCode": 101}, "statusCode"),
    ({"statusCode": 200.5}, "statusCode"),
    ({"statusCode": 200, "body": "!!", "isBase64Encoded": True}, "base64"),
    ("many headers", "headers"),
    ("huge header", "headers"),
    ("bytes body", "not JSON serialisable"),
])
def test_unsendable_result_is_a_502_and_an_error_record(server, mirror, result, words):
    project, function = mirror
    response = gateway(server, project, "POST", "/m", json={"result": result})
    assert response.status_code == 502, (response.status_code, response.headers)
    assert words in response.json()["detail"]
    record = wait_record(server, function["id"], response.headers["X-Clowdy-Invocation-Id"])
    assert record["status"] == "error", record
    assert words in record["error"]


@pytest.mark.parametrize("result, status", [
    ({"statusCode": 204, "body": "dropped"}, 204),
    ({"statusCode": 304, "body": {"a": 1}}, 304),
    ({"statusCode": 205, "body": "reset"}, 205),
    ({"statusCode": 200, "headers": {"X-Bad": "a\r\nb", "X-Num": 5, "Bad Name": "v"}, "body": "ok"}, 200),
])
def test_results_made_conforming_are_successes(server, mirror, result, status):
    project, function = mirror
    response = gateway(server, project, "POST", "/m", json={"result": result})
    assert response.status_code == status
    if status != 200:
        assert response.content == b""
    else:
        assert response.content == b"ok"
        assert not any(name in response.headers for name in ("X-Bad", "X-Num", "Bad Name"))
    record = wait_record(server, function["id"], response.headers["X-Clowdy-Invocation-Id"])
    assert record["status"] == "success"


# ---------------------------------------------------------------------------------------------------
# 4. A stopped runner does not stall its worker

STOPPER = """\
import os, signal, threading
def handler(event):
    if event.get("stop"):
        # After the result is written: the runner stops, and reads nothing more
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGSTOP)).start()
        return "stopping"
    return len(event.get("data", ""))
"""


def stopped_pids(server):
    found = []
    for pid in descendants(server.proc.pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    found.append(pid)
        except OSError:
            pass
    return found


def test_stopped_runner_does_not_stall_the_other_functions_of_its_worker(make_server):
    server = make_server(args=["--workers", "1"])
    # Its timeout outlasts the probing below, however slow this machine is
    stopper = make_function(server, STOPPER, timeout_seconds=min(20, int(slow(6))))
    other = make_function(server, "def handler(event):\n    return event\n")
    assert ok(server.post("/api/invoke/" + other["id"], json={"input": 0}))["success"]
    assert ok(server.post("/api/invoke/" + stopper["id"], json={"input": {"stop": True}}))["success"]
    wait_for(lambda: stopped_pids(server), 10, "the runner did not stop")

    # A large input for the stopped runner: more than its socket's buffer takes
    big = {}

    def call_stopped():
        response = server.post("/api/invoke/" + stopper["id"], json={"input": {"data": "x" * (4 << 20)}},
                               timeout=slow(60))
        big["answer"] = ok(response)

    caller = threading.Thread(target=call_stopped)
    caller.start()
    # Other calls on the same worker go on while that one waits
    answered_while_pending = []
    for i in range(6):
        time.sleep(0.25)
        data = ok(server.post("/api/invoke/" + other["id"], json={"input": i}))
        assert data["success"] and data["output"] == i
        answered_while_pending.append(caller.is_alive())
    assert answered_while_pending == [True] * 6
    # The stopped runner's call ends by its own timeout, and its environment is retired
    caller.join(slow(60))
    assert not caller.is_alive()
    assert big["answer"]["success"] is False and big["answer"].get("timeout") is True, big["answer"]
    record = wait_record(server, stopper["id"], big["answer"]["invocation_id"])
    assert record["status"] == "timeout"
    data = ok(server.post("/api/invoke/" + stopper["id"], json={"input": {"data": "abc"}}))
    assert data["success"] and data["output"] == 3 and data["cold_start"] is True
    wait_for(lambda: not stopped_pids(server), 10, "the stopped runner is still there")
