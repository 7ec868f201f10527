"""GET /api/config names the functions' own origin (--gateway-host), so the console shows gateway
URLs on that host: the name when one is set, by flag or by CLOWDY_GATEWAY_HOST, and null when not."""


def test_config_names_the_gateway_host_from_the_flag(make_server):
    server = make_server(args=["--gateway-host", "fn.clowdy.test"])
    response = server.get("/api/config")
    assert response.status_code == 200
    assert response.json()["gateway_host"] == "fn.clowdy.test"
    # The functions' host itself still serves none of the console's API
    port = server.url.rsplit(":", 1)[1]
    assert server.get("/api/config", headers={"Host": "fn.clowdy.test:" + port}).status_code == 404


def test_config_names_the_gateway_host_from_the_environment(make_server):
    server = make_server(env={"CLOWDY_GATEWAY_HOST": "functions.clowdy.test"})
    assert server.get("/api/config").json()["gateway_host"] == "functions.clowdy.test"


def test_config_says_null_without_a_gateway_host(server):
    body = server.get("/api/config").json()
    assert "gateway_host" in body
    assert body["gateway_host"] is None
