"""Tests of runtime/runner.py over its real protocol (python3 -m pytest tests/runner).

Each test starts a runner as the sandbox would (fd 3 a socketpair, 0/1/2 on /dev/null) and
drives it with the messages of runtime/PROTOCOL.md.
"""
import os
import struct
import time

from conftest import Runner

ECHO = "def handler(event):\n    return event\n"


def test_ready_message(runner):
    r = runner()
    assert r.ready["pid"] == r.proc.pid
    assert r.ready["python"].count(".") == 2


def test_handler_with_one_argument(runner):
    r = runner(ECHO)
    reply = r.invoke({"a": [1, 2.5, None, True, "x"]})
    assert reply["type"] == "result" and reply["ok"] is True
    assert reply["output"] == {"a": [1, 2.5, None, True, "x"]}
    assert reply["logs"] == "" and reply["logs_truncated"] is False
    assert isinstance(reply["duration_us"], int) and reply["duration_us"] >= 0


def test_handler_with_event_and_context(runner):
    code = (
        "def handler(event, context):\n"
        "    return {'event': event, 'name': context.function_name,\n"
        "            'version': context.function_version, 'id': context.invocation_id,\n"
        "            'memory': context.memory_limit_in_mb, 'memory2': context.memory_limit_mb,\n"
        "            'aws_id': context.aws_request_id,\n"
        "            'left': context.get_remaining_time_in_millis()}\n")
    r = runner(code, function_name="hello", version=7, memory_limit_mb=256)
    out = r.invoke(3, invocation_id="abc123", timeout_ms=5000)["output"]
    assert out["event"] == 3 and out["name"] == "hello" and out["version"] == 7
    assert out["id"] == "abc123" and out["aws_id"] == "abc123"
    assert out["memory"] == 256 and out["memory2"] == 256
    assert 4000 < out["left"] <= 5000


def test_handler_with_defaults_and_methods(runner):
    code = (
        "class H:\n"
        "    def __call__(self, event, context=None):\n"
        "        return context is not None\n"
        "handler = H()\n")
    assert runner(code).invoke(1)["output"] is True
    code = "def handler(event, *rest):\n    return len(rest)\n"
    assert runner(code).invoke(1)["output"] == 1


def test_module_level_code_runs_once(runner):
    code = (
        "print('cold start')\n"
        "count = 0\n"
        "def handler(event):\n"
        "    global count\n"
        "    count += 1\n"
        "    return count\n")
    r = Runner()
    try:
        loaded = r.load(code)
        assert loaded["type"] == "loaded" and loaded["logs"] == "cold start\n"
        assert isinstance(loaded["duration_us"], int)
        assert [r.invoke()["output"] for _ in range(5)] == [1, 2, 3, 4, 5]
    finally:
        r.close()


def test_print_goes_to_logs_not_result(runner):
    code = (
        "import os, subprocess, sys\n"
        "def handler(event):\n"
        "    print('one')\n"
        "    print('two', file=sys.stderr)\n"
        "    os.write(1, b'three\\n')\n"
        "    subprocess.run(['/bin/echo', 'four'], check=True)\n"
        "    sys.stdout.write('five')\n"
        "    return 'result'\n")
    r = runner(code)
    reply = r.invoke()
    assert reply["output"] == "result"
    assert reply["logs"] == "one\ntwo\nthree\nfour\nfive"
    assert r.invoke()["logs"] == reply["logs"]   # each invocation has only its own logs


def test_huge_print_is_capped(runner):
    code = (
        "import sys\n"
        "def handler(event):\n"
        "    if event == 'one':\n"
        "        print('x' * 100_000_000)\n"
        "    elif event == 'lines':\n"
        "        line = 'y' * 99\n"
        "        for _ in range(200_000):\n"
        "            print(line)\n"
        "    else:\n"
        "        print('small')\n"
        "    return 'done'\n")
    r = runner(code)
    reply = r.invoke("one")
    assert reply["ok"] and reply["output"] == "done"
    assert reply["logs_truncated"] is True
    assert reply["logs"].startswith("x" * 1000)
    assert 64 * 1024 <= len(reply["logs"]) < 65 * 1024
    assert "logs truncated" in reply["logs"]
    reply = r.invoke("lines")
    assert reply["logs_truncated"] is True and reply["logs"].startswith("y" * 99 + "\n")
    reply = r.invoke("small")
    assert reply["logs"] == "small\n" and reply["logs_truncated"] is False


def test_log_limit_from_load(runner):
    r = runner("def handler(event):\n    print('z' * 5000)\n", log_limit_bytes=1000)
    reply = r.invoke()
    assert reply["logs_truncated"] and reply["logs"].startswith("z" * 1000 + "\n[clowdy")


def test_exception_has_user_only_traceback(runner):
    code = (
        "def helper(value):\n"
        "    raise ValueError('bad value %r' % value)\n"
        "\n"
        "def handler(event):\n"
        "    print('before')\n"
        "    return helper(event)\n")
    r = runner(code)
    reply = r.invoke(42)
    assert reply["ok"] is False
    assert reply["error_type"] == "ValueError"
    assert reply["error"] == "bad value 42"
    assert reply["logs"] == "before\n"
    tb = reply["traceback"]
    assert "runner.py" not in tb
    assert 'File "main.py", line 6, in handler' in tb
    assert 'File "main.py", line 2, in helper' in tb
    assert "raise ValueError('bad value %r' % value)" in tb
    assert tb.rstrip().endswith("ValueError: bad value 42")
    assert r.invoke(1)["error"] == "bad value 1"    # the environment keeps serving


def test_chained_exception_traceback(runner):
    code = (
        "def handler(event):\n"
        "    try:\n"
        "        {}['missing']\n"
        "    except KeyError as error:\n"
        "        raise RuntimeError('wrapped') from error\n")
    reply = runner(code).invoke()
    assert reply["error_type"] == "RuntimeError"
    assert "KeyError: 'missing'" in reply["traceback"]
    assert "direct cause" in reply["traceback"]
    assert "runner.py" not in reply["traceback"]


def test_result_not_serialisable(runner):
    code = (
        "class Thing:\n"
        "    pass\n"
        "def handler(event):\n"
        "    if event == 'set':\n"
        "        return {'a': {1, 2}}\n"
        "    if event == 'thing':\n"
        "        return [Thing()]\n"
        "    if event == 'nan':\n"
        "        return float('nan')\n"
        "    if event == 'inf':\n"
        "        return {'x': float('inf')}\n"
        "    if event == 'loop':\n"
        "        x = []\n"
        "        x.append(x)\n"
        "        return x\n"
        "    if event == 'bytes':\n"
        "        return b'raw'\n"
        "    if event == 'surrogate':\n"
        "        return '\\ud800'\n"
        "    if event == 'deep':\n"
        "        x = []\n"
        "        for _ in range(100000):\n"
        "            x = [x]\n"
        "        return x\n"
        "    if event == 'deep_raised':\n"
        "        import sys\n"
        "        sys.setrecursionlimit(100000)\n"
        "        x = []\n"
        "        for _ in range(3000):\n"
        "            x = [x]\n"
        "        return x\n"
        "    if event == 'limit':\n"
        "        import sys\n"
        "        return sys.getrecursionlimit()\n"
        "    return 'fine'\n")
    r = runner(code)
    for kind, words in [("set", "type set"), ("thing", "main.Thing"), ("nan", "NaN"),
                        ("inf", "NaN or Infinity"), ("loop", "circular"),
                        ("bytes", "type bytes"), ("surrogate", "surrogate"), ("deep", "nested too deeply"),
                        ("deep_raised", "nested too deeply")]:
        reply = r.invoke(kind)
        assert reply["ok"] is False, kind
        assert reply["error_type"] == "ResultNotSerialisable", reply
        assert reply["error"].startswith("result is not JSON serialisable"), reply
        assert words in reply["error"], (kind, reply["error"])
    assert r.invoke("ok")["output"] == "fine"
    #   The function's own recursion limit is back once the result is encoded
    assert r.invoke("limit")["output"] == 100000


def test_syntax_error_at_load():
    r = Runner()
    try:
        reply = r.load("print('loading')\ndef handler(event)\n    return 1\n")
        assert reply["type"] == "load_error"
        assert reply["error_type"] == "SyntaxError"
        assert 'File "main.py", line 2' in reply["traceback"]
        assert "runner.py" not in reply["traceback"]
        reply = r.invoke()
        assert reply["ok"] is False and reply["error_type"] == "ProtocolError"
    finally:
        r.close()


def test_load_errors():
    cases = [
        ("x = 1\n", "HandlerNotFound", "handler"),
        ("handler = 5\n", "HandlerNotCallable", "int"),
        ("def handler():\n    return 1\n", "HandlerSignatureError", "no arguments"),
        ("def handler(a, b, c):\n    return 1\n", "HandlerSignatureError", "3 required"),
        ("import no_such_module_here\ndef handler(e):\n    return e\n",
         "ModuleNotFoundError", "no_such_module_here"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError", "boom at import"),
        ("import sys\nsys.exit(3)\n", "SystemExit", "sys.exit(3)"),
        ("x = 'a\0b'\n", None, None),
    ]
    for code, error_type, words in cases:
        r = Runner()
        try:
            reply = r.load(code)
            assert reply["type"] == "load_error", (code, reply)
            if error_type:
                assert reply["error_type"] == error_type, (code, reply)
                assert words in reply["error"], (code, reply)
            assert "runner.py" not in reply["traceback"]
            assert r.call({"type": "ping"}) == {"type": "pong"}
        finally:
            r.close()
    r = Runner()
    try:
        reply = r.load("import no_such_module_here\n")
        assert 'File "main.py", line 1' in reply["traceback"]
        assert "importlib" not in reply["traceback"]
    finally:
        r.close()


def test_sys_exit_and_interrupts_in_handler(runner):
    code = (
        "import sys\n"
        "def handler(event):\n"
        "    if event == 'exit':\n"
        "        sys.exit(4)\n"
        "    if event == 'exit-none':\n"
        "        raise SystemExit\n"
        "    if event == 'interrupt':\n"
        "        raise KeyboardInterrupt\n"
        "    return 'alive'\n")
    r = runner(code)
    reply = r.invoke("exit")
    assert reply["ok"] is False and reply["error_type"] == "SystemExit"
    assert "sys.exit(4)" in reply["error"]
    assert r.invoke("exit-none")["error_type"] == "SystemExit"
    assert r.invoke("interrupt")["error_type"] == "KeyboardInterrupt"
    assert r.invoke("x")["output"] == "alive"


def test_os_exit_ends_the_runner(runner):
    r = runner("import os\ndef handler(event):\n    os._exit(7)\n")
    r.send({"type": "invoke", "invocation_id": "1", "input": None, "timeout_ms": 1000})
    r.expect_eof()
    assert r.proc.returncode == 7


def test_env_is_set_exactly(runner, monkeypatch):
    monkeypatch.setenv("HOST_SECRET", "leak")
    code = "import os\ndef handler(event):\n    return dict(os.environ)\n"
    r = runner(code, env={"GREETING": "héllo", "EMPTY": ""})
    env = r.invoke()["output"]
    assert env == {"GREETING": "héllo", "EMPTY": "", "PATH": "/usr/local/bin:/usr/bin:/bin",
                   "HOME": "/tmp", "LANG": "C.UTF-8"}
    r = Runner()
    try:
        reply = r.load(code, env={"BAD": 5})
        assert reply["type"] == "load_error" and reply["error_type"] == "ProtocolError"
    finally:
        r.close()


def test_unicode_in_and_out(runner):
    code = (
        "def handler(event):\n"
        "    print('log: ' + event)\n"
        "    return {'reversed': event[::-1], 'key ✓': 'ünï'}\n")
    r = runner(code)
    text = "héllo wörld 🌍 日本語 \"quoted\" \\u0000 \\ end"
    reply = r.invoke(text)
    assert reply["output"] == {"reversed": text[::-1], "key ✓": "ünï"}
    assert reply["logs"] == "log: " + text + "\n"


def test_nul_in_result_is_an_error_and_in_logs_is_replaced(runner):
    """The host's JSON (cJSON, C strings) cannot carry U+0000: a result holding one is refused with
    a clear error instead of being cut short; NUL in logs shows as U+FFFD."""
    r = runner("def handler(event):\n    print('a\\x00b')\n    return event\n")
    reply = r.invoke("x\u0000y")
    assert reply["ok"] is False and "NUL" in reply["error"], reply
    assert reply["logs"] == "a\ufffdb\n"
    assert r.invoke("fine")["output"] == "fine"


def test_invalid_utf8_in_logs_is_replaced(runner):
    r = runner("import os\ndef handler(event):\n    os.write(1, b'bad \\xff\\xfe end')\n")
    assert r.invoke()["logs"] == "bad \ufffd\ufffd end"


def test_big_input_round_trip(runner):
    r = runner("def handler(event):\n    return {'size': len(event), 'echo': event}\n")
    big = "0123456789abcdef" * (5 * 1024 * 1024 // 16)
    reply = r.invoke(big)
    assert reply["output"]["size"] == len(big) and reply["output"]["echo"] == big


def test_result_too_large(runner):
    r = runner("def handler(event):\n    return 'x' * 2_000_000\n", max_frame_bytes=1_000_000)
    reply = r.invoke()
    assert reply["ok"] is False and reply["error_type"] == "ResultTooLarge"


def test_a_result_of_too_many_values_is_too_large(runner):
    # The host takes at most 1,048,576 JSON values a frame (each costs it a parsed node): the
    # runner says so itself, and goes on; just under it, and with many commas in strings, is fine
    code = ("def handler(event):\n"
            "    print('before')\n"
            "    if event == 'many':\n"
            "        return [0] * 1_100_000\n"
            "    if event == 'empties':\n"
            "        return [{}, []] * 524_280\n"
            "    return [',' * 3_000_000, '[{' * 1_000_000]\n")
    r = runner(code)
    reply = r.invoke("many")
    assert reply["ok"] is False and reply["error_type"] == "ResultTooLarge", reply
    assert "more than 1048570 JSON values" in reply["error"] and reply["logs"] == "before\n"
    assert len(r.invoke("empties")["output"]) == 1_048_560
    assert len(r.invoke("strings")["output"]) == 2


def test_reply_always_fits_the_frame_limit(runner):
    code = ("def handler(event):\n"
            "    print('\\x01' * 3_000_000)\n"
            "    raise ValueError('\\x02' * 3_000_000)\n")
    r = runner(code, max_frame_bytes=1_000_000, log_limit_bytes=2_000_000)
    reply = r.invoke()
    assert reply["ok"] is False and reply["error_type"] == "ValueError"
    assert reply["logs_truncated"] is True and "over the frame limit" in reply["logs"]
    assert r.invoke()["error_type"] == "ValueError"


def test_protocol_errors_do_not_kill_the_runner(runner):
    r = runner(ECHO)
    body = b"{not json"
    r.send_raw(struct.pack(">I", len(body)) + body)
    assert r.recv()["type"] == "error"
    body = b'{"type": "invoke", "input": NaN}'
    r.send_raw(struct.pack(">I", len(body)) + body)
    assert r.recv()["type"] == "error"
    assert r.call({"type": "what"})["type"] == "error"
    assert r.call([1, 2])["type"] == "error"
    assert r.call({"type": "ping"}) == {"type": "pong"}
    second = r.load(ECHO)
    assert second["type"] == "load_error" and second["error_type"] == "ProtocolError"
    assert r.invoke("still")["output"] == "still"


def test_invoke_before_load(runner):
    reply = runner().invoke()
    assert reply["ok"] is False and reply["error_type"] == "ProtocolError"


def test_oversize_frame_ends_the_runner(runner):
    r = runner()
    r.send_raw(struct.pack(">I", 0xFFFFFFF0))
    assert r.recv()["type"] == "error"
    r.expect_eof()


def test_forked_child_does_not_answer(runner):
    code = (
        "import os\n"
        "def handler(event):\n"
        "    pid = os.fork()\n"
        "    return 'child' if pid == 0 else 'parent'\n")
    r = runner(code)
    assert r.invoke()["output"] == "parent"
    assert r.invoke()["output"] == "parent"
    assert r.call({"type": "ping"}) == {"type": "pong"}


def test_protocol_fd_is_not_inherited(runner):
    code = (
        "import subprocess\n"
        "def handler(event):\n"
        "    check = lambda fd: subprocess.run(['/bin/sh', '-c', 'true >&%d' % fd]).returncode\n"
        "    return [check(1), check(3)]\n")
    reply = runner(code).invoke()
    assert reply["output"][0] == 0 and reply["output"][1] != 0, reply


def test_garbage_on_fd3_breaks_only_this_environment(runner):
    r = runner("import os\ndef handler(event):\n    os.write(3, b'\\x00\\x00\\x00\\x02hi')\n"
               "    os.close(3)\n")
    r.send({"type": "invoke", "invocation_id": "1", "input": None, "timeout_ms": 1000})
    size, = struct.unpack(">I", r._recv_exact(4))
    assert r._recv_exact(size) == b"hi"     # the host's codec rejects this frame
    r.expect_eof()                           # and the runner goes away
    assert runner(ECHO).invoke(5)["output"] == 5


def test_async_handler(runner):
    code = (
        "import asyncio\n"
        "async def handler(event, context):\n"
        "    await asyncio.sleep(0)\n"
        "    if event == 'fail':\n"
        "        raise ValueError('async failure')\n"
        "    return event * 2\n")
    r = runner(code)
    assert r.invoke(21)["output"] == 42
    reply = r.invoke("fail")
    assert reply["error"] == "async failure"
    assert "asyncio" not in reply["traceback"] and "runner.py" not in reply["traceback"]


def test_layer_dir_is_on_path_when_present(runner):
    code = "import sys\ndef handler(event):\n    return '/opt/layer' in sys.path\n"
    assert runner(code).invoke()["output"] == os.path.isdir("/opt/layer")


def test_many_warm_round_trips_stay_in_step(runner):
    """2000 calls back to back on one environment: each answer is its own call's, none is lost or
    answers another (how fast they go is scripts/bench's business, not a test's)."""
    r = runner(ECHO)
    for i in range(2000):
        reply = r.invoke({"n": i}, invocation_id=str(i))
        assert reply["ok"] and reply["output"] == {"n": i}, (i, reply)


def test_output_between_invocations_is_dropped(runner):
    code = (
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.05)\n"
        "    print('late line')\n"
        "def handler(event):\n"
        "    if event == 'start':\n"
        "        threading.Thread(target=late).start()\n"
        "    print('now', event)\n")
    r = runner(code)
    assert r.invoke("start")["logs"] == "now start\n"
    time.sleep(0.3)
    assert r.invoke("next")["logs"] == "now next\n"


def test_custom_handler_name(runner):
    r = runner("def main_entry(event):\n    return 'custom'\n", handler="main_entry")
    assert r.invoke()["output"] == "custom"
