"""The sandbox against an attacker who knows the kernel better than its filter (issue 10):

- the seccomp filter is an allow list: system calls it does not list fail with ENOSYS, including
  numbers newer than the installed libseccomp knows (open_tree_attr returned an fd while open_tree
  was refused), and the calls a Python function needs still work;
- AF_VSOCK sockets are refused with the network on or off, however the family is spelt;
- a network-enabled function cannot reach the host's own subnets or its gateways, and still reaches
  what it reached before (slirp's DNS and the default route);
- /proc/self/mountinfo and /proc/self/mounts name no host path (data dir, source or build dir).

Each test asserts what the function sees from inside, then that the server still serves a normal call.
"""
import errno
import ipaddress
import json
import os
import re
import socket
import subprocess
import uuid

import pytest

from conftest import BINARY, ROOT, ok

ID = re.compile(r"^[0-9a-f]{12}$")
SLIRP_NETWORK = ipaddress.ip_network("10.0.2.0/24")     # slirp4netns's own network inside the sandbox


def make_function(server, code, **extra):
    body = dict(name="hard_" + uuid.uuid4().hex[:8], code=code)
    body.update(extra)
    return ok(server.post("/api/functions", json=body))


def call(server, function_id, value=None, timeout=60):
    result = ok(server.post("/api/invoke/" + function_id, json={"input": {} if value is None else value},
                            timeout=timeout))
    assert result["success"] is True and ID.match(result["invocation_id"]), result
    return result["output"]


@pytest.fixture(scope="module")
def normal(server):
    return make_function(server, "def handler(input):\n    return {'echo': input}\n")


def healthy(server, normal):
    assert server.proc.poll() is None, "server died:\n" + server.log()[-3000:]
    nonce = uuid.uuid4().hex
    assert call(server, normal["id"], nonce) == {"echo": nonce}


# ---------------------------------------------------------------------------------------------------
# System calls by number

RAW_SYSCALLS = """\
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def raw(number, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    err = ctypes.get_errno()
    if rc >= 0:
        try: os.close(rc)
        except OSError: pass
    return [rc, err]
def handler(input):
    return {str(n): raw(n, *input.get("args", {}).get(str(n), [-1, 0, 0, 0, 0])) for n in input["numbers"]}
"""

# x86_64 numbers: open_tree (428), open_tree_attr (467), what no libseccomp of Debian 12 knows (457-470),
# numbers no kernel has (500, 1000), and x32's numbering of getpid (__X32_SYSCALL_BIT | 39)
OPEN_TREE, OPEN_TREE_ATTR = 428, 467
UNKNOWN = [457, 458, 459, 460, 461, 462, 463, 464, 465, 466, 467, 468, 469, 470, 500, 1000]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")
@pytest.mark.parametrize("network", [False, True])
def test_unlisted_system_calls_fail_with_enosys(server, normal, network):
    function = make_function(server, RAW_SYSCALLS, network_enabled=network, timeout_seconds=10)
    # open_tree_attr(AT_FDCWD, "/", OPEN_TREE_CLONE, NULL, 0) would return a detached mount's fd;
    # the other unknown numbers get harmless arguments
    args = {str(OPEN_TREE_ATTR): [-100, 0, 1, 0, 0], str(OPEN_TREE): [-100, 0, 1]}
    output = call(server, function["id"], {"numbers": UNKNOWN + [OPEN_TREE, 0x40000000 | 39], "args": args})
    for number in UNKNOWN + [0x40000000 | 39]:
        assert output[str(number)] == [-1, errno.ENOSYS], (number, output)
    # open_tree is refused on purpose (EPERM), as are the other calls that test_hostile.py tries
    assert output[str(OPEN_TREE)] == [-1, errno.EPERM], output
    healthy(server, normal)


VSOCK = """\
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def raw_socket(family, kind):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(41), ctypes.c_long(family), ctypes.c_long(kind), ctypes.c_long(0))
    return "FD" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
def handler(input):
    out = {}
    for kind in ["SOCK_STREAM", "SOCK_DGRAM", "SOCK_SEQPACKET"]:
        try:
            socket.socket(socket.AF_VSOCK, getattr(socket, kind)).close()
            out["python " + kind] = "OPENED"
        except OSError as e:
            out["python " + kind] = errno.errorcode.get(e.errno, "?")
    # the family with bits above the int the kernel reads: a filter comparing 64 bits would miss it
    out["raw 40"] = raw_socket(40, 1)
    out["raw high bits"] = raw_socket((1 << 32) | 40, 1)
    out["raw all high bits"] = raw_socket(0xFFFFFFFF00000028, 1)
    out["socketpair"] = raw_socket(40, 5)
    out["unix"] = raw_socket(1, 1)
    return out
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")
@pytest.mark.parametrize("network", [False, True])
def test_vsock_is_refused_with_the_network_on_or_off(server, normal, network):
    function = make_function(server, VSOCK, network_enabled=network)
    output = call(server, function["id"])
    for name, value in output.items():
        if name == "unix":
            assert value == "FD", output
        else:
            assert value in ("EAFNOSUPPORT", "EPERM"), (name, output)
    healthy(server, normal)


EVERYDAY = """\
import asyncio, ctypes, errno, json, multiprocessing, os, socket, subprocess, sys, tempfile, threading
def handler(input):
    out = {}
    # threads
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    out["threads"] = sorted(results)
    # asyncio with a subprocess and a socketpair
    async def main():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print(6 * 7)",
                                                    stdout=asyncio.subprocess.PIPE)
        data, _ = await proc.communicate()
        reader, writer = await asyncio.open_unix_connection(sock=socket.socketpair()[0])
        writer.close()
        await asyncio.sleep(0.01)
        return data.decode().strip()
    out["asyncio"] = asyncio.run(main())
    # subprocess, a shell pipeline within the pids cap
    out["shell"] = subprocess.run(["/bin/sh", "-c", "echo a b c | wc -w"], capture_output=True,
                                  text=True, check=True).stdout.strip()
    # a process pool
    with multiprocessing.Pool(2) as pool:
        out["pool"] = pool.map(abs, [-1, -2, -3])
    # files, memory maps, time, random
    with tempfile.NamedTemporaryFile("w+", dir="/tmp") as f:
        f.write("x" * 10000); f.flush(); os.fsync(f.fileno())
        out["file"] = os.stat(f.name).st_size
    import mmap
    m = mmap.mmap(-1, 1 << 20); m[:5] = b"hello"; out["mmap"] = m[:5].decode(); m.close()
    out["random"] = len(os.urandom(16))
    out["cpu_count"] = os.cpu_count() is not None
    out["ids"] = [os.getuid(), os.getgid()]
    return out
"""


def test_a_function_s_everyday_calls_still_work(server, normal):
    function = make_function(server, EVERYDAY, memory_mb=256)
    output = call(server, function["id"])
    assert output == {"threads": [0, 1, 4, 9, 16, 25, 36, 49], "asyncio": "42", "shell": "3",
                      "pool": [1, 2, 3], "file": 10000, "mmap": "hello", "random": 16,
                      "cpu_count": True, "ids": [1000, 1000]}, output
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# The host's subnets and gateways

def host_ipv4():
    """The host's IPv4 interface networks (address, network) and gateways, from `ip -j`."""
    addresses = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, check=True).stdout)
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, check=True).stdout)
    interfaces = []
    for link in addresses:
        if "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                interface = ipaddress.ip_interface("%s/%d" % (info["local"], info["prefixlen"]))
                interfaces.append(interface)
    gateways = {ipaddress.ip_address(r["gateway"]) for r in routes if r.get("gateway")}
    return interfaces, sorted(gateways)


def neighbour_in(interface):
    """An address of the interface's subnet that is neither the host's, the network nor broadcast."""
    network = interface.network
    if network.num_addresses <= 2:
        return None
    for candidate in [network.network_address + 77, network.network_address + 1, network.network_address + 2]:
        if candidate in network and candidate != interface.ip and candidate != network.broadcast_address:
            return candidate
    return None


CONNECT = """\
import errno, socket
def handler(input):
    out = {}
    for host, port in input["tcp"]:
        s = socket.socket(); s.settimeout(5)
        try:
            s.connect((host, port)); out["tcp %s:%d" % (host, port)] = "CONNECTED"
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
            out["tcp %s:%d" % (host, port)] = name
        finally:
            s.close()
    for host, port in input["udp"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((host, port)); out["udp %s:%d" % (host, port)] = "ROUTED"
        except OSError as e:
            out["udp %s:%d" % (host, port)] = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            s.close()
    return out
"""


def host_resolver():
    """The host's first IPv4 nameserver, if it answers TCP on port 53 (slirp's 10.0.2.3 forwards to it)."""
    try:
        with open("/etc/resolv.conf") as f:
            servers = [line.split()[1] for line in f if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        return None
    for address in servers:
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue
        try:
            socket.create_connection((address, 53), timeout=2).close()
            return address
        except OSError:
            return None
    return None


def test_network_enabled_cannot_reach_the_host_s_subnets_or_gateways(server, normal):
    """Every IPv4 subnet on the host's interfaces (its own address and a neighbour in it) and every
    gateway of its routes is unreachable from a network-enabled function, by a route inside the
    sandbox (an immediate EHOSTUNREACH/ENETUNREACH, for TCP and for UDP), and so is slirp's DNS
    address on any port but 53, while the default route and DNS stay usable."""
    interfaces, gateways = host_ipv4()
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    targets = []
    for interface in interfaces:
        targets.append(interface.ip)
        neighbour = neighbour_in(interface)
        if neighbour:
            targets.append(neighbour)
    targets += gateways
    # Inside slirp's own 10.0.2.0/24 (a qemu host, say) slirp answers for every address itself, with
    # a refusal: nothing there leaves for the host's LAN, so there no route is needed
    blocked = [t for t in targets if t not in SLIRP_NETWORK]
    aliased = [t for t in targets if t in SLIRP_NETWORK]
    assert targets, "the host has no IPv4 address besides loopback"
    resolver = host_resolver()
    function = make_function(server, CONNECT, network_enabled=True, timeout_seconds=30)
    try:
        output = call(server, function["id"], {
            "tcp": [[str(t), port] for t in targets] + [["10.0.2.3", 80], ["10.0.2.3", port]]
                   + ([["10.0.2.3", 53]] if resolver else []),
            "udp": [[str(t), 53] for t in blocked] + [["10.0.2.3", 53], ["203.0.113.1", 53], ["1.1.1.1", 53]]})
    finally:
        listener.close()
    # slirp forwards its DNS address, on any port, to the host's resolver (often the gateway): DNS only
    blocked += [ipaddress.ip_address("10.0.2.3")]
    for target in blocked:
        result = output["tcp %s:%d" % (target, 80 if str(target) == "10.0.2.3" else port)]
        # Unreachable by a route: not a timeout (a dropped packet), not a connection
        assert result in ("EHOSTUNREACH", "ENETUNREACH"), (str(target), output)
        if str(target) != "10.0.2.3":
            assert output["udp %s:53" % target] in ("EHOSTUNREACH", "ENETUNREACH"), (str(target), output)
    assert output["tcp 10.0.2.3:%d" % port] in ("EHOSTUNREACH", "ENETUNREACH"), output
    for target in aliased:
        result = output["tcp %s:%d" % (target, port)]
        assert result in ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"), (str(target), output)
    # What it could reach before: the default route out and slirp's DNS forwarder
    for destination in ["10.0.2.3:53", "203.0.113.1:53", "1.1.1.1:53"]:
        if not any(ipaddress.ip_address(destination.split(":")[0]) in i.network for i in interfaces):
            assert output["udp " + destination] == "ROUTED", (destination, output)
    if resolver:
        assert output["tcp 10.0.2.3:53"] == "CONNECTED", output      # through slirp to the host's DNS
    healthy(server, normal)


# ---------------------------------------------------------------------------------------------------
# Mount tables

MOUNTS = """\
def handler(input):
    out = {}
    for name in ["/proc/self/mountinfo", "/proc/self/mounts", "/proc/1/mountinfo", "/proc/thread-self/mountinfo"]:
        try:
            with open(name) as f:
                out[name] = f.read()
        except OSError as e:
            out[name] = "ERROR %s" % e.errno
    return out
"""


def host_only_paths(server):
    """Paths that exist on the host and must not be named inside: the data dir, the source tree the
    runner comes from, the build dir, and the sandboxes' root mount point."""
    paths = {os.path.realpath(server.data_dir), os.path.realpath(ROOT),
             os.path.realpath(os.path.dirname(BINARY)), "/run/clowdy-sandbox", "/tmp/.clowdy-sandbox"}
    return sorted(paths)


@pytest.mark.parametrize("network", [False, True])
def test_mount_tables_name_no_host_path(server, normal, network):
    function = make_function(server, MOUNTS, network_enabled=network)
    output = call(server, function["id"])
    paths = host_only_paths(server)
    for name, text in output.items():
        assert not text.startswith("ERROR") or name == "/proc/1/mountinfo", (name, text)
        for line in text.splitlines():
            for path in paths:
                assert path not in line, (name, path, line)
        if name == "/proc/self/mountinfo":
            # every mount's root within its file system is one the sandbox may know about
            for line in text.splitlines():
                fields = line.split()
                root, mount_point = fields[3], fields[4]
                assert root == "/" or root == mount_point or mount_point.startswith("/dev/") \
                    or root.startswith("/usr"), line
    # the runner is still where it was, and read-only
    function = make_function(server, "import os\ndef handler(input):\n"
                                     "    try: open('/opt/clowdy/runner.py', 'a'); w = 'WRITABLE'\n"
                                     "    except OSError as e: w = e.errno\n"
                                     "    return [os.path.isfile('/opt/clowdy/runner.py'), w]\n")
    exists, writable = call(server, function["id"])
    assert exists is True and writable in (errno.EROFS, errno.EACCES), (exists, writable)
    healthy(server, normal)
