"""A chat that carries an API token is checked by the agent's runner, in its own store
(core/tokens.c tokens_check_header, the same check the control-plane threads make): a good token acts
as its user, and a bad or revoked one is a 401 that looks like every other 401 of the API: a
{"detail"} naming the fault and a `WWW-Authenticate: Bearer` header."""
from test_agent import chat, fake, server, text_reply  # noqa: F401 (fake and server are fixtures)
from test_auth import bearer


def assert_token_401(response, detail):
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers.get("WWW-Authenticate") == "Bearer", response.headers
    assert response.json() == {"detail": detail}


def test_a_chat_with_a_bad_api_token_is_a_401_like_the_rest_of_the_api(server, fake):
    made = server.post("/api/tokens", json={"name": "chat"})
    assert made.status_code in (200, 201), made.text
    token = made.json()["token"]
    fake.script(text_reply("hello"))
    r = chat(server, "hi", headers=bearer(token))
    assert r.status_code == 200 and r.json()["response"] == "hello", r.text
    assert len(fake.requests) >= 1

    calls_before = len(fake.requests)
    unknown = bearer("clw_" + "0" * 64)
    assert_token_401(chat(server, "hi", headers=unknown), "Invalid API token")
    # The control plane says the same of the same header
    assert_token_401(server.get("/api/projects", headers=unknown), "Invalid API token")

    assert server.delete("/api/tokens/" + made.json()["id"]).status_code == 200
    assert_token_401(chat(server, "hi", headers=bearer(token)), "API token revoked")
    assert_token_401(server.get("/api/projects", headers=bearer(token)), "API token revoked")
    # The refused chats never reached the model
    assert len(fake.requests) == calls_before
