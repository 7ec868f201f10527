"""Helpers for the runner tests: start runtime/runner.py over a socketpair and talk its protocol.

The runner is started the way the sandbox starts it (python3 -I -B runner.py, fd 3 the protocol
socket, fds 0/1/2 on /dev/null), only without the sandbox. RUNNER_PYTHON picks the interpreter
(default /usr/bin/python3, the one the sandbox uses); RUNNER_PATH another runner.py (for
experiments).
"""
import json
import os
import socket
import struct
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNNER = os.environ.get("RUNNER_PATH", os.path.join(ROOT, "runtime", "runner.py"))
PYTHON = os.environ.get("RUNNER_PYTHON", "/usr/bin/python3")


class Runner:
    """One runner process and the host end of its protocol socket."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = host
        fd = child.fileno()

        def put_on_fd3():
            #   subprocess closes every fd not in pass_fds after this runs, so 3 is listed too
            if fd != 3:
                os.dup2(fd, 3)

        self.proc = subprocess.Popen(
            [PYTHON, "-I", "-B", RUNNER],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=tuple({fd, 3}), preexec_fn=put_on_fd3, cwd="/tmp")
        child.close()
        self.sock.settimeout(timeout)
        self.ready = self.recv()
        assert self.ready["type"] == "ready", self.ready

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, message):
        body = json.dumps(message).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _recv_exact(self, size):
        parts = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise EOFError("runner closed the socket")
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def recv(self):
        size, = struct.unpack(">I", self._recv_exact(4))
        body = self._recv_exact(size)
        return json.loads(body.decode("utf-8"))

    def call(self, message):
        self.send(message)
        return self.recv()

    def load(self, code, **fields):
        message = {"type": "load", "function_name": "fn", "version": 1, "code": code,
                   "env": {}, "memory_limit_mb": 128, "timeout_seconds": 30}
        message.update(fields)
        return self.call(message)

    def invoke(self, value=None, invocation_id="inv-1", timeout_ms=30000):
        return self.call({"type": "invoke", "invocation_id": invocation_id, "input": value,
                          "timeout_ms": timeout_ms})

    def expect_eof(self, timeout=10):
        self.sock.settimeout(timeout)
        assert self.sock.recv(1) == b""
        self.proc.wait(timeout)

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def runner():
    started = []

    def start(code=None, **fields):
        r = Runner()
        started.append(r)
        if code is not None:
            reply = r.load(code, **fields)
            assert reply["type"] == "loaded", reply
        return r

    yield start
    for r in started:
        r.close()
