"""One tenant must not starve the rest (issue 10): memory shares, capped records, retention by bytes.

- Memory: a function with 2 GB environments may use the whole --memory-budget-mb (4096) while nobody
  else wants memory, but a call of another function that arrives meanwhile waits at most for one of its
  runs to end and then runs (never 503 while the hog's queue drains). The same holds between users:
  one owner's functions, each within its --function-share, give way to another owner's call once the
  owner holds more than --owner-share.
- Records: input, output and logs keep at most --record-max-bytes (64 KiB) each, a prefix cut at a
  character boundary, and say so (input_truncated, output_truncated, logs_truncated).
- Retention by bytes: a function's records are pruned, oldest first, to --retention-mb, so the data
  dir stops growing however big the calls are.

What is asserted is what happened: each call's status, which calls ran at once (from the handlers'
own timestamps), record sizes and flags, the database's size on disk.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import tempfile
import time
import uuid

import requests

from conftest import BINARY, ok, slow, wait_for

ID = re.compile(r"^[0-9a-f]{12}$")


# ---------------------------------------------------------------------------------------------------
# Helpers

def ok(response):
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def make_function(server, code, headers=None, **extra):
    body = dict(name="fn_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body, headers=headers))


def call(server, function_id, value):
    """POST /api/invoke: (HTTP status, JSON body)."""
    response = server.post("/api/invoke/" + function_id, json={"input": value}, timeout=slow(120))
    return response.status_code, response.json()


def timed_code(seconds):
    """A handler that sleeps seconds and returns [input, started, ended]."""
    return ("import time\ndef handler(input):\n    started = time.time()\n    time.sleep(%r)\n"
            "    return [input, started, time.time()]\n" % seconds)


def most_at_once(spans):
    """The largest number of (start, end) spans that were running at the same moment."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def running_at(spans, moment):
    return sum(1 for start, end in spans if start <= moment <= end)


def spans_of(results):
    """(start, end) of each successful timed call; asserts each succeeded with HTTP 200."""
    spans = []
    for status, body in results:
        assert status == 200 and body["success"] is True, (status, body)
        spans.append((body["output"][1], body["output"][2]))
    return spans


def records(server, function_id, headers=None):
    return ok(server.get("/api/functions/%s/invocations?limit=500" % function_id, headers=headers))


def wait_records(server, function_id, count, headers=None):
    deadline = time.time() + slow(5)
    while True:
        found = records(server, function_id, headers)
        if len(found) >= count:
            return found
        assert time.time() < deadline, (count, len(found))
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------
# Memory shares

HOG_SECONDS = 4


def hog_then_other(server, hogs, others, hog_calls, full):
    """Start hog_calls calls spread over the hog functions, then, once full of them run (the whole
    budget), one call of each other function. Returns (hog results per function, [(sent_at, result)]
    per other function), or None when the others were sent before the hogs held the memory (a slow
    machine: the caller tries again)."""
    with concurrent.futures.ThreadPoolExecutor(hog_calls + len(others)) as pool:
        hog_futures = []
        for index in range(hog_calls):
            function = hogs[index % len(hogs)]
            hog_futures.append((function["id"], pool.submit(call, server, function["id"], index)))
            time.sleep(0.05)                # in this order, so each hog gets its environments in turn
        time.sleep(slow(HOG_SECONDS) / 2)
        sent_at = time.time()
        other_futures = [pool.submit(call, server, other["id"], "other") for other in others]
        hog_results = {}
        for function_id, future in hog_futures:
            hog_results.setdefault(function_id, []).append(future.result())
        other_results = [(sent_at, future.result()) for future in other_futures]
    all_spans = [span for results in hog_results.values() for span in spans_of(results)]
    if running_at(all_spans, sent_at) < full:
        return None
    return hog_results, other_results


def test_a_function_over_its_share_gives_way_to_another(make_server):
    """Two 2048 MB environments fill the 4096 MB budget. Today another function's call is refused with
    503 for as long as the hog's backlog lasts; now it waits for one hog run to end and runs before the
    hog's later calls, while the hog never holds more than the budget."""
    server = make_server()
    hog = make_function(server, timed_code(slow(HOG_SECONDS)), memory_mb=2048)
    other = make_function(server, timed_code(0.01))
    for attempt in range(3):
        got = hog_then_other(server, [hog], [other], hog_calls=6, full=2)
        if got:
            break
    assert got, "the other call was always sent before the hog held the budget (machine too slow?)"
    hog_results, [(sent_at, (status, body))] = got
    assert status == 200, (status, body)          # today: 503 "memory budget ... in use"
    assert body["success"] is True, body
    other_started = body["output"][1]
    hog_spans = spans_of(hog_results[hog["id"]])
    assert most_at_once(hog_spans) <= 2, hog_spans    # 2 x 2048 MB is the whole budget
    # It ran as soon as one hog run ended, not after the hog's backlog: before the last hog call started
    assert other_started < max(start for start, _ in hog_spans), (other_started, hog_spans)
    # And the hog never held its two environments plus the other's memory at once
    assert running_at(hog_spans, other_started) <= 1, (other_started, hog_spans)


def test_idle_environments_of_one_function_make_room_for_another(make_server):
    """A hog's idle environments are evicted for another function's call before anyone gets 503."""
    server = make_server()
    hog = make_function(server, timed_code(slow(1)), memory_mb=2048)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        spans = spans_of(list(pool.map(lambda i: call(server, hog["id"], i), range(2))))
    assert most_at_once(spans) == 2
    for _ in range(3):
        other = make_function(server, timed_code(0.01), memory_mb=1024)
        status, body = call(server, other["id"], "after")
        assert status == 200 and body["success"] is True and body["cold_start"] is True, (status, body)


def test_a_call_that_waits_too_long_for_memory_gets_503_naming_the_shares(make_server):
    """Two functions, each within its share, fill the budget with long runs: a third function's call
    waits its queue deadline (its timeout, 1 s, plus 25 s) and gets 503 with Retry-After and a detail
    that says what holds the memory; the long runs are not disturbed."""
    server = make_server()
    # They run well past the other call's arrival plus its 26 s queue deadline
    hogs = [make_function(server, timed_code(slow(3) + 36), memory_mb=2048, timeout_seconds=120)
            for _ in range(2)]
    other = make_function(server, timed_code(0.01), timeout_seconds=1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(call, server, hog["id"], index) for index, hog in enumerate(hogs)]
        # Both hogs run (hold the budget) before the other call comes, however long their cold
        # starts take: the calls in flight that GET /api/cluster counts, not a pause
        wait_for(lambda: sum(w["running"] for w in ok(server.get("/api/cluster"))["workers"]) >= 2, 30,
                 lambda: "the two hogs are not both running: %r" % ok(server.get("/api/cluster")))
        response = server.post("/api/invoke/" + other["id"], json={"input": 1}, timeout=slow(120))
        answered_at = time.time()
        hog_results = [future.result() for future in futures]
    spans = spans_of(hog_results)
    assert most_at_once(spans) == 2, spans
    assert running_at(spans, answered_at) == 2, (answered_at, spans)   # answered while both still ran
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers.get("Retry-After"), response.headers
    detail = response.json()["detail"]
    assert "memory" in detail and "share" in detail, detail          # today: no word of shares


def token_for(data_dir, user):
    made = subprocess.run([BINARY, "token", "create", "--user", user, "--name", "t", "--data-dir", data_dir],
                          capture_output=True, text=True, timeout=slow(30))
    assert made.returncode == 0, made.stderr
    return {"Authorization": "Bearer " + made.stdout.strip()}


def test_an_owner_over_its_share_gives_way_to_another_owner(make_server):
    """Alice's two functions each stay within their 50% share, yet together hold the whole budget (over
    her 75% owner share). Bob's call waits for one of her runs to end, not for her backlog."""
    with tempfile.TemporaryDirectory(prefix="clowdy-e2e-") as data_dir:
        alice, bob = token_for(data_dir, "alice"), token_for(data_dir, "bob")
        server = make_server(data_dir=data_dir, args=["--auth", "jwt", "--jwks-url", "http://127.0.0.1:9/jwks"])
        hogs = [make_function(server, timed_code(slow(HOG_SECONDS)), headers=alice, memory_mb=1024)
                for _ in range(2)]
        other = make_function(server, timed_code(0.01), headers=bob, memory_mb=1024)
        for attempt in range(3):
            got = hog_then_other(server, hogs, [other], hog_calls=12, full=4)
            if got:
                break
        assert got, "bob's call was always sent before alice held the budget (machine too slow?)"
        hog_results, [(sent_at, (status, body))] = got
        assert status == 200, (status, body)          # today: 503
        assert body["success"] is True, body
        bob_started = body["output"][1]
        all_spans = []
        for function in hogs:
            spans = spans_of(hog_results[function["id"]])
            all_spans += spans
            assert most_at_once(spans) <= 4, spans
            # Bob ran before each of alice's functions had started its last call
            assert bob_started < max(start for start, _ in spans), (bob_started, spans)
        assert most_at_once(all_spans) <= 4, all_spans    # 4 x 1024 MB is the budget
        server.stop()


# ---------------------------------------------------------------------------------------------------
# Records: a byte cap per field, retention by bytes

ECHO = "def handler(input):\n    print('x' * len(input))\n    return input\n"


def test_big_inputs_and_outputs_are_stored_cut_and_marked(make_server):
    """A 1 MiB input and output: the caller gets all of it, the record keeps the first 64 KiB of each
    (never half a character) and says it was cut; a small call's record is whole and unmarked."""
    server = make_server()
    echo = make_function(server, ECHO)
    value = "é" + "ab€" * (1 << 18)                   # ~1.25 MiB of UTF-8, 1- 2- and 3-byte characters
    status, body = call(server, echo["id"], value)
    assert status == 200 and body["output"] == value, status    # the answer itself is not cut
    small_status, small = call(server, echo["id"], "small")
    assert small_status == 200
    wait_records(server, echo["id"], 2)
    # the whole stored records (the list may cut long fields further, and says so in list_truncated)
    big, little = (ok(server.get("/api/functions/%s/invocations/%s" % (echo["id"], answer["invocation_id"])))
                   for answer in (body, small))
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for field in ("input", "output"):
        stored = big[field]
        assert len(stored.encode()) <= 64 * 1024, (field, len(stored.encode()))   # today: all of it
        assert len(stored.encode()) > 64 * 1024 - 4, field
        assert text.startswith(stored), field
        assert big[field + "_truncated"] is True, big
    assert big["logs_truncated"] is True and len(big["logs"].encode()) <= 64 * 1024 + 256
    assert little["input"] == '"small"' and little["output"] == '"small"'
    assert little["input_truncated"] is False and little["output_truncated"] is False
    assert little["logs_truncated"] is False


def db_bytes(data_dir):
    return sum(os.path.getsize(os.path.join(data_dir, name)) for name in os.listdir(data_dir)
               if name.startswith("clowdy.db"))


def test_retention_by_bytes_bounds_the_data_dir(make_server):
    """With --retention-mb 1, sixty calls of ~120 KB each (7 MB) leave about 1 MB of records: the
    newest, oldest pruned first, and a database file that stopped growing. Another function's records
    are not pruned for it."""
    server = make_server(env={"CLOWDY_RETENTION_MB": "1"})
    echo = make_function(server, "def handler(input):\n    return input\n")
    quiet = make_function(server, "def handler(input):\n    return input\n")
    for index in range(3):
        assert call(server, quiet["id"], index)[0] == 200
    payload = "z" * 60000
    ids = []
    for index in range(60):
        status, body = call(server, echo["id"], "%03d%s" % (index, payload))
        assert status == 200 and body["success"] is True
        ids.append(body["invocation_id"])
    deadline = time.time() + slow(5)
    while True:
        kept = records(server, echo["id"])
        if kept and kept[0]["id"] == ids[-1] or time.time() > deadline:
            break
        time.sleep(0.05)
    assert kept[0]["id"] == ids[-1]
    stored = sum(len(r["input"].encode()) + len(r["output"].encode()) for r in kept)
    # The newest ones, in order; 1 MiB holds 8 of them (+10% between two trims)
    assert [r["id"] for r in kept] == ids[::-1][:len(kept)]
    assert 1 <= len(kept) <= 10, len(kept)                  # today: all 60
    assert stored <= 1.1 * (1 << 20) + 120_000, stored
    assert len(records(server, quiet["id"])) == 3
    server.stop()                                           # checkpoints the WAL into the file
    size = db_bytes(server.data_dir)
    # Retention trims after each batch of records: the file holds what is kept plus the largest
    # batch written before a trim (up to 50 ms of calls, more on a loaded machine: 3.7 MB was
    # seen in a full run); without retention it holds all 7 MB
    assert size < 5_000_000, size
