import { describe, expect, it } from "vitest";
import { curlExample, curlForRoute, gatewayUrl, invokeUrl, prettyJson, timeAgo } from "./utils";
import { perDay } from "@/pages/dashboard";
import type { Invocation } from "./api";

describe("gatewayUrl", () => {
  it("joins origin, slug and a normalised path", () => {
    expect(gatewayUrl("http://127.0.0.1:8000", "my-api", "/users/:id")).toBe("http://127.0.0.1:8000/api/gateway/my-api/users/:id");
    expect(gatewayUrl("http://h:1/", "s", "hello/")).toBe("http://h:1/api/gateway/s/hello");
    expect(gatewayUrl("http://h:1", "s", "/")).toBe("http://h:1/api/gateway/s");
    expect(gatewayUrl("http://h:1", "s", "")).toBe("http://h:1/api/gateway/s");
    expect(gatewayUrl("http://h:1", "s", "/files/*rest")).toBe("http://h:1/api/gateway/s/files/*rest");
  });
});

describe("curl examples", () => {
  it("builds an invoke curl with quoted JSON", () => {
    const c = curlExample("http://h:1", "abc123", { name: "O'Brien" });
    expect(invokeUrl("http://h:1", "abc123")).toBe("http://h:1/api/invoke/abc123");
    expect(c).toContain("curl -X POST 'http://h:1/api/invoke/abc123'");
    expect(c).toContain(`-d '{"input":{"name":"O'\\''Brien"}}'`);
    expect(c).not.toContain("Authorization");
    expect(curlExample("http://h:1", "a", {}, "tok")).toContain("Authorization: Bearer <your token>");
  });
  it("fills route params with examples", () => {
    expect(curlForRoute("http://h/api/gateway/s/users/:id", "GET")).toBe("curl -X GET 'http://h/api/gateway/s/users/example-id'");
    expect(curlForRoute("http://h/api/gateway/s/x", "ANY")).toBe("curl -X GET 'http://h/api/gateway/s/x'");
    expect(curlForRoute("http://h/api/gateway/s/x", "POST")).toContain("-d '{}'");
  });
});

describe("formatting", () => {
  it("pretty-prints JSON text and leaves other text alone", () => {
    expect(prettyJson('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyJson("not json")).toBe("not json");
    expect(prettyJson(null)).toBe("");
    expect(prettyJson({ b: 2 })).toBe('{\n  "b": 2\n}');
  });
  it("says how long ago", () => {
    const now = Date.parse("2026-01-02T00:00:00Z");
    expect(timeAgo("2026-01-01T23:59:50Z", now)).toBe("just now");
    expect(timeAgo("2026-01-01T23:00:00Z", now)).toBe("1 h ago");
    expect(timeAgo(null, now)).toBe("never");
    expect(timeAgo("garbage", now)).toBe("garbage");
  });
});

describe("perDay", () => {
  it("buckets invocations per UTC day with errors and average latency", () => {
    const now = new Date("2026-03-10T12:00:00Z");
    const inv = (created_at: string, status: string, duration_ms: number) => ({ id: created_at, function_id: "f", created_at, status, duration_ms }) as Invocation;
    const days = perDay([inv("2026-03-10T01:00:00Z", "success", 10), inv("2026-03-10T02:00:00Z", "error", 30), inv("2026-03-08T02:00:00Z", "success", 5), inv("2025-01-01T00:00:00Z", "success", 1)], 3, now);
    expect(days).toEqual([
      { day: "03-08", invocations: 1, errors: 0, avg_ms: 5 },
      { day: "03-09", invocations: 0, errors: 0, avg_ms: 0 },
      { day: "03-10", invocations: 2, errors: 1, avg_ms: 20 },
    ]);
  });
});
