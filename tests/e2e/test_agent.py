"""The AI assistant end to end (issue 13): POST /api/chat against a scripted fake of an OpenAI-compatible
chat completions API on loopback, through the real build/clowdy.

The fake speaks the wire format as Groq does (tool call ids like `functions.create_function:0`,
arguments as a JSON string, the assistant message echoed back with its tool_calls, one
{role: "tool", tool_call_id, content} per call); each test gives it a script, one step per model
call, and reads back the requests it got. It covers:
  - a multi-step conversation: create a function, invoke it, read its error, fix it and invoke it
    again in one turn, answer; the function really exists, runs, and its runs are recorded with
    source `agent`;
  - malformed tool arguments and an unknown tool: errors the model sees, the loop goes on;
  - faults, each with the sentence the user sees: non-JSON and empty replies, 401, 429 with
    Retry-After, 5xx, Groq's 400 tool_use_failed, an oversized reply, a fault after a tool ran (the
    tool call is still listed), a provider that never answers (the time budget fires: 504);
  - not configured: 503 saying how; a malformed body: 422;
  - the step limit;
  - large tool results (a ~1 MB function read 64 times a turn, a list of ~1 MB versions): each result
    is cut for the user as for the model and says so, the reply's tool calls stay near 1 MB in all,
    streamed or not, and the server goes on answering;
  - ownership in jwt mode: user B's chat cannot see or touch user A's function.
"""
import json
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import Server, records, slow
from test_auth import AUDIENCE, ISSUER, alice, bob, bearer, jwks, keys  # noqa: F401 (fixtures)

CHAT_TIMEOUT = 120      # client-side bound only, so a hang fails the test instead of blocking it


# ---------------------------------------------------------------------------------------------------
# The fake provider

class FakeProvider:
    """POST /v1/chat/completions answers with the next step of the script. A step is a function of the
    request body returning (status, headers, body bytes), or a dict sent as a 200 JSON reply."""

    def __init__(self):
        self.steps = []
        self.requests = []          # (headers, body) of every chat completions call, in order
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    return self.answer(404, {}, b'{"error":{"message":"no such path"}}')
                body = json.loads(raw)
                with owner.lock:
                    owner.requests.append((dict(self.headers), body))
                    step = owner.steps.pop(0) if owner.steps else None
                    owner.connection = self.connection      # the socket of the newest call
                if step is None:
                    return self.answer(500, {}, b'{"error":{"message":"the test script ran out"}}')
                reply = step(body) if callable(step) else step
                if isinstance(reply, dict):
                    reply = (200, {}, json.dumps(reply).encode())
                self.answer(*reply)

            def answer(self, status, headers, data):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/v1" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def script(self, *steps):
        with self.lock:
            self.steps = list(steps)
            self.requests = []

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


_counter = [0]


def call(name, args):
    """One tool call as Groq writes it: id `functions.NAME:N`, arguments a JSON string (or raw text)."""
    index = _counter[0]
    _counter[0] += 1
    return {"id": "functions.%s:%d" % (name, index), "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}


def completion(message, finish):
    return {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
            "model": "meta-llama/llama-4-scout-17b-16e-instruct",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def tools_reply(*calls):
    return completion({"role": "assistant", "tool_calls": list(calls)}, "tool_calls")


def text_reply(text):
    return completion({"role": "assistant", "content": text}, "stop")


def tool_results(body):
    """The tool messages of the newest turn in a request, as {tool_call_id: parsed content}."""
    found = []
    for message in reversed(body["messages"]):
        if message["role"] != "tool":
            break
        found.insert(0, (message["tool_call_id"], json.loads(message["content"])))
    return dict(found)


def chat(server, text, headers=None):
    return server.post("/api/chat", json={"messages": [{"role": "user", "content": text}]},
                       headers=headers, timeout=CHAT_TIMEOUT)


# ---------------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="module")
def fake():
    provider = FakeProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def server(fake):
    s = Server(args=["--ai-base-url", fake.url, "--ai-api-key", "test-key", "--ai-timeout", "60"]).start()
    yield s
    s.cleanup()


# ---------------------------------------------------------------------------------------------------
# The loop

BROKEN = "def handler(input):\n    return {'result': input['n'] / 0}\n"
FIXED = "def handler(input):\n    return {'result': input['n'] * 2}\n"


def test_create_invoke_fix_invoke_answer(server, fake):
    name = "doubler_" + uuid.uuid4().hex[:6]
    made = {}

    def after_create(body):
        result = list(tool_results(body).values())[0]
        made["id"] = result["id"]
        return tools_reply(call("invoke_function", {"function_id": made["id"], "input": {"n": 21}}))

    def after_error(body):
        result = list(tool_results(body).values())[0]
        assert result["success"] is False and "ZeroDivisionError" in result["error"], result
        # Two calls in one turn: the fix, then the test of it
        return tools_reply(call("update_function", {"function_id": made["id"], "code": FIXED}),
                           call("invoke_function", {"function_id": made["id"], "input": {"n": 21}}))

    def answer(body):
        results = list(tool_results(body).values())
        assert results[1]["success"] is True and results[1]["output"] == {"result": 42}, results
        return text_reply("I created %s, fixed a division by zero, and it now returns 42." % name)

    fake.script(lambda body: tools_reply(call("create_function", {"name": name, "code": BROKEN})),
                after_create, after_error, answer)
    r = chat(server, "Write a function that doubles n, test it and fix it if needed")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert "returns 42" in reply["response"]
    assert [t["tool"] for t in reply["tool_calls"]] == \
        ["create_function", "invoke_function", "update_function", "invoke_function"]
    assert [t["ok"] for t in reply["tool_calls"]] == [True, False, True, True]
    assert reply["tool_calls"][0]["args"] == {"name": name, "code": BROKEN}
    assert reply["tool_calls"][1]["result"]["success"] is False
    assert reply["tool_calls"][3]["result"]["output"] == {"result": 42}
    assert reply["steps"] == 4

    # The function really exists, at version 2, and runs
    fn = server.get("/api/functions/" + made["id"]).json()
    assert fn["name"] == name and fn["active_version"] == 2 and fn["code"] == FIXED
    direct = server.post("/api/invoke/" + made["id"], json={"input": {"n": 5}}).json()
    assert direct["success"] is True and direct["output"] == {"result": 10}
    rows = records(server, made["id"], 3)
    assert [row["source"] for row in rows[:3]] == ["direct", "agent", "agent"]
    assert [row["status"] for row in rows[1:3]] == ["success", "error"]

    # What the provider saw: the wire format, turn by turn
    headers, first = fake.requests[0]
    assert headers.get("Authorization") == "Bearer test-key"
    assert first["model"] == "meta-llama/llama-4-scout-17b-16e-instruct"
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user",
                                     "content": "Write a function that doubles n, test it and fix it if needed"}
    names = {tool["function"]["name"] for tool in first["tools"]}
    assert {"list_functions", "get_function", "create_function", "update_function", "delete_function",
            "rollback_function", "invoke_function", "list_invocations", "list_projects", "create_project",
            "list_routes", "create_route", "delete_route", "list_env_vars", "set_env_var", "delete_env_var",
            "get_requirements", "set_requirements", "get_database_status"} <= names
    for tool in first["tools"]:
        assert tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object"
    _, fourth = fake.requests[3]
    echoed = [m for m in fourth["messages"] if m["role"] == "assistant"]
    assert len(echoed) == 3
    ids = [c["id"] for c in echoed[2]["tool_calls"]]
    assert ids[0].startswith("functions.update_function:") and ids[1].startswith("functions.invoke_function:")
    assert all(isinstance(c["function"]["arguments"], str) for c in echoed[2]["tool_calls"])
    assert [m["tool_call_id"] for m in fourth["messages"] if m["role"] == "tool"][-2:] == ids


def test_malformed_arguments_and_unknown_tool_are_errors_the_model_sees(server, fake):
    seen = {}

    def answer(body):
        seen.update(tool_results(body))
        return text_reply("Sorry, I made mistakes there.")

    fake.script(tools_reply(call("get_function", '{"function_id": '), call("drop_database", {}),
                            call("get_function", {"function_id": "../../etc/passwd"})),
                answer)
    r = chat(server, "Show me my function")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["response"] == "Sorry, I made mistakes there."
    assert [t["ok"] for t in reply["tool_calls"]] == [False, False, False]
    assert reply["tool_calls"][0]["args"] == '{"function_id": '     # kept as the model wrote it
    assert "not a JSON object" in reply["tool_calls"][0]["result"]["error"]
    assert "Unknown tool 'drop_database'" in reply["tool_calls"][1]["result"]["error"]
    assert "not a valid id" in reply["tool_calls"][2]["result"]["error"]
    assert len(seen) == 3 and all("error" in result for result in seen.values())


def test_a_turn_asking_for_hundreds_of_tool_calls_runs_only_the_first_64(server, fake):
    seen = {}

    def answer(body):
        seen.update(tool_results(body))
        return text_reply("Listed.")

    fake.script(tools_reply(*[call("list_functions", {}) for _ in range(300)]), answer)
    r = chat(server, "List my functions, a lot")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["response"] == "Listed."
    assert len(reply["tool_calls"]) == 64 and all(t["ok"] for t in reply["tool_calls"])
    assert len(seen) == 64          # and the model got one answer for each call it was told ran


RESULT_MAX = 12000                  # TOOLS_RESULT_MAX in core/tools.h: bytes of JSON of one cut result
REPLY_BOUND = 2 * 1024 * 1024       # tool_calls listed whole stop at 1 MB; 192 short entries on top


def big_code(size=1040000):
    """A valid function of about size bytes: a handler, then comment lines."""
    head = "def handler(input):\n    return 'big'\n"
    line = "# " + "x" * 77 + "\n"
    return head + line * ((size - len(head)) // len(line))


def parse_events(text):
    """[(event, data)] of a whole text/event-stream body."""
    events, name = [], None
    for line in text.split("\n"):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


@pytest.mark.parametrize("stream", [False, True])
def test_large_tool_results_are_cut_and_the_reply_stays_small(server, fake, stream):
    """A model that reads a ~1 MB function 64 times a turn for 3 turns: the reply once held every
    result whole (200 MB here, hundreds of MB and GB of memory at the step limit). Now each result
    is cut as the model's copy is, still an object with the function's fields, and marked; past
    1 MB of tool calls the rest are listed with their result left out; the server goes on."""
    code = big_code()
    assert 1030000 < len(code) < 1048576
    r = server.post("/api/functions", json={"name": "big_" + uuid.uuid4().hex[:6], "code": code})
    assert r.status_code == 200, r.text[:300]
    fid = r.json()["id"]
    turns, seen = 3, []

    def answer(body):
        seen.append(body)
        return text_reply("done")

    fake.script(*[tools_reply(*[call("get_function", {"function_id": fid}) for _ in range(64)])
                  for _ in range(turns)], answer)
    r = server.post("/api/chat", json={"messages": [{"role": "user", "content": "read it, a lot"}],
                                       "stream": stream}, timeout=CHAT_TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    # A stream sends each entry twice: as its event, then in done's tool_calls
    assert len(r.content) < REPLY_BOUND * (2 if stream else 1), "the reply is %d bytes" % len(r.content)
    if stream:
        events = parse_events(r.text)
        assert events[-1][0] == "done", [e for e, _ in events][-5:]
        reply = events[-1][1]
        assert len(json.dumps(reply)) < REPLY_BOUND
        steps = [data for e, data in events if e == "tool"]
        for data in steps:
            assert data["result_truncated"] is True and len(json.dumps(data)) < 2 * RESULT_MAX
        # Each event is the entry listed in the reply
        assert steps == reply["tool_calls"]
    else:
        reply = r.json()
    assert reply["response"] == "done" and reply["steps"] == turns + 1
    calls = reply["tool_calls"]
    assert len(calls) == 64 * turns
    assert all(c["tool"] == "get_function" and c["ok"] is True and c["result_truncated"] is True for c in calls)
    assert all(c["args"] == {"function_id": fid} for c in calls)
    # The first ones whole in shape: the function's fields, the start of its code and a note
    whole = [c["result"] for c in calls if isinstance(c["result"], dict)]
    assert 20 < len(whole) < len(calls), len(whole)
    for result in whole:
        assert result["id"] == fid and result["active_version"] == 1 and result["runtime"] == "python"
        assert result["code"].startswith(code[:1000]) and "[cut: " in result["code"]
        assert len(json.dumps(result, separators=(",", ":"))) <= RESULT_MAX
    # Then, past the chat's 1 MB of tool calls, each listed short, in order
    rest = calls[len(whole):]
    assert all(isinstance(c["result"], str) and "left out" in c["result"] for c in rest)
    # The model's copy was cut the same way: JSON it can read, no larger
    assert len(seen) == 1
    for content in [m["content"] for m in seen[0]["messages"] if m["role"] == "tool"]:
        assert len(content.encode()) <= RESULT_MAX
        result = json.loads(content)
        assert result["id"] == fid and "[cut: " in result["code"]
    # The server is up and answers
    assert server.get("/api/health").status_code == 200
    fake.script(text_reply("still here"))
    r = chat(server, "hello")
    assert r.status_code == 200 and r.json()["response"] == "still here"


def test_a_list_of_large_versions_is_cut_to_a_list(server, fake):
    code = big_code(300000)
    r = server.post("/api/functions", json={"name": "versions_" + uuid.uuid4().hex[:6], "code": code})
    fid = r.json()["id"]
    for n in range(2, 5):
        r = server.put("/api/functions/" + fid, json={"code": code + "# version %d\n" % n})
        assert r.status_code == 200, r.text[:300]
    fake.script(tools_reply(call("list_versions", {"function_id": fid})), text_reply("listed"))
    r = chat(server, "Show me its versions")
    assert r.status_code == 200, r.text[:300]
    assert len(r.content) < 2 * RESULT_MAX
    entry = r.json()["tool_calls"][0]
    assert entry["ok"] is True and entry["result_truncated"] is True
    versions = entry["result"]
    assert isinstance(versions, list)
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    assert all(v["function_id"] == fid and v["code"].startswith(code[:500]) for v in versions)


def test_secret_values_never_reach_the_model(server, fake):
    project = server.post("/api/projects", json={"name": "p-" + uuid.uuid4().hex[:6]}).json()
    server.post("/api/projects/%s/env" % project["id"],
                json={"key": "API_TOKEN", "value": "s3cr3t-value", "is_secret": True})
    fake.script(tools_reply(call("list_env_vars", {"project_id": project["id"]})), text_reply("ok"))
    r = chat(server, "What env vars are set?")
    assert r.status_code == 200, r.text
    assert "API_TOKEN" in r.text and "s3cr3t-value" not in r.text
    assert "s3cr3t-value" not in json.dumps(fake.requests[1][1])


def test_step_limit(make_server, fake):
    s = make_server(args=["--ai-base-url", fake.url, "--ai-max-steps", "3"])
    fake.script(*[tools_reply(call("list_functions", {})) for _ in range(10)])
    r = chat(s, "Loop for ever")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["step_limit"] is True and reply["steps"] == 3
    assert "stopped after 3 steps" in reply["response"]
    assert [t["tool"] for t in reply["tool_calls"]] == ["list_functions"] * 3
    assert len(fake.requests) == 3


# ---------------------------------------------------------------------------------------------------
# Faults: each a readable sentence, the loop ends cleanly

@pytest.mark.parametrize("reply, status, words", [
    ((200, {}, b"<html>Bad gateway</html>"), 502, "not valid JSON"),
    ((200, {}, b""), 502, "empty reply"),
    ((401, {}, b'{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}'),
     502, "refused the API key (401): Invalid API Key"),
    ((500, {}, b'{"error":{"message":"Internal Server Error"}}'), 502, "failed (HTTP 500)"),
    ((503, {}, b"upstream down"), 502, "failed (HTTP 503)"),
    ((400, {}, json.dumps({"error": {"message": "Failed to call a function. Please adjust your prompt.",
                                     "type": "invalid_request_error", "code": "tool_use_failed",
                                     "failed_generation": "<function=create_function{...}"}}).encode()),
     502, "tool_use_failed"),
    ((200, {}, b'{"choices": []}'), 502, "no message"),
])
def test_provider_faults(server, fake, reply, status, words):
    fake.script(lambda body: reply)
    r = chat(server, "hello")
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["detail"], body
    assert body["tool_calls"] == []


def test_rate_limit_passes_retry_after(server, fake):
    fake.script(lambda body: (429, {"Retry-After": "7"},
                              b'{"error":{"message":"Rate limit reached","type":"tokens"}}'))
    r = chat(server, "hello")
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After") == "7"
    assert "rate limiting" in r.json()["detail"] and "7 s" in r.json()["detail"]


def test_oversized_reply(server, fake):
    big = json.dumps(text_reply("x" * (5 * 1024 * 1024))).encode()
    fake.script(lambda body: (200, {}, big))
    r = chat(server, "hello")
    assert r.status_code == 502, r.text
    assert "larger than" in r.json()["detail"]


def test_fault_after_a_tool_ran_still_lists_it(server, fake):
    name = "half_" + uuid.uuid4().hex[:6]
    fake.script(tools_reply(call("create_function", {"name": name, "code": FIXED})),
                lambda body: (500, {}, b'{"error":{"message":"boom"}}'))
    r = chat(server, "Make a function")
    assert r.status_code == 502, r.text
    body = r.json()
    assert "failed (HTTP 500)" in body["detail"]
    assert [t["tool"] for t in body["tool_calls"]] == ["create_function"]
    made = body["tool_calls"][0]["result"]
    assert server.get("/api/functions/" + made["id"]).json()["name"] == name


def test_provider_that_never_answers_hits_the_time_budget(make_server, fake):
    s = make_server(args=["--ai-base-url", fake.url, "--ai-timeout", "2"])
    release = threading.Event()
    fake.script(lambda body: (release.wait(60), (200, {}, json.dumps(text_reply("late")).encode()))[1])
    try:
        r = chat(s, "hello")
    finally:
        release.set()
    assert r.status_code == 504, r.text
    assert "did not answer" in r.json()["detail"]
    # The server is fine afterwards
    fake.script(text_reply("hi again"))
    r = chat(s, "hello")
    assert r.status_code == 200 and r.json()["response"] == "hi again"


def test_unreachable_provider(make_server):
    s = make_server(args=["--ai-base-url", "http://127.0.0.1:9/v1"])
    r = chat(s, "hello")
    assert r.status_code == 502, r.text
    assert "Could not reach the AI provider" in r.json()["detail"]


def test_not_configured_is_503_with_how_to(make_server):
    s = make_server(env={"GROQ_API_KEY": "", "CLOWDY_AI_API_KEY": ""})
    r = chat(s, "hello")
    assert r.status_code == 503, r.text
    detail = r.json()["detail"]
    assert "not configured" in detail and "--ai-api-key" in detail and "GROQ_API_KEY" in detail


def test_bad_bodies(server, fake):
    fake.script()
    for body in [{}, {"messages": []}, {"messages": [{"role": "system", "content": "obey"}]},
                 {"messages": [{"role": "user", "content": 5}]}, {"messages": "hi"}]:
        r = server.post("/api/chat", json=body)
        assert r.status_code == 422, (body, r.text)
        assert isinstance(r.json()["detail"], list)
    r = server.post("/api/chat", data=b"not json")
    assert r.status_code == 422
    assert server.get("/api/chat").status_code == 405
    assert fake.requests == []


# ---------------------------------------------------------------------------------------------------
# Ownership in jwt mode

@pytest.fixture(scope="module")
def jwt_server(jwks, fake):
    s = Server(args=["--auth", "jwt", "--jwks-url", jwks.url, "--jwt-issuer", ISSUER,
                     "--jwt-audience", AUDIENCE, "--ai-base-url", fake.url]).start()
    yield s
    s.cleanup()


def test_a_users_chat_cannot_see_or_touch_another_users_functions(jwt_server, alice, bob, fake):
    code = "def handler(input):\n    return 'alice'\n"
    fn = jwt_server.post("/api/functions", json={"name": "mine", "code": code}, headers=alice).json()
    project = jwt_server.post("/api/projects", json={"name": "alices"}, headers=alice).json()
    fid, pid = fn["id"], project["id"]

    fake.script(tools_reply(call("list_functions", {}), call("get_function", {"function_id": fid}),
                            call("update_function", {"function_id": fid, "code": "def handler(i):\n    return 'bob'\n"}),
                            call("invoke_function", {"function_id": fid, "input": {}}),
                            call("list_invocations", {"function_id": fid}),
                            call("rollback_function", {"function_id": fid, "version": 1}),
                            call("list_env_vars", {"project_id": pid}),
                            call("set_env_var", {"project_id": pid, "key": "X", "value": "y"}),
                            call("create_route", {"project_id": pid, "function_id": fid, "method": "GET",
                                                  "path": "/x"}),
                            call("delete_function", {"function_id": fid})),
                text_reply("I could not find that function."))
    r = chat(jwt_server, "Break alice's function", headers=bob)
    assert r.status_code == 200, r.text
    calls = r.json()["tool_calls"]
    assert calls[0]["ok"] is True and calls[0]["result"] == []
    for entry in calls[1:]:
        assert entry["ok"] is False and entry["result"]["status"] == 404, entry
    # Alice's function is as she left it, never ran, and still works for her
    same = jwt_server.get("/api/functions/" + fid, headers=alice).json()
    assert same["code"] == code and same["active_version"] == 1
    assert jwt_server.get("/api/functions/%s/invocations" % fid, headers=alice).json() == []
    assert jwt_server.get("/api/projects/%s/env" % pid, headers=alice).json() == []
    # Alice's own chat sees it
    fake.script(tools_reply(call("get_function", {"function_id": fid})), text_reply("found"))
    r = chat(jwt_server, "Show my function", headers=alice)
    assert r.status_code == 200 and r.json()["tool_calls"][0]["result"]["code"] == code
    # An API token of Alice's acts as Alice; a bad one is refused
    token = jwt_server.post("/api/tokens", json={"name": "chat"}, headers=alice).json()["token"]
    fake.script(tools_reply(call("get_function", {"function_id": fid})), text_reply("found"))
    r = chat(jwt_server, "Show my function", headers=bearer(token))
    assert r.status_code == 200 and r.json()["tool_calls"][0]["result"]["code"] == code
    assert chat(jwt_server, "hello", headers=bearer("clw_" + "0" * 64)).status_code == 401
    # And a chat needs credentials
    assert chat(jwt_server, "hello").status_code == 401


# ---------------------------------------------------------------------------------------------------
# Stop

def answer_after_hangup(fake, aborted):
    """A script step that holds its reply until the server hangs up on the fake (or slow(30) pass),
    sets aborted, then answers with a tool call: a loop that went on would run it and ask again."""
    def step(body):
        connection = fake.connection
        deadline = time.monotonic() + slow(30)
        while time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable and connection.recv(1, socket.MSG_PEEK) == b"":
                aborted.set()
                break
        name = "never_" + uuid.uuid4().hex[:6]
        return (200, {}, json.dumps(tools_reply(call("create_function", {"name": name, "code": FIXED}))).encode())
    return step


def assert_the_loop_stopped(server, fake, calls, left):
    """After a stop the model got no further call: it has had calls calls, the steps left are unused,
    and the next chat's call is the only one that follows (an aborted loop that went on late would
    show up beside it)."""
    time.sleep(slow(0.5))       # room for a loop that went on to make its next call
    assert len(fake.requests) == calls, [body["messages"] for _, body in fake.requests]
    assert fake.steps == left
    fake.script(text_reply("still here"))
    assert chat(server, "hello").json()["response"] == "still here"
    assert [body["messages"][-1]["content"] for _, body in fake.requests] == ["hello"]


@pytest.mark.parametrize("stream", [False, True])
def test_stop_ends_the_loop(server, fake, stream):
    """The UI's stop button drops the connection: the server aborts the model call in flight, so the
    step the model would have sent next never runs."""
    aborted = threading.Event()
    done = text_reply("done")
    fake.script(answer_after_hangup(fake, aborted), done)
    # The client leaves after 1.5 s of silence, stretched like every bound: the chat must have
    # reached the model call by then, or the stop comes before there is a call to abort
    with pytest.raises(requests.exceptions.ReadTimeout):
        r = server.post("/api/chat", json={"messages": [{"role": "user", "content": "go"}], "stream": stream},
                        timeout=slow(1.5), stream=stream)
        list(r.iter_lines())
    assert aborted.wait(slow(30)), "the server did not abort the model call after the client left"
    assert_the_loop_stopped(server, fake, calls=1, left=[done])


# ---------------------------------------------------------------------------------------------------
# Streaming: stream: true answers with server-sent events

def sse(*chunks):
    """A streamed reply as Groq sends it: one `data:` line per chunk, then [DONE]."""
    lines = []
    for delta, finish in chunks:
        chunk = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": "meta-llama/llama-4-scout-17b-16e-instruct",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        lines.append("data: " + json.dumps(chunk) + "\n\n")
    lines.append("data: [DONE]\n\n")
    return (200, {"Content-Type": "text/event-stream"}, "".join(lines).encode())


def read_events(response):
    """[(event, data)] of a text/event-stream response."""
    events, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def stream_chat(server, text):
    return server.post("/api/chat", json={"messages": [{"role": "user", "content": text}], "stream": True},
                       stream=True, timeout=CHAT_TIMEOUT)


def test_streamed_chat_sends_deltas_and_tool_steps_as_they_happen(server, fake):
    name = "streamed_" + uuid.uuid4().hex[:6]
    arguments = json.dumps({"name": name, "code": FIXED})
    cut = len(arguments) // 2
    fake.script(
        # One tool call split over three deltas, joined by its index
        lambda body: sse(({"role": "assistant", "tool_calls": [{"index": 0, "id": "functions.create_function:0",
                                                                 "type": "function",
                                                                 "function": {"name": "create_function",
                                                                              "arguments": ""}}]}, None),
                         ({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:cut]}}]}, None),
                         ({"tool_calls": [{"index": 0, "function": {"arguments": arguments[cut:]}}]}, None),
                         ({}, "tool_calls")),
        lambda body: sse(({"role": "assistant", "content": "Created "}, None), ({"content": "it."}, None),
                         ({}, "stop")))
    r = stream_chat(server, "Make a function")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = read_events(r)
    assert [e for e, _ in events] == ["tool", "delta", "delta", "done"], events
    assert events[0][1]["tool"] == "create_function" and events[0][1]["ok"] is True
    assert events[0][1]["args"] == {"name": name, "code": FIXED}
    assert events[1][1] == {"content": "Created "} and events[2][1] == {"content": "it."}
    done = events[3][1]
    assert done["response"] == "Created it." and [t["tool"] for t in done["tool_calls"]] == ["create_function"]
    assert server.get("/api/functions/" + events[0][1]["result"]["id"]).json()["name"] == name
    assert all(body.get("stream") is True for _, body in fake.requests)
    # The assistant turn went back whole, with the joined arguments
    echoed = [m for m in fake.requests[1][1]["messages"] if m["role"] == "assistant"][0]
    assert echoed["tool_calls"][0]["function"]["arguments"] == arguments


def test_streamed_chat_faults(server, fake):
    # Before any event: a plain error reply with its status
    fake.script(lambda body: (401, {}, b'{"error":{"message":"Invalid API Key"}}'))
    r = stream_chat(server, "hello")
    assert r.status_code == 502 and "refused the API key" in r.json()["detail"]
    # After a tool ran: the stream ends with an error event that lists it
    fake.script(lambda body: sse(({"role": "assistant", "tool_calls": [
                    {"index": 0, "id": "functions.list_projects:0", "type": "function",
                     "function": {"name": "list_projects", "arguments": "{}"}}]}, "tool_calls")),
                lambda body: (200, {"Content-Type": "text/event-stream"},
                              b'data: {"error":{"message":"model overloaded"}}\n\n'))
    r = stream_chat(server, "hello")
    assert r.status_code == 200
    events = read_events(r)
    assert [e for e, _ in events] == ["tool", "error"], events
    error = events[1][1]
    assert error["status"] == 502 and "model overloaded" in error["detail"]
    assert [t["tool"] for t in error["tool_calls"]] == ["list_projects"]


def test_stop_in_the_middle_of_a_stream(server, fake):
    aborted = threading.Event()
    done = text_reply("done")
    fake.script(tools_reply(call("list_projects", {})), answer_after_hangup(fake, aborted), done)
    r = stream_chat(server, "go")
    lines = r.iter_lines(decode_unicode=True)
    assert next(lines) == "event: tool"
    r.close()                   # the stop button, after the first step arrived
    assert aborted.wait(slow(30)), "the server did not abort the model call after the client left"
    assert_the_loop_stopped(server, fake, calls=2, left=[done])
