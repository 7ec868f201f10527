"""The execution engine end to end (issue 3): POST /api/invoke/:id against real sandboxes, through
the real build/clowdy, and what it records in GET /api/functions/:id/invocations.

Covers README.md's examples as written, cold then warm environments (module state kept per
environment), both handler signatures and the context, logs kept apart from results, errors
(exceptions, non-JSON results, syntax errors), timeout and memory limits, new versions, rollback,
limit and env var changes retiring old environments (also with a call in flight), concurrency, the
per-function cap and its 429, the idle reaper, LRU eviction under the memory budget, the server's
maxima, retention, request body validation (400/404/405/413/422, U+0000) and stats.

The module shares one server; every test makes its own functions, and tests that need server
options start their own (make_server). Invocation records are written in batches off the request
path, so reads of them poll briefly (wait_records, record_of).
"""
import concurrent.futures
import json
import math
import re
import subprocess
import time
import uuid

import pytest
import requests

from conftest import ok, record_of, slow, wait_for
from conftest import records as wait_records

ID = re.compile(r"^[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
RESULT_OK = {"success", "output", "duration_ms", "invocation_id", "cold_start"}
RESULT_ERR = {"success", "error", "duration_ms", "invocation_id", "cold_start"}


# ---------------------------------------------------------------------------------------------------
# Helpers

def make_function(server, code, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke(server, function_id, value=None, timeout=30):
    """Invoke with {"input": value} (value None: {}); assert HTTP 200 and the result's shape."""
    body = {"input": {} if value is None else value}
    result = ok(server.post("/api/invoke/" + function_id, json=body, timeout=slow(timeout)))
    assert isinstance(result["success"], bool)
    assert set(result) >= (RESULT_OK if result["success"] else RESULT_ERR), result
    assert isinstance(result["duration_ms"], int) and result["duration_ms"] >= 0
    assert ID.match(result["invocation_id"]), result
    assert isinstance(result["cold_start"], bool)
    return result


def succeeded(result):
    assert result["success"] is True, result
    return result["output"]


def failed(result):
    assert result["success"] is False, result
    assert isinstance(result["error"], str) and result["error"]
    assert "output" not in result or result["output"] is None
    return result["error"]


def post_raw(server, function_id, data, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(server.url + "/api/invoke/" + function_id, data=data, headers=headers,
                         timeout=slow(30))


# ---------------------------------------------------------------------------------------------------
# The README flow

HELLO = """\
def handler(input):
    name = input.get("name", "world")
    print("saying hello to", name)
    return {"message": "Hello, %s!" % name}
"""


def test_readme_flow_create_invoke_read_log(server):
    function = make_function(server, HELLO)
    assert ID.match(function["id"]) and function["active_version"] == 1

    result = invoke(server, function["id"], {"name": "Ada"})
    assert succeeded(result) == {"message": "Hello, Ada!"}
    assert result["cold_start"] is True

    records = wait_records(server, function["id"], 1)
    assert len(records) == 1
    record = records[0]
    assert record["id"] == result["invocation_id"]
    assert record["function_id"] == function["id"]
    assert record["status"] == "success"
    assert json.loads(record["input"]) == {"name": "Ada"}
    assert json.loads(record["output"]) == {"message": "Hello, Ada!"}
    assert record["logs"] == "saying hello to Ada\n"
    assert record["cold_start"] is True
    assert record["version"] == 1
    assert record["source"] == "direct"
    assert record["http_method"] is None and record["http_path"] is None
    assert record["duration_ms"] == result["duration_ms"]
    assert TIME.match(record["created_at"])


def curl(*args):
    out = subprocess.run(["curl", "-sS", "--max-time", "%d" % slow(30)] + list(args), capture_output=True,
                         check=True)
    return json.loads(out.stdout)


def test_readme_try_it_with_curl(server):
    """README.md's "Try it" block, command for command (with this server's address)."""
    host = server.url.replace("http://", "")
    created = curl(host + "/api/functions", "-H", "content-type: application/json", "-d", """{
  "name": "hello",
  "code": "def handler(input):\\n    print(\\"called with\\", input)\\n    return {\\"greeting\\": \\"hello \\" + input.get(\\"name\\", \\"world\\")}\\n"
}""")
    assert created["name"] == "hello" and created["active_version"] == 1 and ID.match(created["id"])
    result = curl(host + "/api/invoke/" + created["id"], "-d", '{"input": {"name": "Ada"}}')
    assert result["success"] is True and result["output"] == {"greeting": "hello Ada"}
    assert result["cold_start"] is True
    assert curl(host + "/api/invoke/" + created["id"], "-d", '{"input": {"name": "Ada"}}')["cold_start"] is False
    records = wait_for(lambda: (lambda listed: listed if len(listed) >= 2 else None)(
        curl(host + "/api/functions/%s/invocations" % created["id"])), 3, "the 2 calls were never recorded")
    oldest = records[-1]
    assert oldest["status"] == "success"
    assert oldest["logs"] == "called with {'name': 'Ada'}\n"
    assert oldest["cold_start"] is True and oldest["version"] == 1


def test_invocations_are_newest_first_and_limited(server):
    function = make_function(server, "def handler(input):\n    return input['n']\n")
    for n in range(4):
        assert succeeded(invoke(server, function["id"], {"n": n})) == n
    records = wait_records(server, function["id"], 4)
    assert [json.loads(r["output"]) for r in records] == [3, 2, 1, 0]
    limited = ok(server.get("/api/functions/%s/invocations?limit=2" % function["id"]))
    assert [json.loads(r["output"]) for r in limited] == [3, 2]


# ---------------------------------------------------------------------------------------------------
# Environments: cold, warm, module state

COUNTER = """\
calls = 0

def handler(input):
    global calls
    calls += 1
    return calls
"""


def test_cold_then_warm_keeps_module_state(server):
    function = make_function(server, COUNTER)
    first = invoke(server, function["id"])
    assert succeeded(first) == 1 and first["cold_start"] is True
    second = invoke(server, function["id"])
    assert succeeded(second) == 2 and second["cold_start"] is False
    third = invoke(server, function["id"])
    assert succeeded(third) == 3 and third["cold_start"] is False
    records = wait_records(server, function["id"], 3)
    assert [r["cold_start"] for r in records] == [False, False, True]


def test_module_code_runs_once_per_environment(server):
    code = ("import time\nloaded_at = time.time()\n"
            "def handler(input):\n    return loaded_at\n")
    function = make_function(server, code)
    stamps = {succeeded(invoke(server, function["id"])) for _ in range(3)}
    assert len(stamps) == 1


# ---------------------------------------------------------------------------------------------------
# Handlers and context

def test_handler_with_one_argument_gets_the_input(server):
    function = make_function(server, "def handler(input):\n    return {'got': input}\n")
    for value in [{"a": [1, 2, {"b": None}]}, [1, "two", 3.5], "text", 42, True, {"unicode": "zürich ✓"}]:
        assert succeeded(invoke(server, function["id"], value)) == {"got": value}


def test_handler_with_event_and_context(server):
    code = """\
def handler(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "version": context.function_version,
        "invocation_id": context.invocation_id,
        "memory_limit_mb": context.memory_limit_mb,
        "remaining": [context.get_remaining_time_in_millis(), context.get_remaining_time_in_millis()],
    }
"""
    function = make_function(server, code, memory_mb=256, timeout_seconds=7)
    result = invoke(server, function["id"], {"k": "v"})
    output = succeeded(result)
    assert output["event"] == {"k": "v"}
    assert output["function_name"] == function["name"]
    assert str(output["version"]) == "1"
    assert output["invocation_id"] == result["invocation_id"]
    assert output["memory_limit_mb"] == 256
    # This function's 7 s (not the 30 s default), counting down as the call goes
    first, then = output["remaining"]
    assert 0 < then <= first <= 7000, output["remaining"]


def test_print_goes_to_logs_not_output(server):
    code = """\
import sys
def handler(input):
    print("to stdout")
    sys.stderr.write("to stderr\\n")
    return "the result"
"""
    function = make_function(server, code)
    result = invoke(server, function["id"])
    assert succeeded(result) == "the result"
    record = record_of(server, function["id"], result["invocation_id"])
    assert "to stdout" in record["logs"] and "to stderr" in record["logs"]
    assert json.loads(record["output"]) == "the result"
    assert "to stdout" not in record["output"]


def test_nul_characters_are_refused_not_cut_short(server):
    """JSON strings may hold U+0000, which the runtime cannot carry whole: an input holding one is a
    422 naming the input, and a result holding one is an error that says so; never cut short."""
    function = make_function(server, "def handler(input):\n    return {'got': input, 'made': 'a\\x00b'}\n")
    response = server.post("/api/invoke/" + function["id"], json={"input": "x\u0000y"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "input"]] and errors[0]["type"] == "string_nul"
    error = failed(invoke(server, function["id"], "plain"))
    assert "NUL" in error and "ResultNotSerialisable" in error, error


def test_invalid_bytes_in_logs_are_replaced_not_fatal(server):
    code = ("import os\ndef handler(input):\n    os.write(1, b'first \\xff\\xfe line\\n')\n"
            "    os.write(2, b'\\x1b[31mcolour\\x1b[0m\\n')\n    return 'ok'\n")
    function = make_function(server, code)
    result = invoke(server, function["id"])
    assert succeeded(result) == "ok"
    logs = record_of(server, function["id"], result["invocation_id"])["logs"]
    assert "first" in logs and "line" in logs and "colour" in logs, logs


def test_exception_is_an_error_with_type_and_message(server):
    code = """\
def helper():
    raise ValueError("bad value 17")

def handler(input):
    print("before the failure")
    helper()
"""
    function = make_function(server, code)
    result = invoke(server, function["id"])
    error = failed(result)
    assert "ValueError" in error and "bad value 17" in error
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "error"
    assert "ValueError" in record["error"]
    assert record["output"] == record["error"]      # as the original UI reads a failure
    assert "before the failure" in record["logs"]
    assert "helper" in record["logs"] and "Traceback" in record["logs"]    # the user's frames


def test_non_serialisable_result_is_an_error(server):
    function = make_function(server, "def handler(input):\n    return {'when': object()}\n")
    error = failed(invoke(server, function["id"]))
    assert "serialis" in error.lower() or "json" in error.lower()
    # The environment survives it
    function2 = make_function(server, "def handler(input):\n    return {1, 2} if input else 'fine'\n")
    assert "set" in failed(invoke(server, function2["id"], {"x": 1}))
    assert succeeded(invoke(server, function2["id"], {})) == "fine"


def test_syntax_error_is_an_error(server):
    function = make_function(server, "def handler(input)\n    return 1\n")
    result = invoke(server, function["id"])
    assert "SyntaxError" in failed(result)
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "error"


def test_missing_handler_is_an_error(server):
    function = make_function(server, "def main(input):\n    return 1\n")
    assert "handler" in failed(invoke(server, function["id"]))


# ---------------------------------------------------------------------------------------------------
# Limits

def test_timeout(server):
    code = ("import time\ndef handler(input):\n"
            "    if input.get('sleep'):\n        time.sleep(60)\n    return 'quick'\n")
    function = make_function(server, code, timeout_seconds=1)
    result = invoke(server, function["id"], {"sleep": True})
    error = failed(result)
    # The 1 s limit, not the minute the function asked for (that would have returned 'quick')...
    assert "timed out after 1 s" in error, error
    # ...and not earlier: the run lasted its whole second, as the server measured it
    assert result["duration_ms"] >= 900, result["duration_ms"]
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "timeout" and record["duration_ms"] == result["duration_ms"], record
    # The environment was killed: the next call starts a new one and answers normally
    again = invoke(server, function["id"], {})
    assert succeeded(again) == "quick" and again["cold_start"] is True


def test_memory_limit_is_reported_as_such(server):
    code = ("def handler(input):\n    if input.get('big'):\n"
            "        block = bytearray(200 * 1024 * 1024)\n        return len(block)\n"
            "    return 'small'\n")
    function = make_function(server, code, memory_mb=64)
    result = invoke(server, function["id"], {"big": True})
    error = failed(result)
    assert "memory" in error.lower() and "64" in error, error
    assert "timed out" not in error.lower()
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "error"
    assert 0 < record["peak_memory_kb"] <= 64 * 1024, record  # killed at the limit, never above it
    assert "memory" in record["error"].lower()
    assert succeeded(invoke(server, function["id"], {})) == "small"


def test_within_memory_limit_works(server):
    code = "def handler(input):\n    return len(bytearray(100 * 1024 * 1024))\n"
    function = make_function(server, code, memory_mb=256)
    assert succeeded(invoke(server, function["id"])) == 100 * 1024 * 1024


# ---------------------------------------------------------------------------------------------------
# Versions and env vars retire old environments

def version_code(tag):
    return "calls = 0\ndef handler(input):\n    global calls\n    calls += 1\n    return [%r, calls]\n" % tag


def test_new_code_retires_old_environments(server):
    function = make_function(server, version_code("v1"))
    assert succeeded(invoke(server, function["id"])) == ["v1", 1]
    assert succeeded(invoke(server, function["id"])) == ["v1", 2]
    updated = ok(server.put("/api/functions/" + function["id"], json={"code": version_code("v2")}))
    assert updated["active_version"] == 2
    result = invoke(server, function["id"])
    assert succeeded(result) == ["v2", 1]
    assert result["cold_start"] is True
    assert succeeded(invoke(server, function["id"])) == ["v2", 2]
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["version"] == 2


def test_limit_change_retires_old_environments(server):
    code = ("calls = 0\ndef handler(event, context):\n    global calls\n    calls += 1\n"
            "    return [context.memory_limit_mb, calls]\n")
    function = make_function(server, code, memory_mb=128)
    assert succeeded(invoke(server, function["id"])) == [128, 1]
    ok(server.put("/api/functions/" + function["id"], json={"memory_mb": 256}))
    result = invoke(server, function["id"])
    assert succeeded(result) == [256, 1] and result["cold_start"] is True


def test_rollback_runs_the_old_code(server):
    function = make_function(server, version_code("v1"))
    ok(server.put("/api/functions/" + function["id"], json={"code": version_code("v2")}))
    assert succeeded(invoke(server, function["id"]))[0] == "v2"
    rolled = ok(server.put("/api/functions/%s/versions/1" % function["id"]))
    assert rolled["active_version"] == 1
    result = invoke(server, function["id"])
    assert succeeded(result) == ["v1", 1] and result["cold_start"] is True
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["version"] == 1
    # Forward again: v2 starts fresh too
    ok(server.put("/api/functions/%s/versions/2" % function["id"]))
    assert succeeded(invoke(server, function["id"])) == ["v2", 1]


def test_env_var_change_is_seen_by_the_next_call(server):
    project = ok(server.post("/api/projects", json={"name": "env " + uuid.uuid4().hex[:8]}))
    ok(server.post("/api/projects/%s/env" % project["id"],
                   json={"key": "GREETING", "value": "hello", "is_secret": True}))
    code = "import os\ndef handler(input):\n    return os.environ.get('GREETING')\n"
    function = make_function(server, code, project_id=project["id"])
    assert succeeded(invoke(server, function["id"])) == "hello"      # secrets reach the runtime unmasked
    assert succeeded(invoke(server, function["id"])) == "hello"
    ok(server.post("/api/projects/%s/env" % project["id"], json={"key": "GREETING", "value": "bonjour"}))
    result = invoke(server, function["id"])
    assert succeeded(result) == "bonjour" and result["cold_start"] is True
    ok(server.delete("/api/projects/%s/env/GREETING" % project["id"]))
    assert succeeded(invoke(server, function["id"])) is None


ENV_VALUES = {"MULTI_LINE": "line1\nline2", "EQUALS": "a=b=c", "UNICODE": "zürich ✓ 東京", "EMPTY": "",
              "SPACES": "  padded  ", "QUOTES": "it's \"quoted\"", "lower_case": "ok", "LONG": "v" * 30000}


def test_env_values_reach_the_function_exactly(server):
    project = ok(server.post("/api/projects", json={"name": "env " + uuid.uuid4().hex[:8]}))
    for key, value in ENV_VALUES.items():
        ok(server.post("/api/projects/%s/env" % project["id"], json={"key": key, "value": value}))
    code = "import os\ndef handler(input):\n    return {k: os.environ.get(k) for k in input}\n"
    function = make_function(server, code, project_id=project["id"])
    assert succeeded(invoke(server, function["id"], list(ENV_VALUES))) == ENV_VALUES


def test_env_value_with_nul_is_refused(server):
    """An environment cannot hold NUL: the API refuses such a value rather than cut it short."""
    project = ok(server.post("/api/projects", json={"name": "env " + uuid.uuid4().hex[:8]}))
    response = server.post("/api/projects/%s/env" % project["id"],
                           json={"key": "WITH_NUL", "value": "before\u0000after", "is_secret": False})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "string_nul"
    assert ok(server.get("/api/projects/%s/env" % project["id"])) == []


def test_deleted_function_cannot_be_invoked(server):
    function = make_function(server, "def handler(input):\n    return 1\n")
    assert succeeded(invoke(server, function["id"])) == 1
    ok(server.delete("/api/functions/" + function["id"]))
    response = server.post("/api/invoke/" + function["id"], json={"input": {}})
    assert response.status_code == 404, response.text
    assert "detail" in response.json()


def test_disabled_function_answers_503_until_enabled_again(server):
    """Disabling keeps the function and its code but stops runs; its warm environment goes, so
    enabling it again starts a fresh one."""
    code = "calls = 0\ndef handler(input):\n    global calls\n    calls += 1\n    return calls\n"
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"])) == 1
    assert succeeded(invoke(server, function["id"])) == 2
    disabled = ok(server.put("/api/functions/" + function["id"], json={"status": "disabled"}))
    assert disabled["status"] == "disabled" and disabled["active_version"] == 1
    response = server.post("/api/invoke/" + function["id"], json={"input": {}})
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == "Function is disabled"
    assert ok(server.get("/api/functions/" + function["id"]))["status"] == "disabled"
    assert ok(server.put("/api/functions/" + function["id"], json={"status": "active"}))["status"] == "active"
    result = invoke(server, function["id"])
    assert succeeded(result) == 1 and result["cold_start"] is True
    # The refused call left no invocation record: only the three runs are logged
    assert len(wait_records(server, function["id"], 3)) == 3


# ---------------------------------------------------------------------------------------------------
# Concurrency: the handlers report when they ran (the sandboxes read the host's wall clock), and the
# tests count how many ran at once, which no speed of machine changes

def timed_code(seconds):
    """A handler that sleeps seconds and returns [input, started, ended]."""
    return ("import time\ndef handler(input):\n    started = time.time()\n    time.sleep(%r)\n"
            "    return [input, started, time.time()]\n" % seconds)


def most_at_once(spans):
    """The largest number of (start, end) spans that were running at the same moment."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:        # at equal times an end (-1) sorts first: touching is not overlap
        running += change
        most = max(most, running)
    return most

def test_parallel_calls_all_succeed(server):
    function = make_function(server, timed_code(slow(0.5)))
    invoke(server, function["id"], -1)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: invoke(server, function["id"], i), range(20)))
    outputs = [succeeded(r) for r in results]
    assert [output[0] for output in outputs] == list(range(20))
    assert len({r["invocation_id"] for r in results}) == 20
    # They ran side by side (not one at a time), and never more than the default cap of 8 at once
    at_once = most_at_once([output[1:] for output in outputs])
    assert 3 <= at_once <= 8, at_once
    records = wait_records(server, function["id"], 21)
    assert all(r["status"] == "success" for r in records)


def test_many_cold_starts_at_once(server):
    functions = [make_function(server, "def handler(input):\n    return input\n") for _ in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda f: invoke(server, f["id"], f["id"]), functions))
    for function, result in zip(functions, results):
        assert succeeded(result) == function["id"] and result["cold_start"] is True


def test_new_code_while_a_call_is_in_flight(server):
    code = "import time\ndef handler(input):\n    time.sleep(input.get('sleep', 0))\n    return 'v1'\n"
    function = make_function(server, code)
    invoke(server, function["id"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(invoke, server, function["id"], {"sleep": slow(3)})
        time.sleep(slow(0.3))           # the call is running in the warm environment now
        ok(server.put("/api/functions/" + function["id"], json={"code": "def handler(input):\n    return 'v2'\n"}))
        assert succeeded(invoke(server, function["id"])) == "v2"
        assert not in_flight.done()                                       # it did not wait for the old call
        assert succeeded(in_flight.result()) == "v1"                      # the old call finishes on v1


def test_delete_while_a_call_is_in_flight(server):
    code = "import time\ndef handler(input):\n    time.sleep(input.get('sleep', 0))\n    return 'done'\n"
    function = make_function(server, code)
    invoke(server, function["id"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(invoke, server, function["id"], {"sleep": slow(1)})
        time.sleep(slow(0.2))
        ok(server.delete("/api/functions/" + function["id"]))
        result = in_flight.result()
    assert result["success"] is True or isinstance(result["error"], str)
    assert server.post("/api/invoke/" + function["id"], json={}).status_code == 404
    assert ok(server.get("/api/health")) == {"status": "ok"}
    other = make_function(server, "def handler(input):\n    return 'alive'\n")
    assert succeeded(invoke(server, other["id"])) == "alive"


def test_retention_keeps_the_newest(make_server):
    server = make_server(args=["--retention", "10"])
    function = make_function(server, "def handler(input):\n    return input\n")
    for n in range(14):
        assert succeeded(invoke(server, function["id"], n)) == n
    newest_ten = list(range(13, 3, -1))

    def outputs():
        return [json.loads(r["output"]) for r in ok(server.get("/api/functions/%s/invocations" % function["id"]))]
    # The recorder writes and prunes in batches: the log settles on the newest ten
    wait_for(lambda: outputs() == newest_ten, 3, "never pruned to the newest ten: %r" % outputs())
    time.sleep(0.2)
    assert outputs() == newest_ten
    assert ok(server.get("/api/stats"))["total_invocations"] == 14     # stats count them all (README)


def test_concurrency_cap_and_queue_answer_429(make_server):
    server = make_server(args=["--max-concurrency", "1", "--queue-depth", "1"])
    code = "import time\ndef handler(input):\n    time.sleep(input.get('sleep', 0))\n    return 'done'\n"
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"])) == "done"          # warm one environment

    def call(_):                # long enough that all four arrive while the first one runs
        return server.post("/api/invoke/" + function["id"], json={"input": {"sleep": slow(1.0)}})

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(call, range(4)))
    statuses = sorted(r.status_code for r in responses)
    # One runs, one waits in the queue, the other two are turned away
    assert statuses == [200, 200, 429, 429], [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert isinstance(response.json()["detail"], str)
        else:
            assert response.json()["success"] is True
    # Once the queue drains the function answers again
    assert succeeded(invoke(server, function["id"])) == "done"
    # Only the calls that ran were recorded: the warm-up, two of the four, the last
    time.sleep(0.1)
    assert len(wait_records(server, function["id"], 4)) == 4


def test_idle_environments_are_reaped(make_server):
    idle = math.ceil(slow(1))                   # 1 s, longer where a call itself takes that long
    server = make_server(args=["--idle-seconds", str(idle)])
    function = make_function(server, COUNTER)
    assert invoke(server, function["id"])["cold_start"] is True
    time.sleep(0.3)
    assert invoke(server, function["id"])["cold_start"] is False       # idle for less than its time
    # The reaper looks once a second (assignment's heartbeat tick), and a tick can slip to the next
    # one, so an environment idle for 1 s is gone within about 3 s
    time.sleep(idle + slow(2.5))
    result = invoke(server, function["id"])
    assert result["cold_start"] is True and succeeded(result) == 1     # reaped: module state is new


def test_memory_budget_evicts_the_least_recently_used(make_server):
    # Room for two 128 MB environments
    server = make_server(args=["--memory-budget-mb", "256"])
    a, b, c = (make_function(server, COUNTER) for _ in range(3))
    calls = [(a, True), (b, True), (a, False), (b, False),
             (c, True),             # evicts a, the least recently used
             (b, False), (a, True), # a evicts c
             (c, True)]
    got = [invoke(server, f["id"])["cold_start"] for f, _ in calls]
    assert got == [cold for _, cold in calls]


def test_memory_budget_caps_environments_running_at_once(make_server):
    """With room for two 128 MB environments, four parallel 1 s calls run two at a time."""
    server = make_server(args=["--memory-budget-mb", "256"])
    function = make_function(server, timed_code(slow(1)))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: invoke(server, function["id"], i), range(4)))
    outputs = [succeeded(r) for r in results]
    assert [output[0] for output in outputs] == [0, 1, 2, 3]
    assert most_at_once([output[1:] for output in outputs]) == 2, outputs
    assert sum(r["cold_start"] for r in results) == 2, results         # two environments, each used twice


def test_server_maxima_bound_functions(make_server):
    """--max-memory-mb and --max-timeout: a function may not get more than the server allows (422
    when saved), and the defaults are lowered to them."""
    server = make_server(args=["--max-memory-mb", "256", "--max-timeout", "5"])
    code = "def handler(event, context):\n    return [context.memory_limit_mb, context.get_remaining_time_in_millis()]\n"
    within = make_function(server, code, memory_mb=256, timeout_seconds=5)
    memory, remaining = succeeded(invoke(server, within["id"]))
    assert memory == 256 and 0 < remaining <= 5000, remaining
    for field, value in [("memory_mb", 512), ("timeout_seconds", 10)]:
        response = server.post("/api/functions", json={"name": "fn_" + uuid.uuid4().hex[:8], "code": code,
                                                       field: value})
        assert response.status_code == 422, response.text
        assert ["body", field] in [e["loc"] for e in response.json()["detail"]]
    response = server.put("/api/functions/" + within["id"], json={"memory_mb": 1024})
    assert response.status_code == 422, response.text
    # Defaults are lowered to the maxima: 30 s would be over this server's 5 s
    default = make_function(server, code)
    assert default["timeout_seconds"] == 5 and default["memory_mb"] == 128
    assert succeeded(invoke(server, within["id"]))[0] == 256


# ---------------------------------------------------------------------------------------------------
# Request validation

@pytest.fixture(scope="module")
def echo(server):
    return make_function(server, "def handler(input):\n    return {'input': input}\n")


def test_body_not_json_is_400(server, echo):
    for data in [b"{not json", b"{\"input\": ", b"\xff\xfe", b"{\"input\": NaN}"]:
        response = post_raw(server, echo["id"], data)
        assert response.status_code == 400, (data, response.status_code, response.text)
        assert isinstance(response.json()["detail"], str)


def test_body_with_trailing_garbage_is_400(server, echo):
    # The control-plane endpoints refuse this (core/api.c); POST /api/invoke must too
    response = post_raw(server, echo["id"], b"{\"input\": 1} trailing")
    assert response.status_code == 400, (response.status_code, response.text)


def test_body_with_invalid_utf8_is_400_and_kills_nothing(server, echo):
    assert succeeded(invoke(server, echo["id"], "warm")) == {"input": "warm"}
    response = post_raw(server, echo["id"], b"{\"input\": \"\xff\"}")
    assert response.status_code == 400, (response.status_code, response.text)
    # The warm environment was not broken by it
    again = invoke(server, echo["id"], "still warm")
    assert succeeded(again) == {"input": "still warm"} and again["cold_start"] is False


def test_body_too_large_is_413(server, echo):
    response = post_raw(server, echo["id"], b"{\"input\": \"" + b"x" * (7 << 20) + b"\"}")
    assert response.status_code == 413, (response.status_code, response.text[:200])


def test_large_input_round_trips(server, echo):
    big = "y" * (3 << 20)
    assert succeeded(invoke(server, echo["id"], big)) == {"input": big}


def test_body_not_an_object_is_422(server, echo):
    for data in [b"[1, 2]", b"\"text\"", b"42", b"null"]:
        response = post_raw(server, echo["id"], data)
        assert response.status_code == 422, (data, response.status_code, response.text)
        assert isinstance(response.json()["detail"], list)


def test_empty_body_means_empty_input(server, echo):
    for data, content_type in [(b"", "application/json"), (b"", None), (b"{}", "application/json")]:
        response = post_raw(server, echo["id"], data, content_type)
        assert response.status_code == 200, response.text
        assert succeeded(response.json()) == {"input": {}}


def test_input_null_and_unknown_fields(server, echo):
    response = post_raw(server, echo["id"], b'{"input": [1], "extra": true}')
    assert succeeded(response.json()) == {"input": [1]}


def test_unknown_function_is_404(server):
    for function_id in ["000000000000", "nothex", "x" * 200]:
        response = server.post("/api/invoke/" + function_id, json={"input": {}})
        assert response.status_code == 404, (function_id, response.text)
        assert isinstance(response.json()["detail"], str)
    assert server.get("/api/functions/000000000000/invocations").status_code == 404


def test_invoke_needs_post(server, echo):
    assert server.get("/api/invoke/" + echo["id"]).status_code == 405


# ---------------------------------------------------------------------------------------------------
# Stats

def settled_stats(server):
    """Stats once earlier tests' batched records have landed: two equal reads 150 ms apart (the
    recorder writes a row within 50 ms), the gap stretched by slow() like every other wait, since
    on a loaded machine a batch can land later than 150 ms after the call that made it."""
    last = [ok(server.get("/api/stats"))]

    def settled():
        time.sleep(slow(0.15))
        current = ok(server.get("/api/stats"))
        if current == last[0]:
            return current
        last[0] = current
        return None
    return wait_for(settled, 20, lambda: "stats never settled: %r" % last[0])


def test_stats_count_invocations(server):
    before = settled_stats(server)
    function = make_function(server, "def handler(input):\n    if input.get('fail'):\n"
                                     "        raise RuntimeError('no')\n    return 1\n")
    for value in [{}, {}, {"fail": True}]:
        invoke(server, function["id"], value)
    wait_records(server, function["id"], 3)
    after = ok(server.get("/api/stats"))
    assert after["total_functions"] == before["total_functions"] + 1
    assert after["total_invocations"] == before["total_invocations"] + 3
    assert isinstance(after["success_rate"], int) and 0 <= after["success_rate"] <= 100
    assert isinstance(after["avg_duration_ms"], int) and after["avg_duration_ms"] >= 0


def test_stats_on_a_fresh_server(make_server):
    """API.md's fields and the added ones (README): p50/p95, cold-start share, per day, per function."""
    server = make_server()
    code = ("import time\ndef handler(input):\n    time.sleep(input.get('sleep', 0))\n"
            "    if input.get('fail'):\n        raise RuntimeError('no')\n    return 1\n")
    function = make_function(server, code)
    idle = make_function(server, "def handler(input):\n    return 0\n")
    inputs = [{"sleep": 0.1}, {"sleep": 0.05}, {"sleep": 0.1}, {"sleep": 0.15}, {"sleep": 0.2},
              {"sleep": 0.3}, {"sleep": 0.1, "fail": True}, {"sleep": 0.1}]
    for value in inputs:
        invoke(server, function["id"], value)
    records = wait_records(server, function["id"], len(inputs))
    stats = ok(server.get("/api/stats"))
    assert stats["total_functions"] == 2
    assert stats["total_invocations"] == 8
    assert stats["success_rate"] == round(7 * 100 / 8) or stats["success_rate"] == 7 * 100 // 8
    durations = sorted(r["duration_ms"] for r in records)
    assert abs(stats["avg_duration_ms"] - sum(durations) / 8) <= 1
    # Percentiles come from a histogram with buckets under 19% wide
    assert durations[3] * 0.8 - 1 <= stats["p50_duration_ms"] <= durations[4] * 1.2 + 1, (durations, stats)
    assert durations[6] * 0.8 - 1 <= stats["p95_duration_ms"] <= durations[7] * 1.2 + 1, (durations, stats)
    assert stats["cold_start_rate"] in (12, 13)                              # 1 of 8
    days = stats["invocations_per_day"]
    assert len(days) == 14
    assert days[-1]["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert days[-1]["count"] == 8 and days[-1]["errors"] == 1
    assert all(d["count"] == 0 for d in days[:-1])
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    rows = {row["function_id"]: row for row in stats["functions"]}
    assert rows[function["id"]]["count"] == 8 and rows[function["id"]]["errors"] == 1
    assert rows[function["id"]]["name"] == function["name"]
    assert durations[3] * 0.8 - 1 <= rows[function["id"]]["p50_duration_ms"] <= durations[4] * 1.2 + 1
    assert rows[idle["id"]]["count"] == 0


def test_multiprocessing_works_inside_the_sandbox(server):
    """Locks and pools need POSIX shared memory (/dev/shm, kept in the capped /tmp)."""
    code = ("import multiprocessing as mp\n"
            "def square(x):\n    return x * x\n"
            "def handler(input):\n"
            "    with mp.Lock():\n        pass\n"
            "    with mp.Pool(2) as pool:\n        return pool.map(square, input['numbers'])\n")
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"], {"numbers": [1, 2, 3]})) == [1, 4, 9]
