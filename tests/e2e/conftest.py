"""End-to-end harness: starts the real build/clowdy on a free port in a temp dir.

Fixtures:
  server      - one running server per test module (fast; tests must not depend on an empty store)
  make_server - factory for tests that need their own server (restart, kill -9, options)

A Server knows its base url, data dir and log; it can stop (SIGTERM), kill (SIGKILL) and start
again on the same data dir.

Helpers most files use: ok (the JSON of a 200 answer), free_port, connected_clients (how many
connections a server holds open), request_read (it has read a request off one), records and
record_of (the invocation log, which the recorder writes in batches), and wait_for, which polls for
any of these.

Time: tests assert what happened (statuses, order, how many calls overlapped), not how long it
took. Where the time is the behaviour (a timeout fires, a call ends rather than hangs) or a test
polls until something appears, the bound goes through slow(seconds), which stretches it by the
calibrated slowness of the machine under test (tests/speed.py; CLOWDY_TEST_SLOWDOWN forces it).
Such a bound is a guard against a hang, never a claim about speed.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("CLOWDY_BINARY", os.path.join(ROOT, "build", "clowdy"))

sys.path.insert(0, os.path.join(ROOT, "tests"))
import speed  # noqa: E402  (tests/speed.py)


def slowdown():
    """How many times slower than a normal machine this one runs (at least 1), measured once."""
    return speed.factor(BINARY)


def slow(seconds):
    """A time bound of seconds on a normal machine, stretched for the machine under test."""
    return seconds * slowdown()


def wait_for(predicate, seconds, message=""):
    """Poll predicate until it returns something true (returned), failing after slow(seconds).
    message says what never happened; it may be a function, called only on failure (to show the
    state at that moment)."""
    deadline = time.monotonic() + slow(seconds)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = message() if callable(message) else message
            raise AssertionError(said or "still waiting after %.1f s" % slow(seconds))
        time.sleep(0.02)


def ok(response):
    """The JSON body of a 200 answer; any other answer fails with its request, status and body."""
    assert response.status_code == 200, (response.request.method, response.request.url,
                                         response.status_code, response.text)
    return response.json()


def free_port():
    """A loopback tcp port nothing listens on just now (for a server that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connected_clients(url):
    """How many TCP connections the server at url has open (established, on its listening port):
    a test waits for this to know its request has reached the server."""
    port = "%04X" % int(url.rsplit(":", 1)[1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        count += sum(1 for row in rows if row[1].endswith(":" + port) and row[3] == "01")
    return count


def requests_read(url):
    """How many open connections the server at url has read a request off (ss: a connection that
    received bytes and holds none unread), not just had queued by the kernel, which
    connected_clients already counts."""
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-tniH", "state", "established", "( sport = :%s )" % port],
                         capture_output=True, text=True, check=True).stdout
    unread, count = None, 0
    for line in out.splitlines():
        if line[:1].isspace():          # the info line of the socket above it
            received = re.search(r"\bbytes_received:(\d+)", line)
            if unread == 0 and received and int(received.group(1)) > 0:
                count += 1
        elif line.split():
            unread = int(line.split()[0])
    return count


def request_read(url):
    """Whether the server at url has read a request off a connection. Meant for a server with no
    other connection that ever carried a request: a test waits for this before a signal that must
    find the request in flight."""
    return requests_read(url) > 0


def records(server, function_id, count, seconds=3):
    """The function's invocation log (newest first) once it holds at least count records: the
    recorder writes in batches, so a call's record may come a moment after its answer."""
    path = "/api/functions/%s/invocations" % function_id
    if count <= 0:
        return ok(server.get(path))
    last = []

    def enough():
        last[:] = ok(server.get(path))
        return list(last) if len(last) >= count else None
    return wait_for(enough, seconds,
                    lambda: "%d records, expected at least %d: %r" % (len(last), count, last))


def record_of(server, function_id, invocation_id, seconds=3):
    """The record of one invocation, once the recorder has written it."""
    path = "/api/functions/%s/invocations" % function_id
    last = []

    def found():
        last[:] = ok(server.get(path))
        return next((r for r in last if r["id"] == invocation_id), None)
    return wait_for(found, seconds, lambda: "no record of %s in %r" % (invocation_id, last))


def pytest_report_header(config):
    return "clowdy: %s, machine slowdown factor %.2f (time bounds are stretched by it)" % (
        BINARY, slowdown())


class Server:
    def __init__(self, data_dir=None, args=(), env=None):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="clowdy-e2e-")
            data_dir = self._tmp.name
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.url = None
        self.log_path = os.path.join(self.data_dir, "server.log")

    def start(self, timeout=30):
        timeout = slow(timeout)
        env = dict(os.environ)
        env.update(self.env)
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(
            [BINARY, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir] + self.args,
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("clowdy exited with %s:\n%s" % (self.proc.returncode, self.log()))
            m = re.search(r"listening on (http://[0-9.]+:[0-9]+)", self.log())
            if m:
                self.url = m.group(1)
                return self
            time.sleep(0.02)
        raise RuntimeError("clowdy did not start:\n" + self.log())

    def start_worker(self, timeout=30):
        """Start a --role worker process (it serves no HTTP): wait until it says it connected."""
        timeout = slow(timeout)
        env = dict(os.environ)
        env.update(self.env)
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen([BINARY, "--data-dir", self.data_dir] + self.args,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("clowdy worker exited:\n" + self.log())
            if "workers connected to" in self.log():
                time.sleep(slow(0.3))   # registration with the control process
                return self
            time.sleep(0.02)
        raise RuntimeError("clowdy worker did not start:\n" + self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(slow(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self._tmp:
                self._tmp.cleanup()

    # Small HTTP helpers: path is relative to the server, e.g. "/api/projects"
    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", slow(30)), **kw)

    def post(self, path, json=None, **kw):
        return requests.post(self.url + path, json=json, timeout=kw.pop("timeout", slow(30)), **kw)

    def put(self, path, json=None, **kw):
        return requests.put(self.url + path, json=json, timeout=kw.pop("timeout", slow(30)), **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + path, timeout=kw.pop("timeout", slow(30)), **kw)

    def request(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=kw.pop("timeout", slow(30)), **kw)


def descendants(pid):
    """Pids of every process under pid on the host (the sandboxes are the server's children)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def sandboxes(pid):
    """The sandboxes under pid: their pid 1s (clowdy-sandbox-init), one per sandbox. A server's
    other descendants (its zygotes, slirp4netns, the runners) are not counted."""
    found = []
    for child in descendants(pid):
        try:
            with open("/proc/%d/cmdline" % child, "rb") as f:
                if f.read().split(b"\0")[0] == b"clowdy-sandbox-init":
                    found.append(child)
        except OSError:
            pass
    return found


def start_time(pid):
    """When pid started (clock ticks since boot), or None once it is gone: with the pid, it names one
    process even if the pid is reused."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture
def make_server():
    servers = []

    def make(**kw):
        s = Server(**kw)
        servers.append(s)
        return s.start()

    yield make
    for s in servers:
        s.cleanup()


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.cleanup()
