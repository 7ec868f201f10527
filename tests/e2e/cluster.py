"""Several hosts on one machine: a control host and worker hosts as network namespaces on a bridge.

Why: a scale-out is only believable when tried as a user would run it, each host with its own network
stack, over tcp with CurveZMQ, under load, while a worker host dies, freezes, loses its link or stops.
This module builds that on one Linux machine (root needed) for tests/e2e/test_cluster.py and
scripts/bench-cluster.

How:
  - Each "host" is a network namespace (`ip netns add`) joined to a private bridge by a veth pair;
    the control host is 10.213.0.1, worker host i is 10.213.0.(1+i). The bridge has no address on
    this machine, so each run's subnet is its own L2 segment and runs never see each other.
  - Processes start with `nsenter --net=/var/run/netns/NAME` (never `ip netns exec`, which remounts
    /sys: the worker would then find no cgroups and make no sandboxes). nsenter execs, so the pid we
    hold is clowdy's own: signals (SIGKILL, SIGSTOP, SIGCONT, SIGTERM) go straight to it.
  - The link between control and workers is tcp with CurveZMQ: the control host's keys, and each
    worker host's own keys, admitted by copying its client.cert into the control's clients/.
  - The control process serves HTTP on 127.0.0.1 inside its namespace (local auth wants loopback),
    so HTTP clients run on threads that entered that namespace (setns(2) is per thread); the test's
    main thread stays in the machine's own namespace. Cluster.executor() gives such threads,
    Cluster.get/post run one request on one of them.
  - A link goes down and up on the bridge side of the host's veth (`ip link set ... down`): the host
    keeps its address and routes and sees only a lost carrier, like a pulled cable.
  - With cpu=Q, each worker host gets its own CPU budget: a cgroup with a quota of Q CPUs holding the
    worker process, and the worker's sandboxes below it (--cgroup names that cgroup). v1 (cpu
    controller, cpu.cfs_quota_us) and v2 (cpu.max; the worker itself then sits in a sibling leaf with
    the same quota, since a v2 cgroup with limited children may hold no process).
  - Names carry this process's pid and a sequence ("clowdy-<pid>-<n>-..."), so parallel runs do not
    clash; close() removes everything (processes, namespaces, bridge, cgroups, files) even after a
    failure, and a new Cluster first removes what runs of dead pids left behind.
"""
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import http.client

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("CLOWDY_BINARY", os.path.join(ROOT, "build", "clowdy"))
NETNS_DIR = "/var/run/netns"
CGROUP_ROOT = "/sys/fs/cgroup"
SUBNET = "10.213.0."
WORKER_PORT = 7100
CLONE_NEWNET = 0x40000000

_sequence = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*argv, check=True):
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), result.stderr.strip()))
    return result


def _alive(pid):
    """pid runs (a zombie, killed but not yet reaped, does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def enter_netns(fd):
    """Move the calling thread into the network namespace open on fd (sockets it opens from now on
    live there)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns into the namespace on fd %d failed" % fd)


# ---------------------------------------------------------------------------------------------------
# cgroups: one CPU budget per worker host

def cgroup_version():
    return 2 if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")) else 1


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


class CpuBudget:
    """A cgroup named name with a quota of cpus CPUs. procs_file is where the worker process goes;
    --cgroup name puts its sandboxes below it."""

    def __init__(self, name, cpus, weight=None):
        """cpus None: no quota (a group of its own, for its weight). weight: cpu.shares (v1; 1024
        is the kernel's default), scaled to cpu.weight in v2."""
        self.name, self.cpus = name, cpus
        period = 100000
        quota = max(1000, int(cpus * period)) if cpus else None
        if cgroup_version() == 1:
            self.dirs = [os.path.join(CGROUP_ROOT, c, name) for c in ("cpu", "memory", "pids")]
            cpu_dir = self.dirs[0]
            os.makedirs(cpu_dir, exist_ok=True)
            if quota:
                _write(os.path.join(cpu_dir, "cpu.cfs_period_us"), str(period))
                _write(os.path.join(cpu_dir, "cpu.cfs_quota_us"), str(quota))
            if weight:
                _write(os.path.join(cpu_dir, "cpu.shares"), str(int(weight)))
            self.procs_file = os.path.join(cpu_dir, "cgroup.procs")
        else:
            root_control = os.path.join(CGROUP_ROOT, "cgroup.subtree_control")
            _write(root_control, "+cpu +memory +pids")
            sandboxes = os.path.join(CGROUP_ROOT, name)
            leaf = sandboxes + "-proc"
            self.dirs = [sandboxes, leaf]
            for d in self.dirs:
                os.makedirs(d, exist_ok=True)
                if quota:
                    _write(os.path.join(d, "cpu.max"), "%d %d" % (quota, period))
                if weight:
                    _write(os.path.join(d, "cpu.weight"), str(max(1, min(10000, int(weight * 100 / 1024)))))
            self.procs_file = os.path.join(leaf, "cgroup.procs")

    def remove(self):
        """Kill what is left in the cgroups, then remove them, children first."""
        for top in self.dirs:
            remove_cgroup_tree(top)


def remove_cgroup_tree(top):
    if not os.path.isdir(top):
        return
    for _ in range(50):
        dirs = [d for d, _, _ in os.walk(top)]
        for d in sorted(dirs, key=len, reverse=True):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except (ProcessLookupError, ValueError):
                            pass
            except OSError:
                pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        if not os.path.isdir(top):
            return
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------------
# Leftovers of runs whose process is gone

def remove_netns(name):
    """Kill what still runs in namespace name, then delete it (a namespace with a process in it
    would outlive its name)."""
    for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _run("ip", "netns", "del", name, check=False)


def remove_leftovers():
    """Namespaces, bridges and cgroups named after a pid that no longer runs."""
    listing = _run("ip", "netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"clowdy-(\d+)-\d+-", name)
        if m and not _alive(int(m.group(1))):
            remove_netns(name)
    for line in _run("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.match(r"\d+: (cb(\d+)x\d+)", line)
        if m and not _alive(int(m.group(2))):
            _run("ip", "link", "del", m.group(1), check=False)
    controllers = ["cpu", "memory", "pids"] if cgroup_version() == 1 else [""]
    for c in controllers:
        base = os.path.join(CGROUP_ROOT, c)
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            m = re.match(r"clowdy-(\d+)-\d+-", entry)
            if m and not _alive(int(m.group(1))):
                remove_cgroup_tree(os.path.join(base, entry))


# ---------------------------------------------------------------------------------------------------
# Hosts

class Host:
    """One namespace with one clowdy process in it (control or worker)."""

    def __init__(self, cluster, role, index):
        self.cluster, self.role, self.index = cluster, role, index
        tag = "ctl" if role == "control" else "w%d" % index
        self.name = "%s-%s" % (cluster.prefix, tag)                       # namespace
        self.veth = "cv%dx%dh%d" % (os.getpid(), cluster.seq, index)      # bridge side
        self.peer = "cv%dx%dn%d" % (os.getpid(), cluster.seq, index)      # host side
        self.ip = SUBNET + str(1 + index)
        self.dir = os.path.join(cluster.dir, tag)
        self.data_dir = os.path.join(self.dir, "data")
        self.keys = os.path.join(self.dir, "keys")
        self.log_path = os.path.join(self.dir, "log")
        self.proc = None
        self.budget = None
        self.cgroup_name = None
        self.starts = 0
        os.makedirs(self.data_dir, exist_ok=True)

    def create(self):
        _run("ip", "netns", "add", self.name)
        self.cluster._namespaces.append(self.name)
        # Held open for the cluster's life: threads and processes enter the namespace through this
        # fd, which names it even if something unmounts /var/run/netns/NAME meanwhile
        self.ns_fd = os.open(os.path.join(NETNS_DIR, self.name), os.O_RDONLY | os.O_CLOEXEC)
        self.cluster._fds.append(self.ns_fd)
        _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.peer)
        _run("ip", "link", "set", self.peer, "netns", self.name)
        _run("ip", "link", "set", self.veth, "master", self.cluster.bridge, "up")
        _run("ip", "-n", self.name, "addr", "add", self.ip + "/24", "dev", self.peer)
        _run("ip", "-n", self.name, "link", "set", self.peer, "up")
        _run("ip", "-n", self.name, "link", "set", "lo", "up")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, args, env):
        """Start clowdy in this host's namespace (and CPU budget, if any)."""
        full_env = dict(os.environ)
        full_env.update(env)
        argv = ["nsenter", "--net=/proc/%d/fd/%d" % (os.getpid(), self.ns_fd), "--",
                self.cluster.binary, "--data-dir", self.data_dir] + list(args)
        if self.budget:
            # Join the cgroup first, then exec: the worker and all it starts are inside the quota
            argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', self.budget.procs_file] + argv
        self.log = open(self.log_path, "ab")
        self.log_start = self.log.tell()
        self.starts += 1
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def environments(self):
        """How many function runners (environments, warm or busy) live under this host's worker."""
        if not self.running():
            return 0
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        parent = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry))
        count, stack = 0, [self.proc.pid]
        while stack:
            for child in children.get(stack.pop(), []):
                stack.append(child)
                try:
                    with open("/proc/%d/cmdline" % child, "rb") as f:
                        count += b"runner.py" in f.read()
                except OSError:
                    pass
        return count

    # Events ------------------------------------------------------------------------------------
    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """kill -9: gone at once, no goodbye; its sandboxes die with it (PR_SET_PDEATHSIG)."""
        self.signal(signal.SIGKILL)
        self.wait_exit(10)

    def pause(self):
        self.signal(signal.SIGSTOP)

    def resume(self):
        self.signal(signal.SIGCONT)

    def terminate(self, timeout=60):
        """A planned stop (SIGTERM); returns the exit code once the process has ended."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout):
        if not self.proc:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def link_down(self):
        _run("ip", "link", "set", self.veth, "down")

    def link_up(self):
        _run("ip", "link", "set", self.veth, "up")

    def stop_all(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


class Cluster:
    """control + worker hosts. Use as a context manager, or call close() in a finally.

      workers       worker hosts
      worker_args   extra options of each worker process (e.g. ["--workers", "1"])
      control_args  extra options of the control process
      cpu           CPUs each worker host may use (a cgroup quota), or None for no budget
      weight        with cpu: the CPU weight of each host's cgroup, the control's included (cpu.shares,
                    default the kernel's 1024). On a busy machine a group of the default weight gets
                    less than its quota; a higher one makes the quota the limit
      curve         CurveZMQ on the tcp link (default on)
    """

    def __init__(self, workers=2, control_args=(), worker_args=(), cpu=None, curve=True,
                 binary=None, start_timeout=60, weight=None):
        remove_leftovers()
        self.binary = binary or BINARY
        self.seq = next(_sequence)
        self.prefix = "clowdy-%d-%d" % (os.getpid(), self.seq)
        self.bridge = "cb%dx%d" % (os.getpid(), self.seq)
        self.dir = tempfile.mkdtemp(prefix=self.prefix + "-")
        self.control_args = list(control_args)
        self.worker_args = list(worker_args)
        self.cpu, self.curve, self.weight = cpu, curve, weight
        self.start_timeout = start_timeout
        self.endpoint = "tcp://%s%d:%d" % (SUBNET, 1, WORKER_PORT)
        self._namespaces = []
        self._fds = []
        self._bridge_made = False
        self._executor = None
        self._local = threading.local()
        self.url = None
        self.control = Host(self, "control", 0)
        self.workers = [Host(self, "worker", i + 1) for i in range(workers)]
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def hosts(self):
        return [self.control] + self.workers

    # Building --------------------------------------------------------------------------------
    def _build(self):
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _run("ip", "link", "set", self.bridge, "up")
        for host in self.hosts:
            host.create()
        if self.curve:
            self._make_keys()
        if self.cpu and self.weight:
            self.control.budget = CpuBudget("%s-ctl" % self.prefix, None, self.weight)
        self._start_control()
        for host in self.workers:
            if self.cpu:
                host.cgroup_name = "%s-w%d" % (self.prefix, host.index)
                host.budget = CpuBudget(host.cgroup_name, self.cpu, self.weight)
            self.start_worker(host)

    def _keys(self, directory):
        _run(self.binary, "keys", "--curve-dir", directory)

    def _make_keys(self):
        self._keys(self.control.keys)
        for host in self.workers:
            self._keys(host.keys)
            shutil.copy(os.path.join(self.control.keys, "server.cert"), os.path.join(host.keys, "server.cert"))
            os.unlink(os.path.join(host.keys, "server.cert_secret"))
            shutil.copy(os.path.join(host.keys, "client.cert"),
                        os.path.join(self.control.keys, "clients", "worker-%d.cert" % host.index))

    def _env(self, host):
        env = {"CLOWDY_ENDPOINT_WORKER": self.endpoint}
        if self.curve:
            env["CLOWDY_CURVE_DIR"] = host.keys
        return env

    def _start_control(self):
        host = self.control
        host.spawn(["--role", "control", "--listen", "127.0.0.1:0"] + self.control_args, self._env(host))
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not host.running():
                raise RuntimeError("control exited:\n" + host.log_text(host.log_start))
            m = re.search(r"listening on (http://[0-9.]+:[0-9]+)", host.log_text(host.log_start))
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            time.sleep(0.02)
        raise RuntimeError("control did not start:\n" + host.log_text(host.log_start))

    def start_worker(self, host, wait=True):
        """(Re)start a worker host's process; with wait, until the control process has it."""
        since = self.control.log_size()
        args = ["--role", "worker"] + self.worker_args
        if host.cgroup_name:
            args += ["--cgroup", host.cgroup_name]
        host.spawn(args, self._env(host))
        if wait:
            self.wait_registered(host, since)
        return host

    def registrations(self, host, since=0):
        """How many of host's worker actors the control process registered since log offset since."""
        if not host.pid:
            return 0
        text = self.control.log_text(since)
        return len(re.findall(r"worker \S*-%d-\d+\S* (?:joined|registered|is back|rejoined)" % host.pid, text))

    def cluster_view(self):
        """GET /api/cluster's workers, or None when the control process has no such endpoint."""
        try:
            status, body = self.request("GET", "/api/cluster")
        except OSError:
            return None
        if status != 200:
            return None
        try:
            return json.loads(body).get("workers", [])
        except ValueError:
            return None

    def worker_entries(self, host):
        """host's workers in GET /api/cluster (matched by pid in the worker id, or by address)."""
        view = self.cluster_view()
        return None if view is None else _entries_of(view, host)

    def running_calls(self):
        """{worker host name: calls in flight there} from one GET /api/cluster, or None without that
        view. A worker's "running" counts the calls whose run went out to it and has not ended (a
        call still being placed is on no worker yet): the calls its loss would fail. Unlike the
        processes under a worker, it counts no spare sandbox, zygote or idle environment."""
        view = self.cluster_view()
        if view is None:
            return None
        return {host.name: sum(int(w.get("running") or 0) for w in _entries_of(view, host))
                for host in self.workers}

    def wait_registered(self, host, since=0, timeout=None):
        """Until the control process has host's workers (its log says they joined, or /api/cluster
        shows them alive)."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if not host.running():
                raise RuntimeError("worker %s exited:\n%s" % (host.name, host.log_text(host.log_start)))
            entries = self.worker_entries(host)
            if entries and all(str(e.get("state", "alive")) in ("alive", "ready", "idle", "busy", "up")
                               for e in entries):
                return entries
            if entries is None and self.registrations(host, since) > 0:
                time.sleep(0.3)     # the other worker actors of the process, registering alongside
                return True
            time.sleep(0.05)
        raise RuntimeError("worker %s never registered with the control process:\n%s\n--- control:\n%s" % (
            host.name, host.log_text(host.log_start)[-3000:], self.control.log_text()[-3000:]))

    def is_member(self, host, since=0):
        """host is a working member again after an event (control log offset since): GET
        /api/cluster shows its workers ready, or (without that endpoint) the log shows no drop of
        them since, or a join after the last drop."""
        if not host.running():
            return False
        entries = self.worker_entries(host)
        if entries is not None:
            return bool(entries) and all(e.get("state") in ("ready", "alive", "idle", "busy") for e in entries)
        text = self.control.log_text(since)
        gone = [m.end() for m in re.finditer(r"worker \S*-%d-\d+ is gone" % host.pid, text)]
        return not gone or re.search(r"worker \S*-%d-\d+ joined" % host.pid, text[gone[-1]:]) is not None

    def restore(self, host, since=0, timeout=None):
        """Undo any event on host (thaw it, bring its link up, start a new process if it ended) and
        wait until it is a member again."""
        host.resume()
        host.link_up()
        if not host.running():
            self.start_worker(host)
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while not self.is_member(host, since):
            if time.monotonic() > deadline:
                raise RuntimeError("worker host %s is not back:\n%s" % (host.name, self.logs()))
            time.sleep(0.05)

    # HTTP from inside the control host -------------------------------------------------------
    def _enter(self):
        enter_netns(self.control.ns_fd)

    def executor(self, threads):
        """A thread pool whose threads live in the control host's namespace (for HTTP clients)."""
        return ThreadPoolExecutor(max_workers=threads, initializer=self._enter)

    def connection(self, timeout=60):
        """An http.client connection to the control process; call only on a thread in its namespace."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, timeout=60):
        """One HTTP request on a thread in the control namespace: (status, body text)."""
        if self._executor is None:
            self._executor = self.executor(1)

        def call():
            conn = self.connection(timeout)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
                response = conn.getresponse()
                return response.status, response.read().decode("utf-8", "replace")
            finally:
                conn.close()
        return self._executor.submit(call).result()

    def get(self, path, timeout=60):
        status, text = self.request("GET", path, timeout=timeout)
        return status, _json(text)

    def post(self, path, body=None, timeout=60):
        status, text = self.request("POST", path, body if body is not None else {}, timeout=timeout)
        return status, _json(text)

    def create_function(self, name, code, **fields):
        status, body = self.post("/api/functions", dict(fields, name=name, code=code))
        if status != 200:
            raise RuntimeError("creating %s: %s %s" % (name, status, body))
        return body["id"]

    def invocation_counts(self, function_id=None):
        """{status: count} over every record of the function (of all functions: None), read from the
        control's database (the API lists at most 500; a record is a record whichever way it is
        counted)."""
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.control.data_dir, "clowdy.db"), uri=True,
                             timeout=30)
        try:
            if function_id is None:
                rows = db.execute("SELECT status, count(*) FROM invocations GROUP BY status").fetchall()
            else:
                rows = db.execute("SELECT status, count(*) FROM invocations WHERE function_id = ? "
                                  "GROUP BY status", (function_id,)).fetchall()
        finally:
            db.close()
        return dict(rows)

    def logs(self, tail=4000):
        """The tail of every host's log, for a failure message."""
        return "\n".join("--- %s (%s):\n%s" % (h.name, h.role, h.log_text()[-tail:])
                         for h in self.hosts if os.path.exists(h.log_path))

    # Cleaning up -----------------------------------------------------------------------------
    def close(self):
        if self._executor:
            self._executor.shutdown(wait=False)
            self._executor = None
        for host in reversed(self.hosts):
            try:
                host.stop_all()
            except Exception:
                pass
        for name in self._namespaces:
            remove_netns(name)
        self._namespaces = []
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        for host in self.hosts:
            if host.budget:
                host.budget.remove()
                host.budget = None
        if self._bridge_made:
            _run("ip", "link", "del", self.bridge, check=False)
            self._bridge_made = False
        if os.environ.get("CLOWDY_KEEP_CLUSTER_DIR"):
            print("cluster files kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _entries_of(view, host):
    """host's workers among GET /api/cluster's (matched by pid in the worker id, or by address)."""
    if not host.pid:
        return []
    found = []
    for w in view:
        wid, where = str(w.get("id", "")), str(w.get("host", ""))
        if "-%d-" % host.pid in wid or "-%d-" % host.pid in where or where.split(":")[0] == host.ip:
            found.append(w)
    return found


def _json(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------------
# Load: clients calling one function without pause, each call timed and kept

class Call:
    __slots__ = ("client", "start", "end", "status", "body", "invocation_id", "error")

    def __init__(self, client, start):
        self.client, self.start = client, start
        self.end = self.status = self.body = self.invocation_id = self.error = None

    @property
    def answered(self):
        return self.status is not None

    @property
    def succeeded(self):
        return self.status == 200 and isinstance(self.body, dict) and self.body.get("success") is True

    def __repr__(self):
        return "Call(status=%s, %.2f s, id=%s, %s)" % (
            self.status, (self.end or time.monotonic()) - self.start, self.invocation_id,
            self.error or (self.body if not self.succeeded else "ok"))


class Load:
    """clients threads in the control host, each calling POST /api/invoke/function_id again and
    again (keep-alive) until stop(). A call that gets no answer within guard seconds ends as one
    with status None and error "no answer": that is a hang."""

    def __init__(self, cluster, function_id, clients=12, guard=60, input_of=None, pause=0.0):
        self.cluster, self.function_id = cluster, function_id
        self.clients, self.guard, self.pause = clients, guard, pause
        self.input_of = input_of or (lambda client, n: n)
        self.calls = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = None
        self._futures = []

    def start(self):
        self._pool = self.cluster.executor(self.clients)
        self._futures = [self._pool.submit(self._client, i) for i in range(self.clients)]
        return self

    def _client(self, index):
        conn = None
        n = 0
        path = "/api/invoke/" + self.function_id
        while not self._stop.is_set():
            call = Call(index, time.monotonic())
            with self._lock:
                self.calls.append(call)
            try:
                if conn is None:
                    conn = self.cluster.connection(self.guard)
                conn.request("POST", path, body=json.dumps({"input": self.input_of(index, n)}),
                              headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                call.status = response.status
                call.body = _json(text)
                call.invocation_id = (call.body.get("invocation_id") if isinstance(call.body, dict) else None) \
                    or response.getheader("X-Clowdy-Invocation-Id")
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:     # timeout (a hang), reset, refused: kept on the call
                call.error = "no answer" if "timed out" in str(e) else "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            call.end = time.monotonic()
            n += 1
            if self.pause:
                time.sleep(self.pause)
            if call.status in (429, 503) or call.status is None:
                time.sleep(0.05)   # as a client told to retry shortly would; no busy loop on the control
        if conn is not None:
            conn.close()

    def snapshot(self):
        with self._lock:
            return list(self.calls)

    def successes_after(self, t):
        return sum(1 for c in self.snapshot() if c.end is not None and c.end > t and c.succeeded)

    def stop(self):
        """Stop after the calls in flight end (each within its guard); returns every call."""
        self._stop.set()
        for f in self._futures:
            f.result()
        self._pool.shutdown(wait=True)
        return self.snapshot()


def failure_window(calls, event_start, event_end, after=3.0):
    """The longest time with no successful call around an event: between consecutive successful
    completions, over the span from the last success before the event to `after` seconds past its
    end (or the last call, if earlier)."""
    ends = sorted(c.end for c in calls if c.succeeded)
    before = [t for t in ends if t <= event_start]
    horizon = event_end + after
    points = ([before[-1]] if before else [event_start]) + [t for t in ends if event_start < t <= horizon]
    last = max((c.end for c in calls if c.end is not None), default=horizon)
    points.append(min(horizon, last))
    return max((b - a for a, b in zip(points, points[1:])), default=0.0)
