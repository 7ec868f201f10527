"""The Lambda-compatible API (issue 14) with the real clients: Debian's awscli and boto3, pointed at
the server with --endpoint-url (core/lambda.c, core/sigv4.c).

One local-mode server for the module (SigV4 headers accepted and ignored), and one jwt-mode server
whose API token signs: access key id = the token's id, secret = the token. Retries are off in
botocore, so an error case is one request.

test_event_goes_through_the_async_queue needs `POST /api/invoke/:id?async=1` (the async queue of the
same issue, built on another branch): it passes once both are merged.
"""
import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import zipfile

import boto3
import botocore
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import BINARY, Server, ok, records, slow, wait_for

AWS = "/usr/bin/aws" if os.path.exists("/usr/bin/aws") else shutil.which("aws")

ECHO = """\
def main(event, context):
    print("got", event)
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("boom " + str(event["fail"]))
    return {"event": event, "version": context.function_version}
"""


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def client(server, key="AKIDEXAMPLE", secret="secret"):
    return boto3.client("lambda", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}, read_timeout=slow(60),
                                      connect_timeout=slow(10)))


def function_id(server, name, headers=None):
    """The Clowdy id of the function called name (botocore keeps only the fields its model names)."""
    return next(f["id"] for f in ok(server.get("/api/functions", headers=headers)) if f["name"] == name)


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def lam(server):
    return client(server)


@pytest.fixture(scope="module")
def echo(lam):
    made = lam.create_function(FunctionName="echo", Runtime="python3.11", Role="arn:aws:iam::1:role/r",
                               Handler="app.main", Code={"ZipFile": zip_of({"app.py": ECHO, "other.txt": "x"})},
                               Timeout=10, MemorySize=128, Description="echoes")
    return made


def test_create_and_get_from_a_zip(lam, echo):
    assert echo["FunctionName"] == "echo" and echo["Handler"] == "app.main"
    assert echo["Timeout"] == 10 and echo["MemorySize"] == 128 and echo["Description"] == "echoes"
    assert echo["FunctionArn"].endswith(":function:echo")
    got = lam.get_function(FunctionName="echo")["Configuration"]
    assert got["FunctionName"] == "echo" and got["Handler"] == "app.main" and got["CodeSha256"]
    # By ARN, and the configuration alone
    assert lam.get_function(FunctionName=echo["FunctionArn"])["Configuration"]["FunctionName"] == "echo"
    assert lam.get_function_configuration(FunctionName="echo")["Handler"] == "app.main"


def test_invoke_sync_with_the_raw_event_and_the_log_tail(lam, echo):
    r = lam.invoke(FunctionName="echo", Payload=json.dumps({"name": "Ada", "n": [1, 2]}), LogType="Tail")
    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert json.loads(r["Payload"].read()) == {"event": {"name": "Ada", "n": [1, 2]}, "version": 1}
    assert r["ExecutedVersion"] == "$LATEST"
    assert "got {'name': 'Ada', 'n': [1, 2]}" in base64.b64decode(r["LogResult"]).decode()
    # Without LogType there is no log; an empty payload is the event {}
    r = lam.invoke(FunctionName="echo")
    assert "LogResult" not in r and json.loads(r["Payload"].read())["event"] == {}


def test_log_tail_is_the_last_4_kb(lam):
    code = "def handler(event, context):\n    for i in range(2000):\n        print('line %05d' % i)\n    return 1\n"
    lam.create_function(FunctionName="chatty", Runtime="python3.11", Role="r", Handler="chat.handler",
                        Code={"ZipFile": zip_of({"chat.py": code})})
    r = lam.invoke(FunctionName="chatty", LogType="Tail")
    tail = base64.b64decode(r["LogResult"])
    assert len(tail) == 4096
    assert tail.endswith(b"line 01999\n")


def test_function_error_is_unhandled_with_lambda_fields(lam, echo):
    r = lam.invoke(FunctionName="echo", Payload=json.dumps({"fail": 7}))
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom 7"
    assert isinstance(body["stackTrace"], list) and any("boom 7" in line for line in body["stackTrace"])


def test_dry_run_checks_without_running(lam, server):
    lam.create_function(FunctionName="dry", Runtime="python3.11", Role="r", Handler="d.handler",
                        Code={"ZipFile": zip_of({"d.py": "def handler(e, c):\n    return 1\n"})})
    r = lam.invoke(FunctionName="dry", InvocationType="DryRun")
    assert r["StatusCode"] == 204
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="nobody", InvocationType="DryRun")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    # One real call after it: its record is the only one (the dry run left none)
    ran = lam.invoke(FunctionName="dry")["ResponseMetadata"]["HTTPHeaders"]["x-clowdy-invocation-id"]
    rows = records(server, function_id(server, "dry"), 1)
    assert [row["id"] for row in rows] == [ran]


def test_qualifier_and_update_code(lam, server):
    lam.create_function(FunctionName="versions", Runtime="python3.11", Role="r", Handler="v.run",
                        Code={"ZipFile": zip_of({"v.py": "def run(event, context):\n    return 'one'\n"})})
    updated = lam.update_function_code(FunctionName="versions",
                                       ZipFile=zip_of({"v.py": "def run(event, context):\n    return 'two'\n"}),
                                       Publish=True)
    assert updated["Version"] == "2" and updated["Handler"] == "v.run"
    r = lam.invoke(FunctionName="versions", Qualifier="2")
    assert json.loads(r["Payload"].read()) == "two" and r["ExecutedVersion"] == "2"
    r = lam.invoke(FunctionName="versions:$LATEST")
    assert json.loads(r["Payload"].read()) == "two" and r["ExecutedVersion"] == "$LATEST"
    # Version 1 is not active: it runs all the same when named, and says so
    r = lam.invoke(FunctionName="versions:1", LogType="Tail")
    assert json.loads(r["Payload"].read()) == "one" and r["ExecutedVersion"] == "1"
    r = lam.invoke(FunctionName="versions")
    assert json.loads(r["Payload"].read()) == "two"
    # ... but not as an Event: the async queue runs the active version only
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="versions:1", InvocationType="Event")
    code, status, message = error_of(e)
    assert (code, status) == ("ResourceConflictException", 409) and "roll back" in message
    # After a rollback version 1 is the active one
    versions_id = function_id(server, "versions")
    ok(server.put("/api/functions/%s/versions/1" % versions_id))
    r = lam.invoke(FunctionName="versions", Qualifier="1")
    assert json.loads(r["Payload"].read()) == "one" and r["ExecutedVersion"] == "1"
    for qualifier in ("9", "live"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            lam.invoke(FunctionName="versions", Qualifier=qualifier)
        assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    # By the Clowdy id too
    r = lam.invoke(FunctionName=versions_id)
    assert json.loads(r["Payload"].read()) == "one"


def test_list_pages_with_marker_and_max_items(lam, server):
    for i in range(3):
        lam.create_function(FunctionName="page%d" % i, Runtime="python3.11", Role="r", Handler="p.handler",
                            Code={"ZipFile": zip_of({"p.py": "def handler(e, c):\n    return 1\n"})})
    everything = [f["FunctionName"] for f in lam.list_functions(MaxItems=1000)["Functions"]]
    assert {"page0", "page1", "page2"} <= set(everything)
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        pages += 1
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == everything and pages == (len(everything) + 1) // 2
    # The paginator and the bare path without the trailing slash answer the same
    names = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
             for f in p["Functions"]]
    assert names == everything
    bare = requests.get(server.url + "/2015-03-31/functions", timeout=slow(30))
    assert bare.status_code == 200 and [f["FunctionName"] for f in bare.json()["Functions"]] == everything[:50]


def test_delete(lam):
    lam.create_function(FunctionName="doomed", Runtime="python3.11", Role="r", Handler="d.handler",
                        Code={"ZipFile": zip_of({"d.py": "def handler(e, c):\n    return 1\n"})})
    lam.delete_function(FunctionName="doomed")
    for call in (lambda: lam.get_function(FunctionName="doomed"), lambda: lam.invoke(FunctionName="doomed"),
                 lambda: lam.delete_function(FunctionName="doomed")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_bad_names_and_bodies(lam, server, echo):
    def refused(call, code, status):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        got = error_of(e)
        assert got[:2] == (code, status), got
        assert got[2]
        return got[2]

    good_zip = zip_of({"a.py": "def handler(e, c):\n    return 1\n"})
    refused(lambda: lam.create_function(FunctionName="has space", Runtime="python3.11", Role="r",
                                        Handler="a.handler", Code={"ZipFile": good_zip}),
            "InvalidParameterValueException", 400)
    refused(lambda: lam.create_function(FunctionName="echo", Runtime="python3.11", Role="r",
                                        Handler="a.handler", Code={"ZipFile": good_zip}),
            "ResourceConflictException", 409)
    refused(lambda: lam.create_function(FunctionName="nodejs", Runtime="nodejs18.x", Role="r",
                                        Handler="a.handler", Code={"ZipFile": good_zip}),
            "InvalidParameterValueException", 400)
    assert "zip" in refused(lambda: lam.create_function(FunctionName="notzip", Runtime="python3.11", Role="r",
                                                        Handler="a.handler", Code={"ZipFile": b"not a zip"}),
                            "InvalidParameterValueException", 400)
    assert "b.py" in refused(lambda: lam.create_function(FunctionName="missing", Runtime="python3.11", Role="r",
                                                         Handler="b.handler", Code={"ZipFile": good_zip}),
                             "InvalidParameterValueException", 400)
    refused(lambda: lam.create_function(FunctionName="bighandler", Runtime="python3.11", Role="r",
                                        Handler="nodot", Code={"ZipFile": good_zip}),
            "InvalidParameterValueException", 400)
    refused(lambda: lam.create_function(FunctionName="toomuch", Runtime="python3.11", Role="r",
                                        Handler="a.handler", Code={"ZipFile": good_zip}, MemorySize=100000),
            "InvalidParameterValueException", 400)
    refused(lambda: lam.invoke(FunctionName="echo", Payload=b"{not json"), "InvalidRequestContentException", 400)
    refused(lambda: lam.invoke(FunctionName="no-such-function"), "ResourceNotFoundException", 404)
    # Bodies botocore would never send, straight over HTTP: the same error shape
    r = requests.post(server.url + "/2015-03-31/functions", data=b"{oops", timeout=slow(30))
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert r.json()["Type"] == "User" and r.json()["Message"]
    r = requests.post(server.url + "/2015-03-31/functions/echo/invocations", data=b"x" * (7 * 1024 * 1024),
                      timeout=slow(60))
    assert r.status_code == 413 and r.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    r = requests.post(server.url + "/2015-03-31/functions/echo/invocations", data=b"{}",
                      headers={"X-Amz-Invocation-Type": "Sometime"}, timeout=slow(30))
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    r = requests.get(server.url + "/2015-03-31/layers", timeout=slow(30))
    assert r.status_code == 404 and r.headers["x-amzn-ErrorType"]
    # A payload the gateway refuses says why, as the Event path and REST do, not a bare status
    assert "NUL" in refused(lambda: lam.invoke(FunctionName="echo", Payload=b'{"a": "\\u0000"}'),
                            "InvalidRequestContentException", 400)
    # A name that is not UTF-8 once decoded: not found, and the error is still JSON
    r = requests.get(server.url + "/2015-03-31/functions/%FF%FE", timeout=slow(30))
    assert r.status_code == 404 and r.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(r.content)["Message"]
    # And the server is fine
    assert lam.invoke(FunctionName="echo")["StatusCode"] == 200


def test_event_goes_through_the_async_queue(lam, server):
    """Event is POST /api/invoke/ID?async=1: 202 at once, and the call is recorded when it ran.
    (Needs the async queue of issue 14, built on its own branch.)"""
    lam.create_function(FunctionName="queued", Runtime="python3.11", Role="r", Handler="q.handler",
                        Code={"ZipFile": zip_of({"q.py": "def handler(e, c):\n    return e\n"})})
    r = lam.invoke(FunctionName="queued", InvocationType="Event", Payload=json.dumps({"queued": True}))
    assert r["StatusCode"] == 202
    assert r["Payload"].read() == b""
    rows = records(server, function_id(server, "queued"), 1, seconds=30)
    assert len(rows) == 1 and json.loads(rows[0]["input"]) == {"queued": True}
    assert r["ResponseMetadata"]["HTTPHeaders"].get("x-clowdy-invocation-id")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="nobody-here", InvocationType="Event")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_awscli(server, echo, tmp_path):
    assert AWS, "awscli is not installed (scripts/setup --test installs Debian's awscli)"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1", AWS_PAGER="",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))

    def aws(*args):
        return subprocess.run([AWS, "lambda", "--endpoint-url", server.url] + list(args), env=env,
                              capture_output=True, text=True, timeout=slow(120))

    (tmp_path / "fn.zip").write_bytes(zip_of({"cli.py": "def go(event, context):\n    return {'cli': event}\n"}))
    made = aws("create-function", "--function-name", "from-cli", "--runtime", "python3.11", "--role", "r",
               "--handler", "cli.go", "--zip-file", "fileb://%s" % (tmp_path / "fn.zip"))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["Handler"] == "cli.go"
    out = tmp_path / "out.json"
    called = aws("invoke", "--function-name", "from-cli", "--cli-binary-format", "raw-in-base64-out",
                 "--payload", '{"a": 1}', "--log-type", "Tail", str(out))
    assert called.returncode == 0, called.stderr
    assert json.loads(out.read_text()) == {"cli": {"a": 1}}
    assert json.loads(called.stdout)["StatusCode"] == 200
    missing = aws("get-function", "--function-name", "not-there")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


# ---------------------------------------------------------------------------------------------
# With auth on: the access key id is an API token's id, the secret is the token

@pytest.fixture(scope="module")
def signed():
    with tempfile.TemporaryDirectory(prefix="clowdy-e2e-") as data_dir:
        made = subprocess.run([BINARY, "token", "create", "--user", "carol", "--name", "aws",
                               "--data-dir", data_dir], capture_output=True, text=True, timeout=slow(30))
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        listed = subprocess.run([BINARY, "token", "list", "--user", "carol", "--data-dir", data_dir],
                                capture_output=True, text=True, timeout=slow(30))
        token_id = listed.stdout.split()[0]
        admin = subprocess.run([BINARY, "token", "create", "--user", "dave", "--name", "ops",
                                "--data-dir", data_dir], capture_output=True, text=True, timeout=slow(30))
        assert admin.returncode == 0, admin.stderr
        s = Server(data_dir=data_dir, args=["--auth", "jwt", "--jwks-url", "http://127.0.0.1:9/jwks",
                                            "--cluster-admins", "dave", "--workers", "2"]).start()
        s.admin_token = admin.stdout.strip()
        yield s, token_id, token
        s.stop()


def test_a_correct_signature_works(signed):
    server, token_id, token = signed
    lam = client(server, token_id, token)
    lam.create_function(FunctionName="mine", Runtime="python3.11", Role="r", Handler="m.handler",
                        Code={"ZipFile": zip_of({"m.py": "def handler(e, c):\n    return e\n"})})
    r = lam.invoke(FunctionName="mine", Payload=b'{"signed": true}')
    assert json.loads(r["Payload"].read()) == {"signed": True}
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["mine"]
    # The same token as a Bearer header sees the same function through the REST API
    functions = server.get("/api/functions", headers={"Authorization": "Bearer " + token})
    assert [f["name"] for f in ok(functions)] == ["mine"]


def test_a_wrong_secret_or_key_or_no_signature_is_refused(signed):
    server, token_id, token = signed
    for key, secret, code in ((token_id, token + "x", "InvalidSignatureException"),
                              ("000000000000", token, "UnrecognizedClientException")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client(server, key, secret).list_functions()
        assert error_of(e)[:2] == (code, 403)
    r = requests.get(server.url + "/2015-03-31/functions", timeout=slow(30))
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"]


def test_a_captured_request_cannot_be_replayed_with_other_content(signed):
    server, token_id, token = signed
    lam = client(server, token_id, token)
    lam.create_function(FunctionName="target", Runtime="python3.11", Role="r", Handler="t.handler",
                        Code={"ZipFile": zip_of({"t.py": "def handler(e, c):\n    return e\n"})})
    url = server.url + "/2015-03-31/functions/target/invocations"
    request = AWSRequest(method="POST", url=url, data=b'{"amount": 1}')
    SigV4Auth(Credentials(token_id, token), "lambda", "us-east-1").add_auth(request)
    headers = dict(request.headers)
    # As signed: it runs
    r = requests.post(url, data=b'{"amount": 1}', headers=headers, timeout=slow(30))
    assert r.status_code == 200 and r.json() == {"amount": 1}, r.text
    # Another body, another path, another qualifier: refused
    for other_url, body in ((url, b'{"amount": 1000}'),
                            (server.url + "/2015-03-31/functions/mine/invocations", b'{"amount": 1}'),
                            (url + "?Qualifier=1", b'{"amount": 1}')):
        r = requests.post(other_url, data=body, headers=headers, timeout=slow(30))
        assert r.status_code == 403, (other_url, body, r.status_code, r.text)
        assert r.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    # A date outside the 15 minutes around the server's time is refused even when well signed
    auth = SigV4Auth(Credentials(token_id, token), "lambda", "us-east-1")
    stale = AWSRequest(method="GET", url=server.url + "/2015-03-31/functions/", data=b"")
    stale.context["timestamp"] = "20200101T000000Z"
    auth._modify_request_before_signing(stale)
    signature = auth.signature(auth.string_to_sign(stale, auth.canonical_request(stale)), stale)
    auth._inject_signature_to_request(stale, signature)
    r = requests.get(server.url + "/2015-03-31/functions/", headers=dict(stale.headers), timeout=slow(30))
    assert r.status_code == 403 and "expired" in r.json()["Message"]


def test_a_revoked_token_cannot_sign(signed):
    server, token_id, token = signed
    made = server.post("/api/tokens", json={"name": "short-lived"}, headers={"Authorization": "Bearer " + token})
    other = ok(made)
    lam = client(server, other["id"], other["token"])
    assert lam.list_functions()["Functions"]
    assert server.delete("/api/tokens/" + other["id"], headers={"Authorization": "Bearer " + token}).status_code == 200
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.list_functions()
    assert error_of(e)[1] == 403 and "revoked" in error_of(e)[2]


def test_a_signed_request_records_the_tokens_use(signed):
    server, token_id, token = signed
    bearer = {"Authorization": "Bearer " + token}
    other = ok(server.post("/api/tokens", json={"name": "sigv4-only"}, headers=bearer))

    def last_used():
        return next(t for t in ok(server.get("/api/tokens", headers=bearer)) if t["id"] == other["id"])["last_used_at"]

    assert last_used() is None
    client(server, other["id"], other["token"]).list_functions()
    assert last_used() is not None


def test_cluster_hosts_are_for_the_cluster_admins_only(signed):
    server, token_id, token = signed

    def view(bearer):
        r = server.get("/api/cluster", headers={"Authorization": "Bearer " + bearer})
        assert r.status_code == 200, r.text
        return r.json()

    # Each in-process worker registers on its own: wait for both (--workers 2), or the second view
    # may list one the first had not yet seen.
    wait_for(lambda: len(view(server.admin_token)["workers"]) == 2, 30, "both in-process workers are listed")
    full = view(server.admin_token)
    assert all("host" in w and "id" in w and "running" in w for w in full["workers"])
    reduced = view(token)
    assert len(reduced["workers"]) == len(full["workers"])
    assert reduced["memory_mb"] == full["memory_mb"] and reduced["cores"] == full["cores"]
    for index, worker in enumerate(reduced["workers"]):
        assert "host" not in worker and "id" not in worker and "running" not in worker
        assert worker["index"] == index and worker["state"] and worker["memory_mb"] > 0
