import { afterEach, describe, expect, it, vi } from "vitest";
import type { Cluster, Invocation, Stats } from "@/lib/api";
import { formatBytes, platformTimes, shortHash, statusLabel } from "@/lib/utils";
import { platformFailures } from "@/pages/dashboard";
import { InvocationTable } from "@/pages/function-detail";
import { allByTestId, byTestId, cleanup, click, flush, mockApi, render, until } from "@/test/mock-api";
import { ClusterCard, clusterSummary, formatMb, heartbeatAge } from "./cluster-card";
import { StatusBadge } from "./common";

afterEach(() => { cleanup(); vi.unstubAllGlobals(); });

const cluster: Cluster = {
  memory_mb: 6144, cores: 6,
  workers: [
    { id: "w1", host: "10.0.0.2:7000", state: "ready", memory_mb: 4096, cores: 4, memory_used_mb: 1024, running: 3, environments: 5, last_heartbeat_ms: 120 },
    { id: "w2", host: "10.0.0.3:7000", state: "draining", memory_mb: 2048, cores: 2, memory_used_mb: 0, running: 1, environments: 1, last_heartbeat_ms: 900 },
    { id: "w3", host: null, state: "lost", memory_mb: 2048, cores: 2, why: "no heartbeat for 0.9 s" },
  ],
};

describe("ClusterCard", () => {
  it("lists each worker with its state, load and heartbeat, and sums the capacity", async () => {
    mockApi({ "GET /api/cluster": [200, cluster] });
    const { host } = render(<ClusterCard />);
    await until(() => allByTestId(host, "cluster-worker").length === 3);
    expect(byTestId(host, "cluster-summary")!.textContent).toBe("1 of 3 workers ready · 6 cores · 6.0 GB memory");
    const rows = allByTestId(host, "cluster-worker");
    expect(rows.map((r) => r.dataset.state)).toEqual(["ready", "draining", "lost"]);
    const first = [...rows[0].querySelectorAll("td")].map((td) => td.textContent);
    expect(first).toEqual(["10.0.0.2:7000", "ready", "1.0 GB of 4.0 GB", "4", "3", "5", "120 ms ago"]);
    expect(rows[2].querySelector("td")!.textContent).toBe("w3"); // no host: its id
    expect(rows[2].querySelectorAll("td")[1].textContent).toBe("lostno heartbeat for 0.9 s"); // a lost one says why
    expect([...rows[2].querySelectorAll("td")].slice(4).map((td) => td.textContent)).toEqual(["—", "—", "—"]); // and has no load
    expect(rows[0].querySelector('[role="meter"]')!.getAttribute("aria-valuenow")).toBe("25");
  });

  it("labels workers by their place when the server shows no hosts or ids (not a cluster admin)", async () => {
    const reduced = { memory_mb: 6144, cores: 6, workers: cluster.workers.map(({ state, memory_mb, cores }, index) => ({ index, state, memory_mb, cores })) };
    mockApi({ "GET /api/cluster": [200, reduced] });
    const { host } = render(<ClusterCard />);
    await until(() => allByTestId(host, "cluster-worker").length === 3);
    const rows = allByTestId(host, "cluster-worker");
    expect(rows.map((r) => r.querySelector("td")!.textContent)).toEqual(["Worker 1", "Worker 2", "Worker 3"]);
    expect(rows[0].querySelectorAll("td")[4].textContent).toBe("—"); // no running count
  });

  it("says when no worker host is connected", async () => {
    mockApi({ "GET /api/cluster": [200, { workers: [], memory_mb: 0, cores: 0 }] });
    const { host } = render(<ClusterCard />);
    await until(() => !!byTestId(host, "cluster-empty"));
    expect(byTestId(host, "cluster-summary")!.textContent).toBe("No worker hosts");
  });

  it("refreshes while shown: a worker that goes away shows as lost", async () => {
    let state = "ready";
    mockApi({ "GET /api/cluster": () => [200, { workers: [{ ...cluster.workers[0], state }] }] });
    const { host } = render(<ClusterCard pollMs={20} />);
    await until(() => byTestId(host, "cluster-worker")?.dataset.state === "ready");
    state = "lost";
    await until(() => byTestId(host, "cluster-worker")?.dataset.state === "lost", "the lost state");
  });

  it("shows no card on a server without /api/cluster", async () => {
    mockApi({});
    const { host } = render(<ClusterCard />);
    await flush(20);
    await flush(20);
    expect(host.textContent).toBe("");
  });

  it("formats sizes and heartbeat ages, also a heartbeat sent as a Unix time", () => {
    expect(formatMb(512)).toBe("512 MB");
    expect(formatMb(7680)).toBe("7.5 GB");
    expect(heartbeatAge(80)).toBe("80 ms ago");
    expect(heartbeatAge(3210)).toBe("3.2 s ago");
    expect(heartbeatAge(1_800_000_000_000 - 1500, 1_800_000_000_000)).toBe("1.5 s ago");
    expect(heartbeatAge(null)).toBe("—");
    expect(clusterSummary({ workers: [cluster.workers[0], cluster.workers[2]] })).toBe("1 of 2 workers ready · 4 cores · 4.0 GB memory");
  });
});

describe("platform failures, timings and layers", () => {
  it("a lost call reads as a platform failure, apart from a function's error", () => {
    expect(statusLabel("lost")).toBe("lost (platform)");
    const lost = render(<StatusBadge status="lost" />).host.querySelector("[data-status]")!;
    const error = render(<StatusBadge status="error" />).host.querySelector("[data-status]")!;
    expect(lost.textContent).toBe("lost (platform)");
    expect(lost.className).not.toBe(error.className);
  });

  it("the dashboard reads platform failures from platform_errors or lost, none from an older server", () => {
    const s = { total_functions: 1, total_invocations: 3, success_rate: 50, avg_duration_ms: 1 } as Stats;
    expect(platformFailures(s)).toBeNull();
    expect(platformFailures({ ...s, lost: 2 })).toBe(2);
    expect(platformFailures({ ...s, platform_errors: 4, lost: 2 })).toBe(4);
  });

  it("init and queue time beside the duration: only what the server sent", () => {
    expect(platformTimes({ init_ms: 31.2, queue_ms: 0.4, cold_start: true })).toBe("init 31.2 ms · queue 0.40 ms");
    expect(platformTimes({ init_ms: 0, queue_ms: 2, cold_start: false })).toBe("queue 2.0 ms");
    expect(platformTimes({ init_ms: 0, cold_start: true })).toBe("init 0.00 ms");
    expect(platformTimes({})).toBe("");
    expect(platformTimes({ init_ms: null, queue_ms: null })).toBe("");
    expect(formatBytes(812)).toBe("812 B");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MB");
    expect(formatBytes(undefined)).toBe("—");
    expect(shortHash("sha256:0123456789abcdef")).toBe("0123456789ab");
  });
});

describe("the invocation log", () => {
  const row = (over: Partial<Invocation>): Invocation => ({ id: "i1", function_id: "f1", input: "{}", output: null, status: "success", duration_ms: 12, source: "direct", created_at: "2026-11-30T10:00:00Z", cold_start: true, ...over });

  it("shows a lost call as a platform failure whose outcome is unknown", () => {
    const { host } = render(<InvocationTable rows={[row({ status: "lost", error: "worker w2 was lost during the call: it may have run" })]} openId="i1" />);
    expect(byTestId(host, "platform-failure")!.textContent).toMatch(/Platform failure, not the function's error.*may have run/);
    expect(byTestId(host, "invocation-error")!.textContent).toContain("may have run");
    expect(host.textContent).toContain("Platform error");
    expect(host.querySelector('span[data-status="lost"]')!.textContent).toBe("lost (platform)");
  });

  it("shows init and queue time beside the duration, and a retry's attempt and first call", () => {
    const { host } = render(<InvocationTable rows={[row({ id: "i2", source: "async", attempt: 2, parent_invocation_id: "i0", init_ms: 25, queue_ms: 1.5, status: "error", error: "boom" })]} openId="i2" />);
    expect(byTestId(host, "invocation-attempt")!.textContent).toBe(" · attempt 2");
    expect(byTestId(host, "invocation-timings")!.textContent).toBe(" (init 25.0 ms · queue 1.5 ms)");
    expect(byTestId(host, "invocation-summary")!.textContent).toContain("attempt 2 of i0");
  });

  it("a queued async call has no duration and no failure yet", () => {
    const { host } = render(<InvocationTable rows={[row({ id: "i3", status: "queued", source: "async", duration_ms: 0, cold_start: false })]} openId={null} />);
    const cells = [...byTestId(host, "invocation-row")!.querySelectorAll("td")].map((td) => td.textContent);
    expect(cells[1]).toBe("queued");
    expect(cells[3]).toBe("—");
    expect(cells[7]).toBe("");
    click(byTestId(host, "invocation-toggle"));
    expect(byTestId(host, "invocation-error")).toBeNull();
    expect(host.textContent).toContain("(none yet: the call has not finished)");
  });

  it("an older server's record (no timings, no attempt) reads as before", () => {
    const { host } = render(<InvocationTable rows={[row({ id: "i4" })]} openId="i4" />);
    expect(byTestId(host, "invocation-timings")).toBeNull();
    expect(byTestId(host, "invocation-attempt")).toBeNull();
    expect(byTestId(host, "platform-failure")).toBeNull();
  });
});
