import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, errorFromBody, request } from "./api";
import { parseConfig, setToken } from "./auth";

function mockFetch(status: number, body: string, contentType = "application/json") {
  const fn = vi.fn(async () => new Response(body, { status, headers: { "Content-Type": contentType } }));
  vi.stubGlobal("fetch", fn);
  return fn;
}

afterEach(() => {
  vi.unstubAllGlobals();
  setToken(null);
});

describe("errorFromBody", () => {
  it("uses the detail sentence", () => {
    const e = errorFromBody(404, { detail: "Project not found" });
    expect(e.status).toBe(404);
    expect(e.message).toBe("Project not found");
    expect(e.fields).toEqual([]);
  });

  it("turns a 422 detail array into field messages", () => {
    const e = errorFromBody(422, {
      detail: [
        { loc: ["body", "name"], msg: "Field required", type: "missing" },
        { loc: ["body", "memory_mb"], msg: "Input should be less than or equal to 2048", type: "less_than_equal" },
      ],
    });
    expect(e.fields).toEqual([
      { field: "name", message: "Field required" },
      { field: "memory_mb", message: "Input should be less than or equal to 2048" },
    ]);
    expect(e.message).toBe("name: Field required; memory_mb: Input should be less than or equal to 2048");
  });

  it("survives malformed detail arrays", () => {
    const e = errorFromBody(422, { detail: [null, 3, { loc: "x" }] });
    expect(e.fields).toHaveLength(3);
    expect(e.fields.every((f) => f.message === "is not valid")).toBe(true);
  });

  it("falls back to a sentence for the status when the body is useless", () => {
    expect(errorFromBody(500, null).message).toMatch(/internal error/);
    expect(errorFromBody(501, {}).message).toMatch(/not available yet/);
    expect(errorFromBody(418, "<html>teapot</html>").message).toBe("The server answered with HTTP 418.");
    expect(errorFromBody(400, "bad thing").message).toBe("bad thing");
  });
});

describe("request", () => {
  it("returns parsed JSON on success and sends JSON bodies", async () => {
    const f = mockFetch(200, JSON.stringify({ id: "abc", name: "x" }));
    const p = await api.createProject({ name: "x" });
    expect(p.id).toBe("abc");
    const [url, init] = f.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/projects");
    expect(init.method).toBe("POST");
    expect(JSON.parse(String(init.body))).toEqual({ name: "x" });
    expect((init.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });

  it("throws ApiError with the detail on failure", async () => {
    mockFetch(409, JSON.stringify({ detail: "Env var already exists" }));
    await expect(request("/api/x")).rejects.toMatchObject({ name: "ApiError", status: 409, message: "Env var already exists" });
  });

  it("handles a non-JSON error body", async () => {
    mockFetch(502, "Bad Gateway", "text/plain");
    await expect(request("/api/x")).rejects.toMatchObject({ status: 502, message: "Bad Gateway" });
  });

  it("reports an unreachable server", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    const e = (await request("/api/x").catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/Cannot reach/);
  });

  it("sends the bearer token and forgets it on 401", async () => {
    setToken("tok123");
    const f = mockFetch(401, JSON.stringify({ detail: "Invalid token" }));
    await expect(request("/api/stats")).rejects.toMatchObject({ status: 401 });
    const init = (f.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok123");
    expect(localStorage.getItem("clowdy.token")).toBeNull();
  });

  it("encodes ids in paths", async () => {
    const f = mockFetch(200, "[]");
    await api.deleteEnv("p1", "A/B");
    expect((f.mock.calls[0] as unknown as [string])[0]).toBe("/api/projects/p1/env/A%2FB");
  });
});

describe("parseConfig", () => {
  it("treats 404 and junk as local mode", () => {
    expect(parseConfig(404, { detail: "Not Found" }).auth_mode).toBe("local");
    expect(parseConfig(200, "nope").auth_mode).toBe("local");
    expect(parseConfig(200, { auth_mode: "weird" }).auth_mode).toBe("local");
  });
  it("keeps jwt mode and the publishable key", () => {
    const c = parseConfig(200, { auth_mode: "jwt", clerk_publishable_key: "pk_test" });
    expect(c.auth_mode).toBe("jwt");
    expect(c.clerk_publishable_key).toBe("pk_test");
  });
});
