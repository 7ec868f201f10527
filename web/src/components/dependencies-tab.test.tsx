import { afterEach, describe, expect, it, vi } from "vitest";
import type { Project, Requirements } from "@/lib/api";
import { allByTestId, byTestId, cleanup, click, mockApi, render, typeInto, until } from "@/test/mock-api";
import { buildSummary, DependenciesTab } from "./dependencies-tab";

afterEach(() => { cleanup(); vi.unstubAllGlobals(); });

const project = { id: "p1", name: "P", slug: "p", created_at: "", updated_at: "" } as Project;
const PATH = "GET /api/projects/p1/requirements";
const base: Requirements = { requirements_txt: "", requirements_hash: null, has_custom_image: false, build_status: "none", build_log: "", layer_size_bytes: null, built_at: null, active_hash: null };

describe("DependenciesTab", () => {
  it("says 'not available yet' with the server's sentence on a 501, and offers no form", async () => {
    mockApi({ [PATH]: [501, { detail: "Requirements are not available yet" }] });
    const { host } = render(<DependenciesTab project={project} />);
    await until(() => !!byTestId(host, "not-available"));
    expect(byTestId(host, "not-available")!.textContent).toContain("Requirements are not available yet");
    expect(host.querySelector("textarea")).toBeNull();
  });

  it("saves, then polls while queued and building: the live log grows, then ready with size, time and the active hash", async () => {
    const states: Requirements[] = [
      { ...base, requirements_txt: "tinypkg==1.0\n", requirements_hash: "sha256:aaaaaaaaaaaaffff", build_status: "queued", build_log: "" },
      { ...base, requirements_txt: "tinypkg==1.0\n", requirements_hash: "sha256:aaaaaaaaaaaaffff", build_status: "building", build_log: "Looking in indexes: http://127.0.0.1:1/simple\n" },
      { ...base, requirements_txt: "tinypkg==1.0\n", requirements_hash: "sha256:aaaaaaaaaaaaffff", build_status: "building", build_log: "Looking in indexes: http://127.0.0.1:1/simple\nCollecting tinypkg==1.0\n" },
      { ...base, requirements_txt: "tinypkg==1.0\n", requirements_hash: "sha256:aaaaaaaaaaaaffff", build_status: "ready", build_log: "Successfully installed tinypkg-1.0\n", layer_size_bytes: 3 * 1024 * 1024, built_at: new Date().toISOString(), active_hash: "sha256:aaaaaaaaaaaaffff" },
    ];
    let put = false;
    const { calls } = mockApi({
      [PATH]: (_c, n) => [200, put ? states[Math.min(n - 2, states.length - 1)] : base],
      "PUT /api/projects/p1/requirements": () => { put = true; return [202, states[0]]; },
    });
    const { host } = render(<DependenciesTab project={project} pollMs={20} />);
    await until(() => !!host.querySelector("textarea"));
    expect(byTestId(host, "deps-status")!.dataset.status).toBe("none");
    expect(byTestId(host, "deps-active-hash")!.textContent).toBe("none");
    typeInto(host.querySelector("textarea")!, "tinypkg==1.0\n");
    click(byTestId(host, "save-requirements"));
    await until(() => calls.some((c) => c.method === "PUT"), "the PUT");
    expect(calls.find((c) => c.method === "PUT")!.body).toEqual({ requirements_txt: "tinypkg==1.0\n" });
    await until(() => byTestId(host, "deps-status")?.dataset.status === "queued", "queued");
    expect(byTestId(host, "deps-summary")!.textContent).toMatch(/keep running with no layer/);
    await until(() => (byTestId(host, "deps-log")?.textContent ?? "").includes("Collecting tinypkg"), "the log to grow");
    expect(byTestId(host, "deps-log")!.getAttribute("role")).toBe("log");
    await until(() => byTestId(host, "deps-status")?.dataset.status === "ready", "ready");
    expect(byTestId(host, "deps-active-hash")!.textContent).toBe("aaaaaaaaaaaa");
    expect(byTestId(host, "deps-size")!.textContent).toBe("3.0 MB");
    expect(byTestId(host, "deps-built-at")!.textContent).toBe("just now");
    // Polling stops once the build is over
    const gets = calls.filter((c) => c.method === "GET").length;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.filter((c) => c.method === "GET").length).toBe(gets);
  });

  it("shows a 422's detail, a string or a FastAPI list", async () => {
    let n = 0;
    mockApi({
      [PATH]: [200, base],
      "PUT /api/projects/p1/requirements": () => (++n === 1
        ? [422, { detail: "line 1: '-e' (editable installs) is not allowed" }]
        : [422, { detail: [{ loc: ["body", "requirements_txt"], msg: "is over 64 KiB", type: "too_long" }] }]),
    });
    const { host } = render(<DependenciesTab project={project} />);
    await until(() => !!host.querySelector("textarea"));
    typeInto(host.querySelector("textarea")!, "-e .\n");
    click(byTestId(host, "save-requirements"));
    await until(() => !!byTestId(host, "error"), "the error");
    expect(byTestId(host, "error")!.textContent).toContain("'-e' (editable installs) is not allowed");
    click(byTestId(host, "save-requirements"));
    await until(() => (byTestId(host, "error")?.textContent ?? "").includes("is over 64 KiB"), "the field error");
    expect(byTestId(host, "error")!.textContent).toContain("requirements_txt");
  });

  it("a failed build shows pip's message in the open log, says nothing that runs changed, and can build again", async () => {
    const failed: Requirements = { ...base, requirements_txt: "nosuchpkg\n", requirements_hash: "sha256:bbbbbbbbbbbb", build_status: "failed", active_hash: "sha256:cccccccccccc1111",
      build_log: "ERROR: Could not find a version that satisfies the requirement nosuchpkg (from versions: none)\nERROR: No matching distribution found for nosuchpkg\n" };
    const { calls } = mockApi({ [PATH]: [200, failed], "PUT /api/projects/p1/requirements": [202, { ...failed, build_status: "queued" }] });
    const { host } = render(<DependenciesTab project={project} />);
    await until(() => !!byTestId(host, "deps-failed"));
    expect(byTestId(host, "deps-log")!.textContent).toContain("No matching distribution found for nosuchpkg");
    expect(byTestId(host, "deps-log")!.closest("details")).toBeNull(); // shown, not folded
    expect(byTestId(host, "deps-summary")!.textContent).toMatch(/functions keep layer cccccccccccc/);
    expect(byTestId(host, "deps-requirements-hash")!.previousElementSibling!.textContent).toMatch(/not active yet/);
    const again = byTestId(host, "save-requirements") as HTMLButtonElement;
    expect(again.disabled).toBe(false);
    expect(again.textContent).toBe("Build again");
    click(again);
    await until(() => calls.some((c) => c.method === "PUT"));
    expect(calls.find((c) => c.method === "PUT")!.body).toEqual({ requirements_txt: "nosuchpkg\n" });
    await until(() => allByTestId(host, "deps-status")[0].dataset.status === "queued", "queued again");
  });

  it("reads a bare 202 back from the server", async () => {
    let put = false;
    mockApi({
      [PATH]: () => [200, put ? { ...base, requirements_txt: "x\n", build_status: "queued" } : base],
      "PUT /api/projects/p1/requirements": () => { put = true; return [202, null]; },
    });
    const { host } = render(<DependenciesTab project={project} pollMs={10000} />);
    await until(() => !!host.querySelector("textarea"));
    typeInto(host.querySelector("textarea")!, "x\n");
    click(byTestId(host, "save-requirements"));
    await until(() => byTestId(host, "deps-status")?.dataset.status === "queued");
  });
});

describe("buildSummary", () => {
  it("tells which layer runs while a new one builds, and when it switches", () => {
    expect(buildSummary({ ...base })).toMatch(/standard library only/);
    expect(buildSummary({ ...base, requirements_txt: "a", build_status: "building", active_hash: "sha256:123456789012345" })).toMatch(/layer 123456789012 until it is ready/);
    expect(buildSummary({ ...base, requirements_txt: "a", build_status: "ready", requirements_hash: "x", active_hash: "x" })).toMatch(/^Ready/);
    expect(buildSummary({ ...base, requirements_txt: "a", build_status: "ready", requirements_hash: "x", active_hash: "y" })).toMatch(/next cold start/);
  });
});
