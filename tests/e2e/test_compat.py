"""Compatibility with the original Clowdy UI (issue 18): what its pages read must be where they read it.

The original UI shows an invocation's `output` in its log table, so a failed call's record carries the
error message in `output` as well as in `error` (API.md), whatever made it fail: an exception, a
timeout or the memory limit.
"""
import uuid

import pytest

from conftest import ok, record_of


FAILURES = {
    "exception": (dict(code="def handler(input):\n    raise ValueError('bad value 17')\n"),
                  "error", "bad value 17"),
    "timeout": (dict(code="import time\ndef handler(input):\n    time.sleep(30)\n", timeout_seconds=1),
                "timeout", "timed out"),
    "out of memory": (dict(code="def handler(input):\n    block = bytearray(300 * 1024 * 1024)\n"
                                "    return len(block)\n", memory_mb=64),
                      "error", "memory"),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_a_failed_call_has_its_message_in_output_and_error(server, kind):
    body, status, words = FAILURES[kind]
    function = ok(server.post("/api/functions", json=dict(name="compat_" + uuid.uuid4().hex[:8], **body)))
    result = ok(server.post("/api/invoke/" + function["id"], json={"input": {}}, timeout=60))
    assert result["success"] is False, result
    assert words in result["error"].lower(), result
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == status, record
    assert record["error"] == result["error"], record
    assert record["output"] == record["error"], record


def test_a_successful_call_keeps_its_json_output(server):
    code = "def handler(input):\n    return {'n': input['n'] + 1}\n"
    function = ok(server.post("/api/functions", json=dict(name="compat_ok_" + uuid.uuid4().hex[:6], code=code)))
    result = ok(server.post("/api/invoke/" + function["id"], json={"input": {"n": 41}}))
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "success" and record["output"] == '{"n":42}', record
    assert not record.get("error"), record
    # The console shows sub-ms durations and peak memory from the record itself
    assert isinstance(record["duration_us"], int) and record["duration_us"] > 0, record
    assert abs(record["duration_ms"] - record["duration_us"] / 1000) <= 0.5, record
    assert isinstance(record["peak_memory_kb"], int) and record["peak_memory_kb"] > 0, record
