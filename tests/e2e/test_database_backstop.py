"""The second layer of the sqlite provider's size cap: RLIMIT_FSIZE (runtime/runner.py, s_limit_files).

PRAGMA max_page_count is the first layer (test_database.py's size-cap test); a function can lift it,
or write other files into /opt/database. Behind it the runner sets RLIMIT_FSIZE, soft and hard, at
twice the cap plus 8 MB for the WAL, with SIGXFSZ ignored: a write past that fails with EFBIG, the
file stops at the limit, and the function's process lives on to answer (and to take the next call).
"""
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
    with open(path, "wb", buffering=0) as f:
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


def test_a_plain_file_stops_at_the_backstop_with_efbig_and_the_function_lives(server):
    project = make_project(server)
    provision(server, project)
    function = make_function(server, project, WRITE_CODE)
    out = output(invoke(server, function, {"name": "big.bin", "mb": 20}))
    assert out["error"] == "EFBIG", out
    assert out["size"] == BACKSTOP and out["written"] == BACKSTOP, out
    path = os.path.join(server.data_dir, "databases", project, "big.bin")
    assert os.path.getsize(path) == BACKSTOP
    # Not killed by SIGXFSZ: the same process takes the next call, under the limit
    again = output(invoke(server, function, {"name": "small.bin", "mb": 1}))
    assert again["error"] is None and again["size"] == 1024 * 1024
    assert again["pid"] == out["pid"]


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
