import { describe, expect, it } from "vitest";
import {
  curlExample, curlForRoute, firstLine, formatDuration, formatMemoryKb, formatRate, formatTimestamp, gatewayOrigin, gatewayUrl, invokeUrl,
  prettyJson, statusLabel, timeAgo,
} from "./utils";
import { chartPoints } from "@/pages/dashboard";
import type { Stats } from "./api";

describe("gatewayOrigin", () => {
  it("puts gateway URLs on the functions' own host at the page's port, else keeps the page's origin", () => {
    expect(gatewayOrigin("http://127.0.0.1:8000", "fn.example.com")).toBe("http://fn.example.com:8000");
    expect(gatewayOrigin("https://console.example.org", "fn.example.com")).toBe("https://fn.example.com");
    expect(gatewayOrigin("http://127.0.0.1:8000", null)).toBe("http://127.0.0.1:8000");
    expect(gatewayOrigin("http://127.0.0.1:8000", "")).toBe("http://127.0.0.1:8000");
    expect(gatewayOrigin("http://127.0.0.1:8000", undefined)).toBe("http://127.0.0.1:8000");
    expect(gatewayUrl(gatewayOrigin("http://127.0.0.1:8000", "fn.example.com"), "shop", "/cart"))
      .toBe("http://fn.example.com:8000/api/gateway/shop/cart");
  });
});

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

describe("chartPoints", () => {
  const base = { total_functions: 1, total_invocations: 3, success_rate: 67, avg_duration_ms: 10 };
  it("takes counts and errors per day and draws no latency the server did not send", () => {
    const s: Stats = { ...base, invocations_per_day: [{ date: "2026-03-09", count: 0, errors: 0 }, { date: "2026-03-10", count: 3, errors: 1 }] };
    const { points, latency } = chartPoints(s);
    expect(latency).toBeNull();
    expect(points).toEqual([{ day: "03-09", invocations: 0, errors: 0 }, { day: "03-10", invocations: 3, errors: 1 }]);
  });
  it("uses a per-day p50 when sent, leaving days without calls as gaps", () => {
    const s: Stats = { ...base, invocations_per_day: [{ date: "2026-03-09", count: 0, errors: 0, p50_duration_ms: 0 }, { date: "2026-03-10", count: 3, errors: 1, p50_duration_ms: 4.5 }] };
    const { points, latency } = chartPoints(s);
    expect(latency).toBe("p50");
    expect(points[0].latency_ms).toBeUndefined();
    expect(points[1].latency_ms).toBe(4.5);
  });
  it("copes with a server that sends no per-day list", () => {
    expect(chartPoints({ ...base }).points).toEqual([]);
  });
});

describe("log formatting", () => {
  it("shows sub-ms durations when microseconds are known, and never a bare 0 ms", () => {
    expect(formatDuration(0, 420)).toBe("0.42 ms");
    expect(formatDuration(3, 3140)).toBe("3.1 ms");
    expect(formatDuration(250, 250400)).toBe("250 ms");
    expect(formatDuration(2050, 2050000)).toBe("2.05 s");
    expect(formatDuration(0)).toBe("<1 ms");
    expect(formatDuration(12.34)).toBe("12.3 ms");
    expect(formatDuration(42)).toBe("42 ms");
    expect(formatDuration(undefined)).toBe("—");
  });
  it("formats peak memory and leaves unknown memory blank", () => {
    expect(formatMemoryKb(812)).toBe("812 KB");
    expect(formatMemoryKb(12700)).toBe("12.4 MB");
    expect(formatMemoryKb(0)).toBe("—");
    expect(formatMemoryKb(undefined)).toBe("—");
  });
  it("writes absolute local timestamps", () => {
    const d = new Date(2026, 2, 4, 5, 6, 7);
    expect(formatTimestamp(d.toISOString())).toBe("2026-03-04 05:06:07");
    expect(formatTimestamp("junk")).toBe("junk");
    expect(formatTimestamp(null)).toBe("—");
  });
  it("labels a timeout as timed out", () => {
    expect(statusLabel("timeout")).toBe("timed out");
    expect(statusLabel("error")).toBe("error");
  });
  it("reads no success rate when nothing ran", () => {
    expect(formatRate(0, 0)).toBe("—");
    expect(formatRate(66.6, 3)).toBe("67%");
  });
  it("summarises a traceback by its last line", () => {
    expect(firstLine("Traceback (most recent call last):\n  File x\nKeyError: 'b'\n")).toBe("KeyError: 'b'");
    expect(firstLine("Function timed out after 1 s")).toBe("Function timed out after 1 s");
    expect(firstLine("")).toBe("");
  });
});
