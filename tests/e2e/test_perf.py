"""Speed work of issue 15, by what a user notices (never by how long it took):

- records readable at once: when an invoke's answer has come back, the function's invocation list
  (and the single record) shows that call, read once, with no retry loop, many times over;
- where the time went: the invoke answer and every record carry init_ms (the cold start's share of
  duration_ms; 0 when warm) and queue_ms (time in the platform before a worker took the call);
- a burst of cold starts: many new functions invoked at once all succeed as cold starts, each with
  its own environment, and several sandboxes were being made at the same time.

One server for the module.
"""
import concurrent.futures
import uuid

from conftest import ok, slow


def make_function(server, code="def handler(event):\n    return event\n", **extra):
    body = dict(name="perf_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke(server, function_id, value=None):
    return ok(server.post("/api/invoke/" + function_id, json={"input": value if value is not None else {}},
                          timeout=slow(60)))


def test_record_is_listed_as_soon_as_the_answer_is_back(server):
    fn = make_function(server)
    for i in range(40):
        result = invoke(server, fn["id"], {"i": i})
        assert result["success"], result
        # One read each, no polling: the answer has left, so the record is there
        listed = ok(server.get("/api/functions/%s/invocations?limit=5" % fn["id"]))
        assert listed and listed[0]["id"] == result["invocation_id"], (i, result, listed[:1])
        assert listed[0]["input"] == '{"i":%d}' % i


def test_single_record_is_readable_at_once(server):
    fn = make_function(server)
    for i in range(15):
        result = invoke(server, fn["id"], {"i": i})
        record = ok(server.get("/api/functions/%s/invocations/%s" % (fn["id"], result["invocation_id"])))
        assert record["id"] == result["invocation_id"]
        assert record["status"] == "success"


def test_gateway_call_record_is_readable_at_once(server):
    project = ok(server.post("/api/projects", json={"name": "perf_" + uuid.uuid4().hex[:6]}))
    fn = make_function(server, code="def handler(event):\n    return {'statusCode': 200, 'body': 'hi'}\n",
                       project_id=project["id"])
    ok(server.post("/api/projects/%s/routes" % project["id"],
                   json={"method": "GET", "path": "/hello", "function_id": fn["id"]}))
    for _ in range(10):
        response = server.get("/api/gateway/%s/hello" % project["slug"])
        assert response.status_code == 200, response.text
        invocation_id = response.headers["X-Clowdy-Invocation-Id"]
        listed = ok(server.get("/api/functions/%s/invocations?limit=1" % fn["id"]))
        assert listed[0]["id"] == invocation_id


def test_answer_and_record_say_where_the_time_went(server):
    fn = make_function(server, code="import time\ntime.sleep(0.05)\ndef handler(event):\n    return 1\n")
    cold = invoke(server, fn["id"])
    warm = invoke(server, fn["id"])
    assert cold["cold_start"] is True and warm["cold_start"] is False
    for result in (cold, warm):
        assert isinstance(result["init_ms"], (int, float)) and result["init_ms"] >= 0
        assert isinstance(result["queue_ms"], (int, float)) and result["queue_ms"] >= 0
    # The module-level sleep is part of the cold start, which is part of the duration
    assert cold["init_ms"] > 0
    assert cold["init_ms"] <= cold["duration_ms"] + 1
    assert warm["init_ms"] == 0
    listed = {r["id"]: r for r in ok(server.get("/api/functions/%s/invocations" % fn["id"]))}
    for result in (cold, warm):
        record = listed[result["invocation_id"]]
        assert abs(record["init_ms"] - result["init_ms"]) < 0.01, (record, result)
        assert abs(record["queue_ms"] - result["queue_ms"]) < 0.01, (record, result)


def test_failed_cold_start_counts_as_init(server):
    fn = make_function(server, code="def handler(:\n")
    result = invoke(server, fn["id"])
    assert result["success"] is False
    assert result["cold_start"] is True
    assert result["init_ms"] >= 0 and result["queue_ms"] >= 0


def test_burst_of_new_functions_all_cold_and_separate(server):
    # Each function reports the pid namespace's view of its process and a fresh module global:
    # twelve cold starts at once, each in its own environment
    code = ("import os\nSEEN = []\n"
            "def handler(event):\n"
            "    SEEN.append(event['n'])\n"
            "    return {'seen': SEEN, 'pid': os.getpid(), 'ppid': os.getppid()}\n")
    functions = [make_function(server, code=code) for _ in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda pair: invoke(server, pair[1]["id"], {"n": pair[0]}),
                                enumerate(functions)))
    for n, result in enumerate(results):
        assert result["success"], result
        assert result["cold_start"] is True
        # Only its own call in its module state: nothing carried over from another function
        assert result["output"]["seen"] == [n]
        # pid 2 under its own init, as in every sandbox
        assert result["output"]["pid"] == 2 and result["output"]["ppid"] == 1
    # And back to back, one after another, as a deploy of many functions calls them
    more = [make_function(server, code=code) for _ in range(12)]
    for n, fn in enumerate(more):
        result = invoke(server, fn["id"], {"n": n})
        assert result["success"] and result["cold_start"] and result["output"]["seen"] == [n], result


def test_module_code_runs_under_the_function_cpu_quota(server):
    # The runner starts at a whole CPU (python's start is ours); the function's quota (0.5 CPU) is
    # set before its code arrives, so module-level code is held to it like the handler. A busy
    # loop of one second at module level gets at most about half a CPU (less on a busy host: only
    # the upper bound is asserted, with room for the quota's carry-over).
    code = ("import time\n"
            "start = time.monotonic(); cpu = time.process_time()\n"
            "while time.monotonic() - start < 1.0: pass\n"
            "USED = time.process_time() - cpu\n"
            "def handler(event):\n    return USED\n")
    fn = make_function(server, code=code)
    result = invoke(server, fn["id"])
    assert result["success"] and result["cold_start"], result
    assert 0 < result["output"] < 0.8, result


def test_environments_of_a_burst_share_nothing(server):
    # Six functions started together, each leaving a secret in its module globals, in /tmp and in
    # an environment variable, then looking for the others' and for their processes
    code = ("import os\n"
            "SECRET = None\n"
            "def handler(event):\n"
            "    global SECRET\n"
            "    if event.get('plant'):\n"
            "        SECRET = event['plant']\n"
            "        os.environ['SECRET'] = SECRET\n"
            "        open('/tmp/secret', 'w').write(SECRET)\n"
            "        return 'planted'\n"
            "    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "    tmp = sorted(os.listdir('/tmp'))\n"
            "    found = open('/tmp/secret').read() if 'secret' in tmp else None\n"
            "    return {'global': SECRET, 'env': os.environ.get('SECRET'), 'tmp': found, 'pids': pids}\n")
    functions = [make_function(server, code=code) for _ in range(6)]
    secrets = ["secret-%d-%s" % (n, uuid.uuid4().hex) for n in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        planted = list(pool.map(lambda n: invoke(server, functions[n]["id"], {"plant": secrets[n]}), range(6)))
    assert all(r["success"] and r["output"] == "planted" and r["cold_start"] for r in planted), planted
    for n, fn in enumerate(functions):
        seen = invoke(server, fn["id"])["output"]
        # Its own secret, in each place, and nobody else's
        assert seen["global"] == seen["env"] == seen["tmp"] == secrets[n], seen
        # Only its own process (init, pid 1, is hidden by hidepid), none of the other sandboxes'
        assert seen["pids"] == [2], seen
