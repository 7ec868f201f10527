"""Runner sandboxes forked from a zygote (issue 15): a python with the runner imported, owned by
the server, that clones each sandbox's pid 1; pid 2 goes back into that python instead of starting
a new one. These tests check what that must not change: the isolation (nothing of one function
reaches another: not its state, files, environment, fds, pids or memory), the view a function has
(the same as a sandbox that started its own python, with --zygote 0), and that the zygote itself
holds no privilege on the host. And what happens when a zygote dies: its sandboxes go with it,
and calls keep being answered.

One server (zygotes on) is shared by the module; the comparison starts a second with --zygote 0.
"""
import os
import signal
import uuid

from conftest import BINARY, ROOT, descendants, ok, sandboxes, slow, wait_for

ZYGOTE_UID = 67208864            # runtime/sandbox.h SANDBOX_ZYGOTE_UID


def make_function(server, code, **extra):
    body = dict(name="zyg_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def call(server, function_id, value=None):
    result = ok(server.post("/api/invoke/" + function_id, json={"input": value or {}},
                            timeout=slow(60)))
    assert result["success"] is True, result
    return result


def status_of(pid):
    """/proc/PID/status as a dict, {} once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except OSError:
        return {}


def zygotes(server):
    """The server's zygote processes: its children named clowdy-zygote."""
    return [pid for pid in descendants(server.proc.pid)
            if status_of(pid).get("Name", "").strip() == "clowdy-zygote"
            and status_of(pid).get("PPid", "").strip() == str(server.proc.pid)]


def inits_under(pid):
    """The sandboxes' pid 1s (clowdy-sandbox-init) whose parent is pid."""
    return [init for init in sandboxes(pid) if status_of(init).get("PPid", "").strip() == str(pid)]


def test_a_cold_start_is_forked_from_an_unprivileged_zygote(server):
    function = make_function(server, "def handler(event):\n    return 'hi'\n")
    assert call(server, function["id"])["output"] == "hi"
    found = wait_for(lambda: zygotes(server), 10, "the server runs no zygote")
    # The zygote: an unprivileged uid past every sandbox's range, no capabilities, no_new_privs
    for pid in found:
        status = status_of(pid)
        assert [int(uid) for uid in status["Uid"].split()] == [ZYGOTE_UID] * 4, status["Uid"]
        assert [int(gid) for gid in status["Gid"].split()] == [ZYGOTE_UID] * 4, status["Gid"]
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
    # Sandboxes made once it is ready are its children (new functions until one is: the first
    # sandboxes of a slow machine may come before its zygote is up)
    def forked():
        call(server, make_function(server, "def handler(event):\n    return 1\n")["id"])
        return [init for pid in zygotes(server) for init in inits_under(pid)]
    under = wait_for(forked, 30, "no sandbox was forked from a zygote")
    for init in under:
        uids = [int(uid) for uid in status_of(init).get("Uid", "0").split()]
        assert all(100000 <= uid < ZYGOTE_UID for uid in uids), uids


# A function that leaves marks of itself everywhere it can: module state, a module's attribute,
# builtins, os.environ, a file in /tmp, a canary in memory, a child process, and its fds
LEAVE_MARKS = '''
import builtins, json, os, subprocess, sys
CANARY = None
def handler(event):
    global CANARY, CHILD
    token = event["token"]
    CANARY = ("clowdy-canary-" + token).encode()
    json.clowdy_leak = token
    builtins.clowdy_leak = token
    os.environ["CLOWDY_LEAK"] = token
    sys.modules["clowdy_leak"] = type(sys)("clowdy_leak")
    with open("/tmp/leak-" + token, "w") as f:
        f.write(token)
    CHILD = subprocess.Popen(["/usr/bin/sleep", "300"])
    read_fd, write_fd = os.pipe()
    return {"fds": sorted(os.listdir("/proc/self/fd")), "pid": os.getpid()}
'''

# A function that looks for them from another sandbox
LOOK = '''
import builtins, json, os, re, sys
HEX = re.compile(rb"[0-9a-f]{0,32}")
def scan_memory(prefix):
    found = set()
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                data = os.pread(mem.fileno(), end - start, start)
            except OSError:
                continue
            at = data.find(prefix)
            while at >= 0:
                found.add(HEX.match(data, at + len(prefix)).group().decode())
                at = data.find(prefix, at + 1)
    return sorted(found)
def handler(event):
    return {
        "json": getattr(json, "clowdy_leak", None),
        "builtins": getattr(builtins, "clowdy_leak", None),
        "environ": os.environ.get("CLOWDY_LEAK"),
        "module": "clowdy_leak" in sys.modules,
        "tmp": sorted(os.listdir("/tmp")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "fds": sorted(os.listdir("/proc/self/fd")),
        "memory": scan_memory(b"clowdy-" + b"canary-"),
    }
'''


def test_nothing_of_one_function_reaches_another(server):
    token = uuid.uuid4().hex
    marker = make_function(server, LEAVE_MARKS)
    call(server, marker["id"], {"token": token})        # warm, holding its marks
    # Functions started after it, from the same zygotes, one per creating thread and more
    for _ in range(4):
        look = make_function(server, LOOK)
        seen = call(server, look["id"])["output"]
        assert seen["json"] is None and seen["builtins"] is None and seen["environ"] is None, seen
        assert seen["module"] is False
        assert not [name for name in seen["tmp"] if token in name], seen["tmp"]
        assert token not in seen["memory"], "the canary of another function is in this one's memory"
        # Its own process only (init is hidden: another uid), and its own fds: 0-2 (its log
        # pipe), 3 (the protocol), the log pipe's two ends, and the one listing /proc/self/fd
        assert seen["pids"] == [2], seen["pids"]
        assert seen["fds"] == ["0", "1", "2", "3", "4", "5", "6"], seen["fds"]
    # The marker still holds its canary: the scan would have found it there
    again = make_function(server, LEAVE_MARKS + LOOK.replace("def handler(event)", "def look(event)")
                          + "\nmark = handler\ndef handler(event):\n"
                          "    mark(event)\n    return look(event)\n")
    seen = call(server, again["id"], {"token": token})["output"]
    assert token in seen["memory"] and seen["json"] == token


VIEW = '''
import os, resource, signal, sys
def handler(event):
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
                  if ":\\t" in line)
    return {
        "path": sys.path, "argv": sys.argv, "orig_argv": sys.orig_argv, "executable": sys.executable,
        "flags": str(sys.flags), "modules": sorted(sys.modules), "cwd": os.getcwd(),
        "environ": sorted(os.environ), "umask": os.umask(0o22),
        "signals": {name: str(signal.getsignal(getattr(signal, name)))
                    for name in ("SIGPIPE", "SIGINT", "SIGXFSZ", "SIGTERM", "SIGCHLD", "SIGHUP")},
        "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "limits": [resource.getrlimit(getattr(resource, name)) for name in
                   ("RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_AS")],
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), os.getpid(), os.getppid()],
        "fds": sorted(os.listdir("/proc/self/fd")),
        "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
        "nnp": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
        "threads": status["Threads"].strip(), "name": status["Name"].strip(),
        "stdout": [sys.stdout.encoding, sys.stdout.line_buffering, sys.stderr.encoding],
        "mounts": sorted(line.split()[4] for line in open("/proc/self/mountinfo")),
        "cmdline": open("/proc/self/cmdline").read().split("\\0"),
    }
'''

# What a function can read of its own process that might name the host: its executable, its
# mappings, its command line, its environment
SELF = '''
import os
def handler(event):
    return {"exe": os.readlink("/proc/self/exe"), "maps": open("/proc/self/maps").read(),
            "cmdline": open("/proc/self/cmdline").read().split("\\0"),
            "environ": open("/proc/self/environ").read().split("\\0")}
'''


def test_a_function_sees_what_it_saw_without_the_zygote(server, make_server):
    classic = make_server(args=["--zygote", "0"])
    zygote_view = call(server, make_function(server, VIEW)["id"])["output"]
    classic_view = call(classic, make_function(classic, VIEW)["id"])["output"]
    different = {key: (zygote_view[key], classic_view[key]) for key in classic_view
                 if zygote_view[key] != classic_view[key]}
    assert classic_view["name"] == "python3"
    assert different == {}, {key: (sorted(set(a) - set(b)), sorted(set(b) - set(a))) if isinstance(a, list) else (a, b) for key, (a, b) in different.items()}
    assert not zygotes(classic)


def test_nothing_a_function_reads_of_itself_names_the_host(server):
    """A zygote's child does not exec: its executable, mappings and command line are the
    zygote's, which must not name the source tree, the build dir or the data dir."""
    host = {os.path.realpath(server.data_dir), ROOT, os.path.realpath(os.path.dirname(BINARY))}
    # a sandbox forked from a zygote (new functions until one is)
    seen = None
    for _ in range(20):
        seen = call(server, make_function(server, SELF)["id"])["output"]
        if "clowdy-zygote" in seen["exe"]:
            break
    assert "clowdy-zygote" in seen["exe"], seen["exe"]          # /memfd:clowdy-zygote (deleted)
    assert seen["cmdline"] == ["/usr/bin/python3", "-I", "-B", "/opt/clowdy/runner.py", ""]
    for name, text in seen.items():
        for path in host:
            assert path not in str(text), (name, path)


def test_a_killed_zygote_takes_its_sandboxes_and_calls_go_on(server):
    functions = [make_function(server, "def handler(event):\n    return event\n") for _ in range(4)]
    for function in functions:
        call(server, function["id"], {"n": 1})
    found = wait_for(lambda: zygotes(server), 10, "the server runs no zygote")
    doomed = {pid: inits_under(pid) for pid in found}
    for pid in found:
        os.kill(pid, signal.SIGKILL)
    # Every sandbox pid 1 it had made is gone with it (nothing is left behind on the host)
    wait_for(lambda: not any(status_of(init) and status_of(init).get("State", "").split()[0] != "Z"
                             for inits in doomed.values() for init in inits),
             10, "sandboxes of a killed zygote outlived it")
    # Every function still answers (its warm environment is gone: a new one, cold)
    for function in functions:
        assert call(server, function["id"], {"n": 2})["output"] == {"n": 2}
    for function in functions:
        assert call(server, function["id"], {"n": 3})["output"] == {"n": 3}
    assert ok(server.get("/api/health"))


def test_a_burst_leaves_no_extra_spares_behind(make_server):
    """Cold starts that find no spare up grow each worker's pool of pre-started sandboxes; once
    the burst is over the pool is back at --prewarm: what stays is one warm environment per
    function and the pre-started ones, nothing more."""
    server = make_server(args=["--workers", "2", "--prewarm", "2"])
    functions = [make_function(server, "def handler(event):\n    return event\n") for _ in range(10)]
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        outputs = list(pool.map(lambda f: call(server, f["id"], {"id": f["id"]})["output"], functions))
    assert outputs == [{"id": f["id"]} for f in functions]

    wait_for(lambda: len(sandboxes(server.proc.pid)) == 10 + 2 * 2, 15,
             lambda: "%d sandboxes, expected 10 warm and 4 pre-started" % len(sandboxes(server.proc.pid)))
    # and they still answer, warm
    for function in functions:
        assert call(server, function["id"], {"again": 1})["cold_start"] is False


def test_every_creator_starts_its_zygote_with_its_worker(make_server):
    """Each worker's creator threads start their zygotes when the worker starts, not at their first
    request: a creator whose first request came in the middle of a burst of cold starts made that
    call wait for a python's start. With no pre-started sandboxes (--prewarm 0) nothing asks for
    a sandbox, and still every creator (2 per worker) has its zygote, ready for the first cold
    start; the first call of each function is then forked from one."""
    server = make_server(args=["--workers", "3", "--prewarm", "0"])
    wait_for(lambda: len(zygotes(server)) == 3 * 2, slow(15),
             lambda: "%d zygotes before any call, expected 6 (3 workers x 2 creators)" % len(zygotes(server)))
    assert sandboxes(server.proc.pid) == []
    before = set(zygotes(server))
    function = make_function(server, "def handler(event):\n    return event\n")
    assert call(server, function["id"], {"n": 1})["output"] == {"n": 1}
    # The call's sandbox came from one of them: no zygote was started or replaced for it
    assert set(zygotes(server)) == before
    assert [init for init in sandboxes(server.proc.pid) if status_of(init).get("PPid", "").strip()
            in {str(pid) for pid in before}], "the call's sandbox was not forked from a zygote"


def test_the_server_threads_bear_their_actors_names(server):
    """top -H, ps -L and perf name each thread of the server after its actor, so a user can see
    which part of the server uses the CPU (all threads were "clowdy")."""
    names = set()
    for thread in os.listdir("/proc/%d/task" % server.proc.pid):
        try:
            with open("/proc/%d/task/%s/comm" % (server.proc.pid, thread)) as f:
                names.add(f.read().strip())
        except OSError:
            pass
    assert {"http", "gateway", "assignment", "placement", "worker", "recorder", "creator"} <= names, names
