"""The second layer of the sqlite provider's size cap: RLIMIT_FSIZE (runtime/runner.py, s_limit_files),
and what keeps the project's disk use bounded behind it.

PRAGMA max_page_count is the first layer (test_database.py's size-cap test); a function can lift it,
or write SQLite's files itself. Behind it the runner sets RLIMIT_FSIZE, soft and hard, at twice the
cap plus 8 MB for the WAL, with SIGXFSZ ignored: a write past that fails with EFBIG, the file stops at
the limit, and the function's process lives on to answer (and to take the next call). The dir holds
only SQLite's three files (a function can make no other: test_database.py), and fallocate, whose
KEEP_SIZE reserves blocks past a file's end without RLIMIT_FSIZE seeing them, is refused (glibc's
posix_fallocate writes instead): so the project's database takes at most three times the limit of the
host's disk.
"""
import errno
import os

import pytest

from conftest import Server
from test_database import invoke, make_function, make_project, output, provision

CAP_MB = 2
BACKSTOP = 2 * CAP_MB * 1024 * 1024 + 8 * 1024 * 1024

WRITE_CODE = '''
import errno, os
def handler(event, context):
    path = "/opt/database/" + event["name"]
    written, error = 0, None
    with open(path, "r+b", buffering=0) as f:
        try:
            for _ in range(event["mb"]):
                written += f.write(b"x" * (1024 * 1024))
        except OSError as e:
            error = errno.errorcode.get(e.errno, str(e.errno))
    return {"written": written, "size": os.path.getsize(path), "error": error, "pid": os.getpid()}
'''

LIFT_CODE = '''
import os, sqlite3
def handler(event, context):
    db = sqlite3.connect(os.environ["DATABASE_URL"][len("sqlite:///"):], timeout=10)
    db.execute("PRAGMA max_page_count = 2147483647")      # lifts the first layer
    db.execute("CREATE TABLE IF NOT EXISTS blob (b BLOB)")
    try:
        for _ in range(event["chunks"]):
            db.execute("INSERT INTO blob VALUES (?)", (b"x" * (1024 * 1024),))
            db.commit()
    except sqlite3.Error as error:
        return {"error": str(error), "pid": os.getpid()}
    finally:
        db.close()
    return {"error": None, "pid": os.getpid()}
'''


@pytest.fixture(scope="module")
def server():
    s = Server(args=["--sqlite-db-max-mb", str(CAP_MB)]).start()
    yield s
    s.cleanup()


def test_each_file_stops_at_the_backstop_with_efbig_and_the_function_lives(server):
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, WRITE_CODE)
    files = os.path.join(server.data_dir, "databases", project)
    pids = set()
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
        out = output(invoke(server, function, {"name": name, "mb": 20}))
        assert out["error"] == "EFBIG", out
        assert out["size"] == BACKSTOP and out["written"] == BACKSTOP, out
        assert os.path.getsize(os.path.join(files, name)) == BACKSTOP
        pids.add(out["pid"])
    # Not killed by SIGXFSZ: the same process took every call
    assert len(pids) == 1, pids
    # Every byte the project holds on the host's disk is in those three files
    used = sum(os.lstat(os.path.join(files, name)).st_blocks * 512 for name in os.listdir(files))
    assert sorted(os.listdir(files)) == ["db.sqlite3", "db.sqlite3-shm", "db.sqlite3-wal"]
    assert used <= 3 * BACKSTOP + 3 * 65536, used


FALLOCATE_CODE = '''
import ctypes, errno, fcntl, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def fallocate(fd, mode, offset, length):
    ctypes.set_errno(0)
    rc = libc.fallocate(fd, mode, ctypes.c_long(offset), ctypes.c_long(length))
    return "OK" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
def posix_fallocate(fd, offset, length):
    try:
        os.posix_fallocate(fd, offset, length)
        return "OK"
    except OSError as error:
        return errno.errorcode.get(error.errno, "?")
def handler(event, context):
    fd = os.open("/opt/database/" + event["name"], os.O_RDWR)
    mb = 1024 * 1024
    out = {
        # KEEP_SIZE reserves blocks past the end without changing the size, and mode 0 inside a size
        # made earlier grows nothing: neither is seen by RLIMIT_FSIZE, so every mode is refused
        "keep size": fallocate(fd, 1, 0, event["mb"] * mb),
        "zero range, keep size": fallocate(fd, 0x10 | 1, 0, event["mb"] * mb),
        "insert range": fallocate(fd, 0x20, 0, event["mb"] * mb),
        "mode 0": fallocate(fd, 0, 0, mb),
        "punch hole": fallocate(fd, 2 | 1, 0, mb),
        # glibc's posix_fallocate writes the blocks instead, so RLIMIT_FSIZE bounds it like a write
        "posix_fallocate within": posix_fallocate(fd, 0, 2 * mb),
        "posix_fallocate past the backstop": posix_fallocate(fd, 0, event["mb"] * mb),
    }
    # The generic ioctls that preallocate as fallocate does (struct space_resv, x86_64 numbers)
    reserve = struct.pack("hhqqiI4i", 0, 0, 0, event["mb"] * mb, 0, 0, 0, 0, 0, 0)
    for name, request in (("FS_IOC_RESVSP", 0x40305828), ("FS_IOC_RESVSP64", 0x4030582a),
                          ("FS_IOC_ZERO_RANGE", 0x40305839)):
        try:
            fcntl.ioctl(fd, request, reserve)
            out[name] = "OK"
        except OSError as error:
            out[name] = errno.errorcode.get(error.errno, "?")
    # Extended attributes: on XFS or btrfs a file's attributes can take gigabytes
    for name, attempt in (("setxattr", lambda: os.setxattr("/opt/database/" + event["name"], "user.x", b"x" * 4096)),
                          ("fsetxattr", lambda: os.setxattr(fd, "user.x", b"x" * 4096))):
        try:
            attempt()
            out[name] = "OK"
        except OSError as error:
            out[name] = errno.errorcode.get(error.errno, "?")
    stat = os.fstat(fd)
    os.close(fd)
    return {"out": out, "size": stat.st_size, "blocks": stat.st_blocks * 512}
'''


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="ioctl numbers are x86_64's")
def test_fallocate_and_xattrs_cannot_put_data_the_backstop_does_not_see(server):
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, FALLOCATE_CODE)
    seen = output(invoke(server, function, {"name": "db.sqlite3-wal", "mb": 200}))
    refused = errno.errorcode[errno.EOPNOTSUPP]          # Python names it ENOTSUP, the same number
    assert seen["out"] == {"keep size": refused, "zero range, keep size": refused,
                           "insert range": refused, "mode 0": refused, "punch hole": refused,
                           "posix_fallocate within": "OK", "posix_fallocate past the backstop": "EFBIG",
                           "FS_IOC_RESVSP": "EPERM", "FS_IOC_RESVSP64": "EPERM", "FS_IOC_ZERO_RANGE": "EPERM",
                           "setxattr": refused, "fsetxattr": refused}, seen
    assert 2 * 1024 * 1024 <= seen["size"] <= BACKSTOP, seen
    wal = os.path.join(server.data_dir, "databases", project, "db.sqlite3-wal")
    assert os.stat(wal).st_blocks * 512 <= BACKSTOP + 65536


def test_lifting_max_page_count_hits_the_backstop(server):
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, LIFT_CODE)
    out = output(invoke(server, function, {"chunks": 30}))      # 30 MB past a 12 MB backstop
    assert out["error"], out
    files = os.path.join(server.data_dir, "databases", project)
    for name in os.listdir(files):
        assert os.path.getsize(os.path.join(files, name)) <= BACKSTOP, name
    assert output(invoke(server, function, {"chunks": 0}))["pid"] == out["pid"]
