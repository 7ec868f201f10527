"""Hostile functions against the real server and its sandboxes (issue 3's list): one test per
attack. Each asserts a clear result for the attacker, then that the server is alive and a normal
function still answers correctly within normal time (healthy()).

Attacks on resources (fork bomb, memory, CPU) also check that the server's process tree is back
to its size after the call (no leaked processes) and, for the CPU ones, that a normal function
answers quickly *while* the attack runs (Prober). Besides issue 3's list: the same attacks from
module-level code (they run while the environment loads), ignored signals, privileged system calls
beyond ptrace/mount/unshare, network-enabled functions reaching for the host, NUL bytes in logs,
and the sandbox's privileges seen from inside and from the host.

The module shares one server; every test makes its own functions.
"""
import concurrent.futures
import contextlib
import math
import os
import re
import threading
import time
import uuid

import pytest

from conftest import descendants, ok, record_of, slow, wait_for

ID = re.compile(r"^[0-9a-f]{12}$")
# A warm call answers in milliseconds; this leaves room for a busy box, stretched by the machine's
# calibrated slowness (conftest.slow: several times under tests/vm's emulator).


# ---------------------------------------------------------------------------------------------------
# Helpers

def make_function(server, code, **extra):
    body = dict(name="evil_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def invoke(server, function_id, value=None, timeout=60):
    result = ok(server.post("/api/invoke/" + function_id, json={"input": {} if value is None else value},
                            timeout=slow(timeout)))
    assert isinstance(result["success"], bool) and ID.match(result["invocation_id"]), result
    return result


def succeeded(result):
    assert result["success"] is True, result
    return result["output"]


def failed(result):
    assert result["success"] is False, result
    assert isinstance(result["error"], str) and result["error"]
    return result["error"]


def cmdlines(pids):
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip())
        except OSError:
            pass
    return out


def wait_tree_at_most(server, size, timeout=5.0):
    """The server's process tree shrinks back to at most size (pre-started sandboxes included)."""
    last = []

    def small_enough():
        last[:] = descendants(server.proc.pid)
        return len(last) <= size
    wait_for(small_enough, timeout, lambda: "server has %d descendants, expected at most %d: %r" % (
        len(last), size, cmdlines(last)))
    return len(last)


@pytest.fixture(scope="module")
def normal(server):
    return make_function(server, "def handler(input):\n    return {'echo': input}\n")


def healthy(server, normal):
    """The server is up and a normal function answers correctly."""
    assert server.proc.poll() is None, "server died:\n" + server.log()[-3000:]
    assert ok(server.get("/api/health")) == {"status": "ok"}
    nonce = uuid.uuid4().hex
    assert succeeded(invoke(server, normal["id"], nonce)) == {"echo": nonce}


def assert_ran_its_timeout(server, function, result, seconds):
    """The record says timeout, and the run lasted its whole limit (as the server measured it):
    the limit fired, not something earlier."""
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "timeout", record
    assert record["duration_ms"] >= seconds * 1000 - 100, record


class Prober:
    """Calls the normal function in a loop on a thread while an attack runs.

    The attack is the call made inside `with prober.attack():`. check() asserts that the normal
    function never failed and that some of its calls were answered while the attack
    was in flight: the attack did not starve the rest of the server. That is an order of events,
    not a latency, so it holds on a machine of any speed."""

    def __init__(self, server, normal):
        self.server, self.normal = server, normal
        self.calls, self.failures = [], []      # (started, ended) of each successful probe
        self.window = None                      # (started, ended) of the attack
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                result = invoke(self.server, self.normal["id"], "probe")
                if result.get("output") != {"echo": "probe"}:
                    self.failures.append(result)
                else:
                    self.calls.append((started, time.monotonic()))
            except Exception as e:               # noqa: BLE001 - recorded, asserted on below
                self.failures.append(repr(e))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(slow(30))

    @contextlib.contextmanager
    def attack(self):
        # Wait for the first probe, so the probes are under way when the attack starts
        wait_for(lambda: self.calls or self.failures, 30, "no probe answered before the attack")
        started = time.monotonic()
        yield
        self.window = (started, time.monotonic())

    def check(self):
        assert not self.failures, self.failures
        assert self.window, "check() needs the attack made inside `with prober.attack():`"
        during = [c for c in self.calls if self.window[0] <= c[1] <= self.window[1]]
        assert during, "no call of the normal function was answered while the attack ran: %r %r" % (
            self.window, self.calls[-5:])


# ---------------------------------------------------------------------------------------------------
# Resources: processes, memory, CPU

FORK_BOMB = """\
import os
def handler(input):
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""


def test_fork_bomb(server, normal):
    healthy(server, normal)
    before = len(descendants(server.proc.pid))
    assert before >= 1                                      # the pre-started sandboxes, at least
    function = make_function(server, FORK_BOMB, timeout_seconds=2)
    with Prober(server, normal) as prober:
        with prober.attack():
            result = invoke(server, function["id"])
    assert "timed out after 2 s" in failed(result)          # its own limit held against it
    assert_ran_its_timeout(server, function, result, 2)
    prober.check()
    # Every forked process went with the sandbox (the pids cap is 64; slack for the pre-start pool)
    wait_tree_at_most(server, before + 6)
    healthy(server, normal)


def test_fork_bomb_that_returns(server, normal):
    """Forks up to the pids cap, then returns: the cap is hit as an error, not as a hang."""
    code = """\
import os, time
def handler(input):
    children = 0
    while True:
        try:
            pid = os.fork()
        except OSError as e:
            return {"children": children, "errno": e.errno}
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
"""
    before = len(descendants(server.proc.pid))
    function = make_function(server, code)
    output = succeeded(invoke(server, function["id"]))
    assert output["errno"] == 11                      # EAGAIN from the pids cgroup
    assert 10 <= output["children"] <= 64, output
    ok(server.delete("/api/functions/" + function["id"]))
    wait_tree_at_most(server, before + 6)
    healthy(server, normal)


def test_memory_bomb(server, normal):
    code = "def handler(input):\n    hoard = []\n    while True:\n        hoard.append(bytearray(1 << 20))\n"
    function = make_function(server, code, memory_mb=64)
    result = invoke(server, function["id"])
    error = failed(result)
    assert "memory" in error.lower() and "64" in error, error
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "error"
    assert 0 < record["peak_memory_kb"] <= 64 * 1024, record   # held at its limit
    healthy(server, normal)


def test_infinite_loop(server, normal):
    function = make_function(server, "def handler(input):\n    while True:\n        pass\n",
                             timeout_seconds=1)
    with Prober(server, normal) as prober:
        with prober.attack():
            result = invoke(server, function["id"])
    assert "timed out after 1 s" in failed(result)          # the 1 s limit: not never
    assert_ran_its_timeout(server, function, result, 1)     # and not earlier
    prober.check()
    healthy(server, normal)


def test_busy_threads(server, normal):
    code = """\
import threading
def spin():
    while True:
        pass
def handler(input):
    for _ in range(32):
        threading.Thread(target=spin, daemon=True).start()
    spin()
"""
    function = make_function(server, code, timeout_seconds=2)
    with Prober(server, normal) as prober:
        with prober.attack():
            result = invoke(server, function["id"])
    assert "timed out after 2 s" in failed(result)
    assert_ran_its_timeout(server, function, result, 2)
    prober.check()
    healthy(server, normal)


def test_cpu_quota_holds_busy_processes(server, normal):
    """Two busy processes for one second of wall time get about half a CPU between them."""
    code = """\
import os, time
def handler(input):
    pid = os.fork()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pass
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
"""
    function = make_function(server, code)
    cpu_seconds = succeeded(invoke(server, function["id"]))
    assert cpu_seconds < 0.8, cpu_seconds                   # unlimited would be about 2.0
    healthy(server, normal)


def test_signals_ignored_do_not_save_it_from_the_timeout(server, normal):
    code = ("import signal\nfor number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):\n"
            "    signal.signal(number, signal.SIG_IGN)\n"
            "def handler(input):\n    while True:\n        pass\n")
    function = make_function(server, code, timeout_seconds=1)
    result = invoke(server, function["id"])
    assert "timed out after 1 s" in failed(result)
    assert_ran_its_timeout(server, function, result, 1)
    healthy(server, normal)


@pytest.mark.parametrize("module_code, expect", [
    ("x = bytearray(200 * 1024 * 1024)", "memory"),
    ("import os\nos._exit(3)", "exited"),
    ("import sys\nsys.exit(2)", "SystemExit"),
    ("import os\nos.close(3)", ""),
    ("import os\nos.write(3, b'\\x00\\x00\\x00\\x02{}')", ""),
    ("raise MemoryError('fake')", "MemoryError"),
], ids=["memory", "os-exit", "sys-exit", "close-fd-3", "garbage-fd-3", "raise"])
def test_attacks_while_loading(server, normal, module_code, expect):
    """The same attacks from module-level code, which runs while the environment loads."""
    code = module_code + "\ndef handler(input):\n    return 'never'\n"
    function = make_function(server, code, memory_mb=64)
    result = invoke(server, function["id"])
    assert expect in failed(result)
    assert "timed out" not in result["error"]               # each ends it at once, not its timeout
    assert record_of(server, function["id"], result["invocation_id"])["status"] == "error"
    healthy(server, normal)


def test_printing_100_mb_while_loading(server, normal):
    code = ("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))\n"
            "def handler(input):\n    return 'loaded'\n")
    function = make_function(server, code)
    result = invoke(server, function["id"])
    assert succeeded(result) == "loaded"
    record = record_of(server, function["id"], result["invocation_id"])
    assert len(record["logs"]) < 1 << 20, len(record["logs"])      # capped, not 100 MB kept
    healthy(server, normal)


def test_infinite_loop_while_loading(server, normal):
    """Module-level code that never finishes: the environment is killed (a cold start may take the
    timeout plus a load allowance), other functions answer meanwhile."""
    function = make_function(server, "while True:\n    pass\ndef handler(input):\n    return 1\n",
                             timeout_seconds=1)
    with Prober(server, normal) as prober:
        with prober.attack():
            result = invoke(server, function["id"])
    assert "timed out" in failed(result)
    assert record_of(server, function["id"], result["invocation_id"])["status"] == "timeout"
    prober.check()
    healthy(server, normal)


def test_runs_unprivileged(server, normal):
    """No capabilities, no_new_privs, a seccomp filter, a non-root uid inside, and on the host an
    unprivileged uid (the user namespace maps to a range of its own)."""
    code = ("import os\ndef handler(input):\n    status = dict(line.split(':\\t', 1) for line in"
            " open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
            "    return {'uid': os.getuid(), 'pid': os.getpid(), 'CapEff': status['CapEff'].strip(),"
            " 'CapBnd': status['CapBnd'].strip(), 'NoNewPrivs': status['NoNewPrivs'].strip(),"
            " 'Seccomp': status['Seccomp'].strip()}\n")
    function = make_function(server, code)
    output = succeeded(invoke(server, function["id"]))
    assert output["uid"] != 0
    assert int(output["CapEff"], 16) == 0 and int(output["CapBnd"], 16) == 0
    assert output["NoNewPrivs"] == "1" and output["Seccomp"] == "2"
    assert output["pid"] < 10                                       # its own pid namespace
    # On the host, every runner under the server runs with a non-root uid
    runners = [pid for pid in descendants(server.proc.pid) if any("runner.py" in c for c in cmdlines([pid]))]
    assert runners
    for pid in runners:
        try:
            with open("/proc/%d/status" % pid) as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue                                                # gone meanwhile
        assert all(int(uid) >= 100000 for uid in uids), (pid, uids)
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# The file system

READ_FILES = """\
import os
def handler(input):
    out = {}
    for path in input["paths"]:
        try:
            with open(path, "rb") as f:
                out[path] = "READ: " + f.read(200).decode("latin-1")
        except OSError as e:
            out[path] = "%s %s" % (type(e).__name__, e.errno)
    found = []
    for top in ["/"]:
        for folder, dirs, files in os.walk(top):
            if folder == "/":
                dirs[:] = [d for d in dirs if d not in ("usr", "proc", "lib", "lib32", "lib64", "bin", "sbin")]
            found += [os.path.join(folder, f) for f in files if "clowdy.db" in f or f == "shadow"]
    out["found"] = found
    out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["passwd"] = open("/etc/passwd").read()
    return out
"""


def test_cannot_read_host_files(server, normal):
    db = os.path.join(server.data_dir, "clowdy.db")
    assert os.path.exists(db)
    paths = ["/etc/shadow", db, db + "-wal", server.log_path, "/root/.bashrc", "/etc/hostname",
             "/proc/1/environ", "/proc/%d/environ" % server.proc.pid, "/sys/kernel/hostname"]
    function = make_function(server, READ_FILES)
    output = succeeded(invoke(server, function["id"], {"paths": paths}))
    for path in paths:
        assert not output[path].startswith("READ:"), (path, output[path])
    assert output["found"] == []
    # Only the sandbox's own few processes are visible, never the host's
    assert len(output["pids"]) <= 4, output["pids"]
    assert server.proc.pid not in output["pids"] or server.proc.pid <= 4
    # /etc/passwd is Clowdy's own, not the host's
    with open("/etc/passwd") as f:
        host = f.read()
    assert output["passwd"] != host
    assert all(line.split(":")[0] in ("root", "sandbox", "nobody", "")
               for line in output["passwd"].splitlines()), output["passwd"]
    healthy(server, normal)


WRITE_FILES = """\
import os
def handler(input):
    out = {}
    for path in input["paths"]:
        try:
            with open(path, "w") as f:
                f.write("owned")
            out[path] = "WRITTEN"
        except OSError as e:
            out[path] = "%s %s" % (type(e).__name__, e.errno)
    return out
"""


def test_cannot_write_outside_tmp(server, normal):
    marker = "clowdy-e2e-" + uuid.uuid4().hex[:8]
    paths = ["/" + marker, "/etc/" + marker, "/usr/" + marker, "/usr/bin/" + marker, "/opt/" + marker,
             "/opt/clowdy/runner.py", "/dev/" + marker, "/proc/sys/kernel/hostname",
             "/etc/passwd", os.path.join(server.data_dir, marker)]
    function = make_function(server, WRITE_FILES)
    output = succeeded(invoke(server, function["id"], {"paths": paths + ["/tmp/" + marker]}))
    for path in paths:
        assert output[path] != "WRITTEN", path
    assert output["/tmp/" + marker] == "WRITTEN"
    # Nothing appeared on the host
    for path in ["/" + marker, "/etc/" + marker, "/usr/" + marker, "/usr/bin/" + marker,
                 "/opt/" + marker, "/tmp/" + marker, os.path.join(server.data_dir, marker)]:
        assert not os.path.exists(path), path
    healthy(server, normal)


def test_filling_tmp(server, normal):
    code = """\
def handler(input):
    written = 0
    try:
        with open("/tmp/fill", "wb") as f:
            while written < 4096:
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1
    except OSError as e:
        return {"mb": written, "errno": e.errno}
    return {"mb": written, "errno": None}
"""
    function = make_function(server, code)
    output = succeeded(invoke(server, function["id"]))
    assert output["errno"] == 28, output                    # ENOSPC: /tmp is a size-capped tmpfs
    assert 1 <= output["mb"] < 128, output                  # capped below the memory limit
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# Network and system calls

SOCKETS = """\
import socket
def handler(input):
    out = {}
    for name, family, address in [
            ("outside", socket.AF_INET, ("1.1.1.1", 80)),
            ("outside_dns", socket.AF_INET, ("8.8.8.8", 53)),
            ("server", socket.AF_INET, ("127.0.0.1", input["port"])),
            ("server_v6", socket.AF_INET6, ("::1", input["port"]))]:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(address)
            out[name] = "CONNECTED"
        except OSError as e:
            out[name] = "%s %s" % (type(e).__name__, e.errno)
    for name, family, kind in [("udp", socket.AF_INET, socket.SOCK_DGRAM), ("netlink", 16, socket.SOCK_RAW),
                               ("packet", 17, socket.SOCK_RAW)]:
        try:
            s = socket.socket(family, kind)
            if kind == socket.SOCK_DGRAM:
                s.sendto(b"x", ("1.1.1.1", 53))
            out[name] = "OPENED"
        except OSError as e:
            out[name] = "%s %s" % (type(e).__name__, e.errno)
    a, b = socket.socketpair()
    a.sendall(b"local")
    out["unix"] = b.recv(5).decode()
    return out
"""


def test_no_sockets_when_network_is_off(server, normal):
    port = int(server.url.rsplit(":", 1)[1])
    function = make_function(server, SOCKETS)
    output = succeeded(invoke(server, function["id"], {"port": port}))
    for name in ["outside", "outside_dns", "server", "server_v6", "udp", "netlink", "packet"]:
        assert output[name] not in ("CONNECTED", "OPENED"), (name, output)
    # Refused at once (no route, no socket), not left to time out (socket timeout, or ETIMEDOUT 110)
    for name in ["outside", "outside_dns", "server", "server_v6"]:
        assert "timeout" not in output[name].lower() and not output[name].endswith(" 110"), (name, output)
    assert output["unix"] == "local"                        # AF_UNIX stays usable
    healthy(server, normal)


def test_network_helper_is_charged_to_the_function(server, normal):
    """slirp4netns does a network-enabled function's packet work; it runs in that sandbox's cgroup,
    so the work counts against the function's CPU quota, memory and pids, not the server's."""
    code = "import os\ndef handler(input):\n    return os.getpid()\n"
    function = make_function(server, code, network_enabled=True)
    assert succeeded(invoke(server, function["id"])) > 0          # warm now: its sandbox is up
    helpers = []
    for pid in descendants(server.proc.pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"slirp4netns"):
            userns = [a for a in argv if a.startswith(b"--userns-path=/proc/")]
            helpers.append((pid, int(userns[0].split(b"/")[2])))
    assert helpers, "no slirp4netns under the server"

    def cgroups(pid):
        with open("/proc/%d/cgroup" % pid) as f:
            lines = [line.strip().split(":", 2) for line in f if line.strip()]
        # v1: the memory, cpu and pids hierarchies; v2: the one unified line ("0::/path")
        found = {name: path for _, names, path in lines for name in (names or "unified").split(",")
                 if name in ("memory", "cpu", "pids", "unified")}
        if len(found) > 1:
            found.pop("unified", None)     # a v1 host's unified line carries no controllers
        return found

    server_cgroups = cgroups(server.proc.pid)
    checked = 0
    for helper, sandbox_init in helpers:
        try:
            ours, sandbox = cgroups(helper), cgroups(sandbox_init)
        except OSError:
            continue                        # another test's sandbox went away meanwhile
        assert ours == sandbox, (ours, sandbox)
        assert all(path != server_cgroups.get(name) for name, path in ours.items()), ours
        checked += 1
    assert checked >= 1
    healthy(server, normal)


def test_network_enabled_still_cannot_reach_the_host(server, normal):
    """With network_enabled the function gets a user-mode network, but not the host's loopback:
    neither 127.0.0.1 (its own) nor slirp's host alias 10.0.2.2 reach the server's port."""
    port = int(server.url.rsplit(":", 1)[1])
    code = """\
import socket
def handler(input):
    out = {}
    for name, family, address in [("loopback", socket.AF_INET, ("127.0.0.1", input["port"])),
                                  ("host_alias", socket.AF_INET, ("10.0.2.2", input["port"])),
                                  ("loopback_v6", socket.AF_INET6, ("::1", input["port"]))]:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(address)
            s.sendall(b"GET /api/health HTTP/1.0\\r\\n\\r\\n")
            out[name] = "CONNECTED " + s.recv(100).decode("latin-1")
        except OSError as e:
            out[name] = "%s %s" % (type(e).__name__, e.errno)
    out["interfaces"] = [name for _, name in socket.if_nameindex()]
    out["resolv"] = open("/etc/resolv.conf").read() if __import__("os").path.exists("/etc/resolv.conf") else None
    return out
"""
    function = make_function(server, code, network_enabled=True, timeout_seconds=10)
    output = succeeded(invoke(server, function["id"], {"port": port}))
    for name in ["loopback", "host_alias", "loopback_v6"]:
        assert not output[name].startswith("CONNECTED"), (name, output)
    assert len(output["interfaces"]) >= 2, output                  # lo and the user-mode network's tap
    assert output["resolv"] and "nameserver" in output["resolv"]
    healthy(server, normal)


SYSCALLS = """\
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    ctypes.set_errno(0)
    rc = getattr(libc, name)(*args)
    return [rc, ctypes.get_errno()]
def handler(input):
    what = input["what"]
    if what == "ptrace":
        child = os.fork()
        if child == 0:
            import time
            time.sleep(5)
            os._exit(0)
        out = {"traceme": call("ptrace", 0, 0, 0, 0),            # PTRACE_TRACEME
               "attach_1": call("ptrace", 16, 1, 0, 0),          # PTRACE_ATTACH
               "attach_child": call("ptrace", 16, child, 0, 0),
               "seize_child": call("ptrace", 0x4206, child, 0, 0)}
        os.kill(child, 9)
        os.waitpid(child, 0)
        return out
    if what == "mount":
        os.makedirs("/tmp/m", exist_ok=True)
        return {"tmpfs": call("mount", b"none", b"/tmp/m", b"tmpfs", 0, None),
                "bind": call("mount", b"/usr", b"/tmp/m", None, 4096, None),      # MS_BIND
                "remount_usr": call("mount", None, b"/usr", None, 32 | 1, None),  # MS_REMOUNT, rw
                "proc": call("mount", b"proc", b"/tmp/m", b"proc", 0, None),
                "umount_usr": call("umount2", b"/usr", 2),
                "umount_proc": call("umount2", b"/proc", 2),
                "pivot_root": call("syscall", 155, b"/tmp", b"/tmp/m")}           # x86_64 pivot_root
    if what == "unshare":
        flags = {"user": 0x10000000, "mount": 0x20000, "pid": 0x20000000, "net": 0x40000000,
                 "uts": 0x4000000, "ipc": 0x8000000, "cgroup": 0x2000000}
        out = {name: call("unshare", flag) for name, flag in flags.items()}
        out["setns"] = call("setns", os.open("/proc/self/ns/net", os.O_RDONLY), 0)
        return out
    if what == "misc":
        return {"reboot": call("reboot", 0x4321FEDC),
                "swapon": call("swapon", b"/tmp/x", 0),
                "kexec": call("syscall", 246, 0, 0, 0, 0),
                "bpf": call("syscall", 321, 0, 0, 0),
                "perf": call("syscall", 298, 0, 0, -1, -1, 0),
                "keyctl": call("syscall", 250, 0, 0, 0, 0, 0),
                "init_module": call("syscall", 175, 0, 0, b"")}
"""


def assert_all_refused(output):
    for name, (rc, err) in output.items():
        assert rc == -1 and err != 0, (name, rc, err, output)


@pytest.mark.parametrize("what", ["ptrace", "mount", "unshare", "misc"])
def test_privileged_system_calls_are_refused(server, normal, what):
    function = make_function(server, SYSCALLS)
    output = succeeded(invoke(server, function["id"], {"what": what}))
    assert_all_refused(output)
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# Killing and exiting

def test_killing_its_own_runner(server, normal):
    code = "import os\ndef handler(input):\n    if input.get('kill'):\n        os.kill(os.getpid(), 9)\n    return 'alive'\n"
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"])) == "alive"
    result = invoke(server, function["id"], {"kill": True})
    error = failed(result)
    assert "signal 9" in error or "killed" in error.lower(), error
    assert record_of(server, function["id"], result["invocation_id"])["status"] == "error"
    again = invoke(server, function["id"])
    assert succeeded(again) == "alive" and again["cold_start"] is True
    healthy(server, normal)


def test_killing_pid_1_and_everything(server, normal):
    code = """\
import os
def handler(input):
    target = input["target"]
    try:
        os.kill(target, 9)
    except OSError as e:
        return "refused %d" % e.errno
    return "sent"
"""
    function = make_function(server, code)
    # pid 1 of the sandbox's pid namespace: refused (or ignored), and the environment lives on
    result = invoke(server, function["id"], {"target": 1})
    assert succeeded(result) in ("refused 1", "sent"), result
    again = invoke(server, function["id"], {"target": 99999})
    assert succeeded(again) == "refused 3" and again["cold_start"] is False      # ESRCH, still warm
    # kill(-1): every process it may signal; then it still answers (warm or fresh)
    result = invoke(server, function["id"], {"target": -1})
    if not result["success"]:
        assert "signal" in result["error"] or "exited" in result["error"], result
    assert succeeded(invoke(server, function["id"], {"target": 99999})) == "refused 3"
    healthy(server, normal)


@pytest.mark.parametrize("how, expect", [("sys.exit(3)", "SystemExit"), ("sys.exit()", "SystemExit"),
                                         ("os._exit(0)", "exited"), ("os._exit(7)", "exited"),
                                         ("os.abort()", "signal")])
def test_exiting(server, normal, how, expect):
    code = "import os, sys\ndef handler(input):\n    if input.get('exit'):\n        %s\n    return 'here'\n" % how
    function = make_function(server, code)
    result = invoke(server, function["id"], {"exit": True})
    assert expect in failed(result)
    assert record_of(server, function["id"], result["invocation_id"])["status"] == "error"
    assert succeeded(invoke(server, function["id"])) == "here"
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# Output and results

def test_printing_100_mb(server, normal):
    code = "import sys\ndef handler(input):\n    chunk = 'x' * (1 << 20)\n    for _ in range(100):\n" \
           "        sys.stdout.write(chunk)\n    print('the end')\n    return 'printed'\n"
    function = make_function(server, code)
    result = invoke(server, function["id"])
    assert succeeded(result) == "printed"
    record = record_of(server, function["id"], result["invocation_id"])
    assert record["status"] == "success"
    assert len(record["logs"]) < 1 << 20, len(record["logs"])
    assert "truncated" in record["logs"] and record["logs_truncated"] is True
    # Warm again, the next call's logs start empty
    again = invoke(server, function["id"])
    assert succeeded(again) == "printed" and again["cold_start"] is False
    healthy(server, normal)


def test_nul_byte_does_not_hide_the_rest_of_the_logs(server, normal):
    """A function must not be able to hide what it printed by writing a NUL byte first."""
    code = ("import os, sys\ndef handler(input):\n    print('before the nul', flush=True)\n"
            "    os.write(1, b'\\x00')\n    print('after the nul', flush=True)\n"
            "    sys.stderr.write('on stderr\\n')\n    return 'done'\n")
    function = make_function(server, code)
    result = invoke(server, function["id"])
    assert succeeded(result) == "done"
    logs = record_of(server, function["id"], result["invocation_id"])["logs"]
    assert "before the nul" in logs
    assert "after the nul" in logs and "on stderr" in logs, repr(logs)
    healthy(server, normal)


@pytest.mark.parametrize("value, expect", [("float('nan')", "nan"), ("float('inf')", "infinity"),
                                           ("{1, 2}", "set"), ("b'bytes'", "bytes"),
                                           ("(lambda a: a.append(a) or a)([])", "circular"),
                                           ("{(1, 2): 'tuple key'}", "")])
def test_non_json_results(server, normal, value, expect):
    code = "def handler(input):\n    return %s\n" % value
    function = make_function(server, code)
    error = failed(invoke(server, function["id"]))
    assert "serialis" in error.lower() or "json" in error.lower(), error
    assert expect in error.lower(), error
    healthy(server, normal)


def test_result_over_the_frame_limit(server, normal):
    code = "def handler(input):\n    return 'z' * (20 << 20)\n"
    function = make_function(server, code, memory_mb=256)
    error = failed(invoke(server, function["id"]))
    assert "large" in error.lower(), error
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# The protocol fd

@pytest.mark.parametrize("attack", [
    "os.close(3)",
    "os.write(3, b'\\xff\\xff\\xff\\xffgarbage')",
    "os.write(3, b'\\x00\\x00\\x00\\x05hello')",
    "os.write(3, b'\\x00\\x00\\x00\\x02{}')",
    "os.write(3, b'\\x00\\x00\\x00\\x05[1,2]')",
    "os.write(3, b'\\x00\\x00\\x00\\x0c{\"type\": 1}')",
    "os.write(3, b'\\x00\\x00\\x00\\x04\\xff\\xfe\\xfd\\xfc')",
    "os.write(3, b'\\x00\\x00\\x00\\x00')",
    "os.write(3, b'\\x00\\x00')",
    "os.dup2(os.open('/dev/null', os.O_RDWR), 3)",
    "os.shutdown(3) if hasattr(os, 'shutdown') else __import__('socket').socket(fileno=3).shutdown(2)",
])
def test_protocol_fd_attacks(server, normal, attack):
    code = "import os\ndef handler(input):\n    if input.get('attack'):\n        %s\n    return 'fine'\n" % attack
    function = make_function(server, code, timeout_seconds=3)
    assert succeeded(invoke(server, function["id"])) == "fine"
    result = invoke(server, function["id"], {"attack": True})
    failed(result)
    again = invoke(server, function["id"])
    assert succeeded(again) == "fine" and again["cold_start"] is True
    healthy(server, normal)


def test_a_result_with_too_many_values_is_refused_with_its_reason(server, normal):
    # 1.1 million small numbers fit the frame's bytes (2 MB) but would cost the worker some 50 MB
    # and a long parse: the runner refuses such a result itself, and the environment goes on
    code = ("def handler(input):\n    print('ran')\n"
            "    return [0] * 1100000 if input.get('many') else [{}] * 600000\n")
    function = make_function(server, code, memory_mb=256)
    result = invoke(server, function["id"], {"many": True})
    assert "more than 1048570 JSON values" in failed(result), result
    fine = invoke(server, function["id"])
    assert len(succeeded(fine)) == 600000 and fine["cold_start"] is False
    healthy(server, normal)


def test_a_frame_with_too_many_values_is_not_parsed(server, normal):
    # The same frame written to fd 3 by the function itself, past the runner: the worker counts
    # its values before parsing and ends the environment, saying why
    code = ("import os\ndef handler(input):\n"
            "    body = b'{\"type\":\"result\",\"ok\":true,\"output\":[' + b'0,' * 1100000 + b'0]}'\n"
            "    os.write(3, len(body).to_bytes(4, 'big') + body)\n"
            "    return 'never seen'\n")
    function = make_function(server, code, memory_mb=256)
    assert "more than 1048576 JSON values" in failed(invoke(server, function["id"]))
    healthy(server, normal)


FORGER = """import os, threading, time
started = False
def speak():
    time.sleep(0.05)
    body = b'{"type": "result", "ok": true, "output": "forged"}'
    os.write(3, len(body).to_bytes(4, "big") + body)
    open("/tmp/spoke", "w").close()
def handler(input):
    global started
    if input.get("arm") and not started:
        started = True
        threading.Thread(target=speak, daemon=True).start()
        return "armed"
    return {"spoke": os.path.exists("/tmp/spoke")}
"""


def test_a_runner_that_speaks_out_of_turn_is_ended(server, normal):
    # A thread the function left writes a frame to fd 3 while nothing is asked of the runner:
    # the environment ends, and the function's next call is a cold start in a new one
    function = make_function(server, FORGER)
    assert succeeded(invoke(server, function["id"], {"arm": True})) == "armed"

    def ended():
        result = invoke(server, function["id"])
        output = succeeded(result)
        if output == "forged":
            # The thread spoke during a call, which took the frame for its answer (the function's
            # own doing); the runner's real answer then comes with nothing asked
            return False
        # Still the same environment after the thread spoke: the frame was taken in and ignored
        assert not (output["spoke"] and not result["cold_start"]), result
        return result["cold_start"]
    wait_for(ended, 30)
    again = invoke(server, function["id"])
    assert succeeded(again) == {"spoke": False} and again["cold_start"] is False
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# Processes left behind, isolation between functions

def test_background_processes_left_behind(server, normal):
    marker = "%d.%03d" % (1000 + int(uuid.uuid4().hex[:4], 16) % 1000, 7)
    code = """\
import os, subprocess, time
def handler(input):
    if input.get("spawn"):
        subprocess.Popen(["sleep", "%s"])
        if os.fork() == 0:
            # A child that keeps looking for another function's file and writes down what it saw
            seen = []
            for _ in range(%d):
                for name in os.listdir("/tmp"):
                    if name.startswith("b-secret"):
                        seen.append(name)
                with open("/tmp/seen.tmp", "w") as f:
                    f.write(",".join(sorted(set(seen))))
                os.rename("/tmp/seen.tmp", "/tmp/seen")
                time.sleep(0.02)
            os._exit(0)
        return "spawned"
    time.sleep(0.1)
    return open("/tmp/seen").read() if os.path.exists("/tmp/seen") else "no child"
""" % (marker, 200 * slow(1))           # looks for about 4 s, stretched on a slow machine
    before = len(descendants(server.proc.pid))
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"], {"spawn": True})) == "spawned"
    other = make_function(server, "def handler(input):\n    open('/tmp/b-secret-' + input, 'w').write('x')\n"
                                  "    return 'written'\n")
    assert succeeded(invoke(server, other["id"], "1")) == "written"
    again = invoke(server, function["id"])
    assert again["cold_start"] is False
    assert succeeded(again) == ""                           # the child ran, and saw nothing of B's
    # The result did not wait for the children: the sleep it left is still running, on the host
    # under the server; deleting the function ends it
    assert any(line == "sleep " + marker for line in cmdlines(descendants(server.proc.pid)))
    ok(server.delete("/api/functions/" + function["id"]))
    wait_for(lambda: not any(line == "sleep " + marker for line in cmdlines(descendants(server.proc.pid))), 5,
             "the background sleep outlived its function")
    wait_tree_at_most(server, before + 6)
    healthy(server, normal)


def test_background_processes_die_with_a_reaped_environment(make_server):
    """Leftovers also go when the idle reaper or the memory budget retires the environment."""
    # Idle for 1 s, stretched as in test_invoke: the leftovers must be seen running before the reaper
    # takes them, and on a slow machine starting them can take a good part of a second
    server = make_server(args=["--idle-seconds", str(math.ceil(slow(1))), "--memory-budget-mb", "256"])
    marker = "%d.%03d" % (2000 + int(uuid.uuid4().hex[:4], 16) % 1000, 11)
    code = ("import os, subprocess\ndef handler(input):\n    subprocess.Popen(['sleep', input])\n"
            "    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
            "            os.execvp('sleep', ['sleep', input + '1'])\n        os._exit(0)\n    return 'left'\n")

    def leftovers():
        return [line for line in cmdlines(descendants(server.proc.pid)) if marker in line]

    def wait_both_running():
        wait_for(lambda: len(leftovers()) >= 2, 3, lambda: "not both running: %r" % leftovers())

    # Reaped when idle
    function = make_function(server, code)
    assert succeeded(invoke(server, function["id"], marker)) == "left"
    wait_both_running()
    wait_for(lambda: not leftovers(), 6, lambda: "left over after the reaper: %r" % leftovers())
    # Evicted by two other 128 MB environments
    assert succeeded(invoke(server, function["id"], marker)) == "left"
    wait_both_running()
    for _ in range(2):
        other = make_function(server, "def handler(input):\n    return 1\n")
        assert succeeded(invoke(server, other["id"])) == 1
    wait_for(lambda: not leftovers(), 3, lambda: "left over after the eviction: %r" % leftovers())


def test_other_functions_files_are_not_visible(server, normal):
    secret = uuid.uuid4().hex
    writer = make_function(server, "import os\ndef handler(input):\n"
                                   "    open('/tmp/secret-' + input, 'w').write(input)\n"
                                   "    return sorted(os.listdir('/tmp'))\n")
    reader = make_function(server, "import os\ndef handler(input):\n"
                                   "    path = '/tmp/secret-' + input\n"
                                   "    return [sorted(os.listdir('/tmp')), os.path.exists(path)]\n")
    assert "secret-" + secret in succeeded(invoke(server, writer["id"], secret))
    listing, exists = succeeded(invoke(server, reader["id"], secret))
    assert exists is False and not any(secret in name for name in listing), listing
    # The writer's own warm environment still has it (the file is real, just not shared)
    assert "secret-" + secret in succeeded(invoke(server, writer["id"], "x"))
    # Nor is it on the host
    assert not os.path.exists("/tmp/secret-" + secret)
    healthy(server, normal)


def test_other_projects_env_vars_are_not_visible(server, normal):
    secret = uuid.uuid4().hex
    code = "import os\ndef handler(input):\n    return dict(os.environ)\n"
    project_a = ok(server.post("/api/projects", json={"name": "env a " + secret[:8]}))
    project_b = ok(server.post("/api/projects", json={"name": "env b " + secret[:8]}))
    ok(server.post("/api/projects/%s/env" % project_a["id"], json={"key": "A_SECRET", "value": secret}))
    ok(server.post("/api/projects/%s/env" % project_b["id"], json={"key": "B_ONLY", "value": "b"}))
    in_a = make_function(server, code, project_id=project_a["id"])
    in_b = make_function(server, code, project_id=project_b["id"])
    alone = make_function(server, code)
    assert succeeded(invoke(server, in_a["id"]))["A_SECRET"] == secret
    for function in (in_b, alone):
        environ = succeeded(invoke(server, function["id"]))
        assert "A_SECRET" not in environ
        assert secret not in repr(environ)
    assert succeeded(invoke(server, in_b["id"]))["B_ONLY"] == "b"
    assert "B_ONLY" not in succeeded(invoke(server, alone["id"]))
    healthy(server, normal)


def test_many_attacks_at_once(server, normal):
    """A few of the above together: the server stays up and a normal function answers."""
    bombs = [make_function(server, FORK_BOMB, timeout_seconds=1),
             make_function(server, "def handler(input):\n    while True:\n        pass\n", timeout_seconds=1),
             make_function(server, "def handler(input):\n    a = []\n    while True:\n"
                                   "        a.append(bytearray(1 << 20))\n", memory_mb=64),
             make_function(server, "import os\ndef handler(input):\n    os.close(3)\n")]
    with Prober(server, normal) as prober:
        with prober.attack(), concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda f: invoke(server, f["id"]), bombs * 2))
    assert all(r["success"] is False for r in results), results
    prober.check()
    healthy(server, normal)


def test_network_enabled_cannot_reach_lan_metadata_or_host_addresses(server, normal):
    """Outbound access is for the internet: the host's own addresses (a service bound to 0.0.0.0),
    private LAN ranges and the cloud metadata address are unreachable, and fail at once."""
    import socket as pysocket
    listener = pysocket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    host_addresses = [a for a in {info[4][0] for info in pysocket.getaddrinfo(pysocket.gethostname(), None,
                                                                             pysocket.AF_INET)}
                      if not a.startswith("127.")]
    code = """\
import socket, time
def handler(input):
    out = {}
    for host in input["hosts"]:
        s = socket.socket(); s.settimeout(3)
        try:
            s.connect((host, input["port"])); out[host] = "CONNECTED"
        except OSError as e:
            out[host] = type(e).__name__
    return out
"""
    try:
        function = make_function(server, code, network_enabled=True, timeout_seconds=20)
        hosts = host_addresses + ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1"]
        output = succeeded(invoke(server, function["id"], {"port": port, "hosts": hosts}))
        for host in hosts:
            assert not output[host].startswith("CONNECTED"), (host, output)
        # Refused by a route or the host, not by waiting for the 3 s connect timeout
        assert not any("timeout" in v.lower() for v in output.values()), output
    finally:
        listener.close()
    healthy(server, normal)
