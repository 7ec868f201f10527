"""The assistant's queue end to end: what a user sees when more chats come in than it runs at once.

The agent runs 4 chats at once (AGENT_RUNNERS) and holds 16 more in a queue (AGENT_QUEUE_MAX); past
that a chat is answered 503 with Retry-After at once. A queued chat whose client goes away is taken
out of the queue (CANCEL): it never reaches the model, and its place goes to the next chat.

The fake provider (tests/e2e/test_agent.py) holds the first 4 model calls until the test releases
them, so the runners stay busy for as long as the test needs. Chats are sent over raw sockets, so the
test can hang up on one while it waits, as a closed browser tab does.
"""
import json
import re
import socket
import threading

import pytest

from conftest import Server, slow, wait_for
from test_agent import FakeProvider, text_reply

RUNNERS = 4         # AGENT_RUNNERS in actors/agent.c
QUEUE = 16          # AGENT_QUEUE_MAX


class Chat:
    """One POST /api/chat on its own connection; the answer is read on a thread."""

    def __init__(self, server, text):
        self.text = text
        host, port = server.url.rsplit("/", 1)[1].split(":")
        body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
        self.sock = socket.create_connection((host, int(port)), timeout=slow(120))
        self.sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (host.encode(), len(body), body))
        self.status = None
        self.headers = {}
        self.body = None
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if lines and lines[0].startswith("HTTP/"):
            self.status = int(lines[0].split()[1])
            self.headers = {k.strip().lower(): v.strip()
                            for k, _, v in (line.partition(":") for line in lines[1:])}
            self.body = body
        self.done.set()

    def hang_up(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def json(self):
        return json.loads(self.body)


@pytest.fixture
def fake():
    provider = FakeProvider()
    yield provider
    provider.close()


@pytest.fixture
def server(fake):
    s = Server(args=["--ai-base-url", fake.url, "--ai-api-key", "test-key", "--ai-timeout", "120"]).start()
    yield s
    s.cleanup()


def chat_lines(server):
    """The access log's lines for finished chats."""
    return re.findall(r"http: POST /api/chat \d+", server.log())


def asked(fake):
    """The user texts of the chats that reached the model, in order."""
    with fake.lock:
        return [body["messages"][-1]["content"] for _, body in fake.requests]


def test_busy_503_and_a_queued_chat_that_leaves_never_reaches_the_model(server, fake):
    release = threading.Event()

    def held(body):
        release.wait(slow(60))
        return (200, {}, json.dumps(text_reply("answer to " + body["messages"][-1]["content"])).encode())

    fake.script(*([held] * RUNNERS + [lambda body: text_reply("answer to " + body["messages"][-1]["content"])]
                  * (QUEUE + 4)))
    chats = []
    try:
        # Four chats take the four runners and wait at the model
        chats += [Chat(server, "running %d" % i) for i in range(RUNNERS)]
        wait_for(lambda: len(asked(fake)) == RUNNERS, 30, "the first chats did not reach the model")
        # Twenty more: sixteen wait in the queue, the other four are told at once the assistant is busy
        chats += [Chat(server, "waiting %d" % i) for i in range(QUEUE + 4)]
        wait_for(lambda: sum(c.done.is_set() for c in chats) == 4, 30, "no chat was told the assistant is busy")
        busy = [c for c in chats if c.done.is_set()]
        for c in busy:
            assert c.status == 503, c.body
            assert c.headers.get("retry-after") == "5"
            assert "busy" in c.json()["detail"]
            assert c.text.startswith("waiting")
        queued = [c for c in chats if not c.done.is_set() and c.text.startswith("waiting")]
        assert len(queued) == QUEUE
        assert len(asked(fake)) == RUNNERS, "a queued chat reached the model while every runner was busy"

        # One waiting chat's client goes away; once http has seen it go (its line in the access log,
        # written after it told the agent), its place in the queue is free again
        before = len(chat_lines(server))
        leaver = queued[0]
        leaver.hang_up()
        wait_for(lambda: len(chat_lines(server)) > before, 30, "the server did not notice the client leave")
        late = Chat(server, "late")
        chats.append(late)

        # The runners finish: every chat that waited is answered, in turn, except the one that left
        release.set()
        for c in chats:
            if c is not leaver:
                assert c.done.wait(slow(60)), "chat %r got no answer" % c.text
        for c in queued[1:] + [late] + chats[:RUNNERS]:
            assert c.status == 200, (c.text, c.status, c.body)
            assert c.json()["response"] == "answer to " + c.text
        texts = asked(fake)
        assert leaver.text not in texts
        assert sorted(texts) == sorted(c.text for c in chats[:RUNNERS] + queued[1:] + [late])
        # Nothing runs twice, nothing is left over: the next chat goes straight through
        fake.script(text_reply("still here"))
        after = Chat(server, "after")
        assert after.done.wait(slow(60)) and after.status == 200
        assert after.json()["response"] == "still here"
    finally:
        release.set()
