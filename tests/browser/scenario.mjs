// The browser scenario: a new user's path through the UI against the real binary.
//
// Starts build/clowdy (or $CLOWDY_BINARY) on 127.0.0.1:0 in a temp data dir, serving web/dist,
// and drives Debian's chromium through playwright-core. Each step is a test; a step whose
// prerequisite failed is skipped. Any request the page makes outside the server's origin fails
// the run. Screenshots go to tests/artifacts/browser/ (every page at 1440x900 and 390x844, checked
// with axe-core for serious or critical accessibility violations). Prints "N passed, N failed[, N skipped]",
// counting the web unit tests that tests/browser/run ran before (UNIT_PASSED / UNIT_FAILED).
//
// BROWSER_STEPS=<regex> runs only the matching steps. Steps for features a server may not have yet say which branch brings them when they fail for
// that reason: dependency layers (deps: --pip-index-url, the build of a tiny wheel served by a
// PEP 503 index this script starts on loopback), async calls, retries and schedules (async),
// /api/cluster (cluster), init_ms and queue_ms (perf).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const binary = process.env.CLOWDY_BINARY || path.join(root, "build", "clowdy");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = path.join(root, "tests", "artifacts", "browser");
const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const T = 20000; // default wait for UI changes, ms
const INVOKE_T = 60000; // invocations may cold-start a sandbox
const BUILD_T = 240000; // a dependency layer: pip in a build sandbox on a loaded machine

fs.rmSync(artifacts, { recursive: true, force: true });
fs.mkdirSync(artifacts, { recursive: true });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-"));
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-chromium-"));

function log(...a) { console.log(...a); }

// ---------------------------------------------------------------- server
async function startServer(dir = dataDir, extra = [], env = {}) {
  if (!fs.existsSync(binary)) throw new Error(`no clowdy binary at ${binary} (build it or set CLOWDY_BINARY)`);
  const webDir = path.join(root, "web", "dist");
  const logPath = path.join(dir, "server.log");
  const out = fs.openSync(logPath, "a");
  const proc = spawn(binary, ["--listen", "127.0.0.1:0", "--data-dir", dir, "--web-dir", webDir, ...extra], { stdio: ["ignore", out, out], env: { ...process.env, ...env } });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`clowdy exited with ${proc.exitCode}:\n${fs.readFileSync(logPath, "utf8").slice(-3000)}`);
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(fs.readFileSync(logPath, "utf8"));
    if (m) return { proc, url: m[1], logPath };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGKILL");
  throw new Error("clowdy did not print 'listening on' within 30 s");
}

// ---------------------------------------------------------------- test runner
const results = [];
const state = {};
let page, context, server;
const outside = [];
const allowedOrigins = new Set(); // the servers this run started
const pageErrors = [];
const failedRequests = [];
let currentStep = "";

async function shot(name) {
  try { await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true }); } catch { /* page may be gone */ }
}

// BROWSER_STEPS=<regex> runs only the steps whose names match (the others count as skipped): for a
// quick check of a few steps, e.g. BROWSER_STEPS='dashboard loads|init and queue'.
const only = process.env.BROWSER_STEPS ? new RegExp(process.env.BROWSER_STEPS) : null;

async function step(name, needs, fn) {
  if (only && !only.test(name)) {
    results.push({ name, status: "skipped", why: "not in BROWSER_STEPS" });
    return;
  }
  const missing = needs.filter((n) => !results.find((r) => r.name === n && r.status === "passed"));
  if (missing.length) {
    results.push({ name, status: "skipped", why: `needs: ${missing.join(", ")}` });
    log(`SKIP  ${name} (needs ${missing.join(", ")})`);
    return;
  }
  const t0 = Date.now();
  currentStep = name;
  try {
    await fn();
    results.push({ name, status: "passed" });
    log(`PASS  ${name} (${Date.now() - t0} ms)`);
    await shot(`${String(results.length).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-")}`);
  } catch (e) {
    results.push({ name, status: "failed", why: e?.message ?? String(e) });
    log(`FAIL  ${name} (${Date.now() - t0} ms)\n      ${String(e?.message ?? e).split("\n").slice(0, 24).join("\n      ")}`);
    await shot(`${String(results.length).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-")}-FAILED`);
  }
}

function assert(cond, msg) { if (!cond) throw new Error(msg); }

/** Runs axe-core on the page; returns the serious and critical violations as readable lines. */
async function axeViolations() {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.addScriptTag({ path: axePath });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(0, 2).join(" ")}`) }));
  });
  return found.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id} (${v.help}):\n        ${v.nodes.join("\n        ")}`);
}

/** The text of a Monaco editor, with its non-breaking spaces made plain. */
async function monacoText(testId) {
  return (await page.getByTestId(testId).locator(".view-lines").innerText()).replace(/\u00a0/g, " ");
}

/** Waits until every shown invocation row matches `attr`=`value` and at least one row is shown. */
async function rowsAll(attr, value) {
  await page.waitForFunction(([a, v]) => {
    const rows = [...document.querySelectorAll('[data-testid="invocation-row"]')];
    return rows.length > 0 && rows.every((r) => r.getAttribute(a) === v);
  }, [attr, value], { timeout: T });
}

async function apiGet(p) {
  const r = await fetch(server.url + p);
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** A local package index (PEP 503) on loopback: a tiny package "clowdy-tiny" 1.0 whose answer() is
 *  42, built here into a wheel with Debian's pip, offline, and served by python's http.server from
 *  simple/clowdy-tiny/. Returns { url, close }. */
async function startPackageIndex() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-index-"));
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "clowdy_tiny"), { recursive: true });
  fs.writeFileSync(path.join(src, "pyproject.toml"),
    '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "clowdy-tiny"\nversion = "1.0"\n');
  fs.writeFileSync(path.join(src, "clowdy_tiny", "__init__.py"), "def answer():\n    return 42\n");
  const pkg = path.join(dir, "simple", "clowdy-tiny");
  fs.mkdirSync(pkg, { recursive: true });
  const built = spawnSync("/usr/bin/python3", ["-m", "pip", "wheel", "--isolated", "--no-index", "--no-build-isolation",
    "--no-deps", "-w", pkg, src], { encoding: "utf8" });
  const wheels = fs.existsSync(pkg) ? fs.readdirSync(pkg).filter((f) => f.endsWith(".whl")) : [];
  if (built.status !== 0 || wheels.length !== 1) throw new Error(`pip wheel failed: ${built.stderr || built.stdout}`);
  fs.writeFileSync(path.join(pkg, "index.html"), `<!DOCTYPE html><html><body><a href="${wheels[0]}">${wheels[0]}</a></body></html>\n`);
  fs.writeFileSync(path.join(dir, "simple", "index.html"), '<!DOCTYPE html><html><body><a href="clowdy-tiny/">clowdy-tiny</a></body></html>\n');
  const proc = spawn("/usr/bin/python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (d) => { out += d; });
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const m = /port (\d+)/.exec(out);
    if (m) return { url: `http://127.0.0.1:${m[1]}/simple`, close: () => { proc.kill("SIGTERM"); fs.rmSync(dir, { recursive: true, force: true }); } };
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGKILL");
  throw new Error(`the package index did not start: ${out}`);
}

/** Leaves the page for a blank one, so that a server about to stop is not asked for anything more
 *  (a module still loading, a card's poll). */
async function leave() {
  try { await page.goto("about:blank"); } catch { /* the page may be gone */ }
}

/** Fails a step that needs a server feature, naming the branch that brings it. */
function needs(ok, branch, what) {
  assert(ok, `needs the ${branch} branch's server side: ${what}`);
}

/** A JSON request to the server, as a script would send it (not through the page). */
async function apiSend(method, p, body) {
  const r = await fetch(server.url + p, { method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Replaces the content of the Monaco editor inside `testId` by typing `text` like a user. */
async function typeInMonaco(testId, text) {
  const host = page.getByTestId(testId);
  await host.locator(".monaco-editor").waitFor({ timeout: T });
  await host.locator(".view-lines").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.press("Delete");
  for (const [i, line] of text.split("\n").entries()) {
    if (i > 0) {
      // A typed newline, not the Enter key: Enter would accept a suggestion that Monaco opened after
      // the Escape below (it computes them asynchronously), swallowing the line break.
      await page.keyboard.insertText("\n");
      // Monaco keeps the indent after Enter; clear it so our own indentation is exact.
      await page.keyboard.press("Shift+Home");
      await page.keyboard.press("Delete");
    }
    await page.keyboard.type(line, { delay: 5 });
    await page.keyboard.press("Escape"); // close any suggestion widget before the next Enter
  }
}

// ---------------------------------------------------------------- scenario
const CODE_V2 = [
  "def handler(event, context):",
  "    q = event.get(\"query\") or event",
  "    print(\"adding\", q[\"a\"], q[\"b\"])",
  "    return {\"sum\": int(q[\"a\"]) + int(q[\"b\"])}",
].join("\n");
const CODE_V3 = [
  "def handler(event, context):",
  "    return {\"product\": event[\"a\"] * event[\"b\"]}",
].join("\n");

async function main() {
  server = await startServer();
  log(`server at ${server.url}, data in ${dataDir}`);
  const origin = new URL(server.url).origin;
  allowedOrigins.add(origin);

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    viewport: { width: 1366, height: 900 },
  });
  context.on("request", (req) => {
    const u = req.url();
    if (u.startsWith("data:") || u.startsWith("blob:")) return;
    try { if (!allowedOrigins.has(new URL(u).origin)) outside.push(u); } catch { outside.push(u); }
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(T);
  page.on("pageerror", (e) => pageErrors.push({ text: String(e?.message ?? e), step: currentStep }));
  context.on("requestfailed", (r) =>
    failedRequests.push({ url: r.url(), why: r.failure()?.errorText ?? "", step: currentStep }));
  // A reload with unsaved code meets the browser's "leave site?" prompt: accept it (the in-app
  // guard and the restored draft are what the steps check).
  page.on("dialog", (d) => { void (d.type() === "beforeunload" ? d.accept() : d.dismiss()); });

  await step("dashboard loads", [], async () => {
    await page.goto(server.url + "/");
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    await page.getByTestId("stat-invocations").waitFor();
    assert((await page.getByTestId("stat-functions").textContent()) === "0", "a fresh server should show 0 functions");
    const rate = await page.getByTestId("stat-success-rate").textContent();
    assert(rate === "—", `with no invocations the success rate should read "—", not ${rate}`);
    assert(await page.title() === "Dashboard · Clowdy", `page title: ${await page.title()}`);
  });

  await step("create project", ["dashboard loads"], async () => {
    await page.getByRole("link", { name: "Projects" }).first().click();
    await page.getByRole("button", { name: "New project" }).click();
    await page.getByLabel("Name").fill("Browser Test");
    await page.getByRole("button", { name: "Create project" }).click();
    await page.waitForURL(/\/projects\/[0-9a-f]{12}/);
    state.projectId = page.url().split("/projects/")[1].split(/[?#]/)[0];
    await page.getByRole("heading", { name: "Browser Test" }).waitFor();
    const p = await apiGet(`/api/projects/${state.projectId}`);
    assert(p.status === 200 && p.body.slug === "browser-test", `project not in the API: ${JSON.stringify(p)}`);
    state.slug = p.body.slug;
  });

  await step("create function", ["create project"], async () => {
    await page.getByRole("link", { name: "New function" }).click();
    await page.waitForURL(/\/functions\/new/);
    await page.getByLabel("Name").fill("adder");
    const selected = await page.getByLabel("Project").inputValue();
    assert(selected === state.projectId, "the project should be preselected");
    await page.getByRole("button", { name: "Create function" }).click();
    await page.waitForURL(/\/functions\/[0-9a-f]{12}$/);
    state.fnId = page.url().split("/functions/")[1];
    await page.getByTestId("active-version").filter({ hasText: "v1" }).waitFor();
    await page.getByTestId("code-editor").locator(".monaco-editor").waitFor();
  });

  await step("type code into Monaco and save", ["create function"], async () => {
    await typeInMonaco("code-editor", CODE_V2);
    await page.getByTestId("save-code").click();
    await page.getByTestId("active-version").filter({ hasText: "v2" }).waitFor();
    const f = await apiGet(`/api/functions/${state.fnId}`);
    assert(f.body?.code?.trim() === CODE_V2, `saved code differs from what was typed:\n${f.body?.code}`);
  });

  await step("invoke from the test panel", ["type code into Monaco and save"], async () => {
    await typeInMonaco("test-input", '{"a": 2, "b": 3}');
    await page.getByTestId("run-test").click();
    await page.getByTestId("test-result").waitFor({ timeout: INVOKE_T });
    const status = await page.getByTestId("test-status").textContent();
    const output = await page.getByTestId("test-output").textContent();
    assert(status === "success", `invocation status ${status}: ${output}`);
    assert(/"sum":\s*5/.test(output), `unexpected output: ${output}`);
    await page.getByTestId("test-duration").waitFor();
    await page.getByTestId("test-logs").filter({ hasText: "adding 2 3" }).waitFor();
    await page.getByTestId("test-start").waitFor();
  });

  await step("invocation appears in the log table", ["invoke from the test panel"], async () => {
    const row = page.getByTestId("invocation-row").first();
    await row.waitFor({ timeout: T });
    await row.click();
    const details = page.getByTestId("invocation-details").first();
    await details.waitFor();
    const text = await details.textContent();
    assert(text.includes('"a": 2') && text.includes('"sum": 5') && text.includes("adding 2 3"), `details lack input/output/logs: ${text}`);
  });

  await step("a failing invocation shows its error", ["invoke from the test panel"], async () => {
    await typeInMonaco("test-input", '{"a": 1}');
    await page.keyboard.press("ControlOrMeta+Enter"); // runs the test from the input editor
    await page.getByTestId("test-status").filter({ hasText: "error" }).waitFor({ timeout: INVOKE_T });
    const output = await page.getByTestId("test-output").textContent();
    assert(/KeyError|'b'/.test(output), `the error should name the missing key: ${output}`);
    const row = page.getByTestId("invocation-row").filter({ hasText: "error" }).first();
    await row.waitFor();
    // The row opens from the keyboard and shows the error, not "(empty)".
    await row.getByTestId("invocation-toggle").focus();
    await page.keyboard.press("Enter");
    const err = page.getByTestId("invocation-error").first();
    await err.waitFor();
    const text = await err.textContent();
    assert(/KeyError|'b'/.test(text), `the log row should show the error: ${text}`);
    assert(await row.getByTestId("invocation-toggle").getAttribute("aria-expanded") === "true", "the toggle should say it is expanded");
    await page.keyboard.press("Enter");
  });

  await step("Ctrl+S saves from the code editor and the version goes up", ["invoke from the test panel"], async () => {
    const before = (await apiGet(`/api/functions/${state.fnId}`)).body.active_version;
    await typeInMonaco("code-editor", CODE_V2 + "\n# saved with the keyboard");
    await page.keyboard.press("ControlOrMeta+s");
    await page.getByTestId("active-version").filter({ hasText: `v${before + 1}` }).waitFor();
    const f = await apiGet(`/api/functions/${state.fnId}`);
    assert(f.body.active_version === before + 1 && f.body.code.includes("# saved with the keyboard"), `Ctrl+S did not save: v${f.body.active_version}`);
    state.version = f.body.active_version;
  });

  await step("Ctrl+M then Tab leaves the code editor, as its hint says", ["create function"], async () => {
    const hint = await page.getByTestId("editor-keys").textContent();
    assert(/Ctrl\+M/.test(hint) && /Tab/.test(hint), `the editor should say how to leave it: ${hint}`);
    const inEditor = () => page.evaluate(() => !!document.activeElement?.closest('[data-testid="code-editor"]'));
    await page.getByTestId("code-editor").locator(".view-lines").click();
    assert(await inEditor(), "the click should focus the editor");
    await page.keyboard.press("Control+m");
    await page.keyboard.press("Tab");
    const left = !(await inEditor());
    await page.getByTestId("code-editor").locator(".view-lines").click();
    await page.keyboard.press("Control+m"); // back to Tab indenting, for the steps that type code
    assert(left, "Tab should move the focus out of the editor after Ctrl+M");
    await page.getByTestId("code-status").filter({ hasText: "is live" }).waitFor(); // no tab was typed
  });

  await step("save again and roll back", ["type code into Monaco and save"], async () => {
    const before = (await apiGet(`/api/functions/${state.fnId}`)).body.active_version;
    await typeInMonaco("code-editor", CODE_V3);
    await page.getByTestId("save-code").click();
    await page.getByTestId("active-version").filter({ hasText: `v${before + 1}` }).waitFor();
    await page.getByTestId("version-picker").selectOption("2");
    await page.getByTestId("rollback").click();
    await page.getByTestId("active-version").filter({ hasText: "v2" }).waitFor();
    const f = await apiGet(`/api/functions/${state.fnId}`);
    assert(f.body.active_version === 2 && f.body.code.trim() === CODE_V2, `rollback not applied: v${f.body.active_version}`);
    const editorText = await page.getByTestId("code-editor").locator(".view-lines").innerText();
    assert(editorText.replace(/\u00a0/g, " ").includes("adding"), "the editor should show version 2's code");
  });

  await step("navigating away with unsaved code asks", ["save again and roll back"], async () => {
    await typeInMonaco("code-editor", CODE_V2 + "\n# not saved");
    await page.getByTestId("code-status").filter({ hasText: "Unsaved changes" }).waitFor();
    await page.getByRole("link", { name: "Projects" }).first().click();
    const dialog = page.getByTestId("unsaved-dialog");
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Stay on this page" }).click();
    await dialog.waitFor({ state: "detached" });
    assert(page.url().endsWith(`/functions/${state.fnId}`), `staying should keep the page: ${page.url()}`);
    assert((await monacoText("code-editor")).includes("# not saved"), "the edits should still be in the editor");
    // A remount (the assistant's refresh, a reload) brings the edits back instead of losing them.
    await page.reload();
    await page.getByTestId("draft-restored").waitFor();
    await page.getByTestId("code-editor").locator(".monaco-editor").waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="code-editor"] .view-lines')?.textContent.replace(/\u00a0/g, " ").includes("not saved"));
    // Leaving and discarding.
    await page.getByRole("link", { name: "Projects" }).first().click();
    await dialog.getByRole("button", { name: "Discard changes" }).click();
    await page.waitForURL(/\/projects$/);
    await page.goto(`${server.url}/functions/${state.fnId}`);
    await page.getByTestId("code-status").filter({ hasText: "is live" }).waitFor();
    assert(await page.getByTestId("draft-restored").count() === 0, "a discarded draft should not come back");
    const f = await apiGet(`/api/functions/${state.fnId}`);
    assert(!f.body.code.includes("# not saved"), "discarded edits must not be saved");
  });

  await step("a saved test event survives a reload", ["save again and roll back"], async () => {
    await page.goto(`${server.url}/functions/${state.fnId}`);
    await typeInMonaco("test-input", '{"a": 20, "b": 22}');
    await page.getByTestId("save-event").click();
    await page.getByLabel("Event name").fill("twenty and twenty-two");
    await page.getByTestId("save-event-confirm").click();
    await page.getByTestId("curl-example").filter({ hasText: '"a":20' }).waitFor(); // the curl follows the input
    await page.reload();
    await page.getByTestId("test-input").locator(".monaco-editor").waitFor();
    await page.getByTestId("saved-events").selectOption("twenty and twenty-two");
    await page.waitForFunction(() => document.querySelector('[data-testid="test-input"] .view-lines')?.textContent.includes("22"));
    await page.getByTestId("run-test").click();
    await page.getByTestId("test-status").filter({ hasText: "success" }).waitFor({ timeout: INVOKE_T });
    const out = await page.getByTestId("test-output").textContent();
    assert(/"sum":\s*42/.test(out), `the saved event should run: ${out}`);
  });

  await step("network toggle and limits, with field errors from the API", ["create function"], async () => {
    await page.goto(`${server.url}/functions/${state.fnId}`);
    await page.getByLabel("Memory (MB)").fill("10");
    await page.getByRole("button", { name: "Save settings" }).click();
    const err = page.getByTestId("error").filter({ hasText: "memory_mb" });
    await err.waitFor();
    await page.getByLabel("Memory (MB)").fill("256");
    await page.getByLabel("Timeout (s)").fill("10");
    await page.getByTestId("network-toggle").click();
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved").first().waitFor();
    // The toast sits clear of every control of the page.
    const covered = await page.evaluate(() => {
      const t = document.querySelector('[data-testid="toast"]')?.getBoundingClientRect();
      if (!t) return "no toast";
      const hit = [...document.querySelectorAll("main input, main textarea, main select, main button, main [role=switch], main .monaco-editor")]
        .filter((e) => { const r = e.getBoundingClientRect(); return r.width && r.left < t.right && t.left < r.right && r.top < t.bottom && t.top < r.bottom; });
      return hit.map((e) => e.outerHTML.slice(0, 80)).join("\n");
    });
    assert(covered === "", `the toast covers: ${covered}`);
    const f = await apiGet(`/api/functions/${state.fnId}`);
    assert(f.body.memory_mb === 256 && f.body.timeout_seconds === 10 && f.body.network_enabled === true,
      `limits not saved: ${JSON.stringify({ m: f.body.memory_mb, t: f.body.timeout_seconds, n: f.body.network_enabled })}`);
  });

  await step("add a route and call it", ["create function"], async () => {
    await page.goto(`${server.url}/projects/${state.projectId}?tab=routes`);
    await page.getByRole("button", { name: "Add route" }).click();
    await page.getByLabel("Method").selectOption("GET");
    await page.getByLabel("Path").fill("/add");
    await page.getByRole("button", { name: "Save route" }).click();
    const url = `${server.url}/api/gateway/${state.slug}/add`;
    await page.getByTestId("route-url").filter({ hasText: url }).waitFor();
    await page.getByRole("button", { name: "Try" }).click();
    await page.getByTestId("route-call-url").fill(url + "?a=4&b=5");
    await page.getByTestId("route-call").click();
    const resp = page.getByTestId("route-response");
    await resp.waitFor({ timeout: INVOKE_T });
    const text = await resp.textContent();
    assert(text.includes("HTTP 200") && /"sum":\s*9/.test(text), `gateway answer: ${text}`);
  });

  await step("disable the function: its route answers 503 until enabled", ["add a route and call it"], async () => {
    const setEnabled = async (want) => {
      await page.goto(`${server.url}/functions/${state.fnId}`);
      await page.getByTestId("enabled-toggle").click();
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByText("Settings saved").first().waitFor();
      const f = await apiGet(`/api/functions/${state.fnId}`);
      assert(f.body.status === (want ? "active" : "disabled"), `status after the toggle: ${f.body.status}`);
    };
    const callRoute = async () => {
      await page.goto(`${server.url}/projects/${state.projectId}?tab=routes`);
      await page.getByRole("button", { name: "Try" }).click();
      const url = `${server.url}/api/gateway/${state.slug}/add`;
      await page.getByTestId("route-call-url").fill(url + "?a=1&b=1");
      await page.getByTestId("route-call").click();
      const resp = page.getByTestId("route-response");
      await resp.waitFor({ timeout: INVOKE_T });
      return resp.textContent();
    };
    await setEnabled(false);
    await page.getByText("disabled", { exact: true }).first().waitFor();
    const off = await callRoute();
    assert(off.includes("HTTP 503") && off.includes("disabled"), `a disabled function's route: ${off}`);
    await setEnabled(true);
    const on = await callRoute();
    assert(on.includes("HTTP 200") && /"sum":\s*2/.test(on), `after enabling again: ${on}`);
  });

  await step("edit and delete a route", ["add a route and call it"], async () => {
    await page.getByRole("button", { name: "Edit route" }).click();
    await page.getByLabel("Path").fill("/sum/:a/:b");
    await page.getByRole("button", { name: "Save route" }).click();
    const url = `${server.url}/api/gateway/${state.slug}/sum/:a/:b`;
    await page.getByTestId("route-url").filter({ hasText: url }).waitFor();
    await page.getByRole("button", { name: "Delete route GET /sum/:a/:b" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
    await page.getByText("No routes yet").waitFor();
    const r = await apiGet(`/api/projects/${state.projectId}/routes`);
    assert(Array.isArray(r.body) && r.body.length === 0, `routes left: ${JSON.stringify(r.body)}`);
  });

  await step("filtering logs by status and source", ["add a route and call it", "a failing invocation shows its error"], async () => {
    await page.goto(`${server.url}/functions/${state.fnId}`);
    await page.getByTestId("invocation-row").first().waitFor();
    await page.getByTestId("log-status").selectOption("error");
    await rowsAll("data-status", "error");
    await page.getByTestId("log-status").selectOption("success");
    await rowsAll("data-status", "success");
    await page.getByTestId("log-status").selectOption("all");
    await page.getByTestId("log-source").selectOption("gateway");
    await rowsAll("data-source", "gateway");
    await page.getByTestId("log-source").selectOption("direct");
    await rowsAll("data-source", "direct");
    await page.getByTestId("log-status").selectOption("timeout");
    await page.getByText("No invocation matches the filters").waitFor();
    await page.getByRole("button", { name: "Clear filters" }).click();
    await page.getByTestId("invocation-row").first().waitFor();
    const count = await page.getByTestId("log-count").textContent();
    assert(/^\d+ invocations/.test(count), `the count should cover every loaded row: ${count}`);
  });

  await step("the log: cold start and peak memory columns, Load more beyond 50, live updates", ["dashboard loads"], async () => {
    // A project of its own, so that the other steps' counts stay as they are
    const project = await apiSend("POST", "/api/projects", { name: "Log Test" });
    assert(project.status === 200, `project: ${JSON.stringify(project)}`);
    const fn = await apiSend("POST", "/api/functions", { name: "counter", project_id: project.body.id,
      code: "def handler(event, context):\n    return event.get('n')\n" });
    assert(fn.status === 200, `function: ${JSON.stringify(fn)}`);
    const list = `/api/functions/${fn.body.id}/invocations?limit=500`;
    const CALLS = 55; // more than the first page of 50
    for (let n = 0; n < CALLS; n++) {
      const r = await apiSend("POST", `/api/invoke/${fn.body.id}`, { input: { n } });
      assert(r.status === 200 && r.body?.output === n, `call ${n}: ${JSON.stringify(r.body)}`);
    }
    let records = [];
    for (const deadline = Date.now() + T; records.length < CALLS && Date.now() < deadline;) {
      records = (await apiGet(list)).body ?? [];     // the recorder writes in batches
      if (records.length < CALLS) await new Promise((r) => setTimeout(r, 100));
    }
    assert(records.length === CALLS, `the server lists ${records.length} of ${CALLS} calls`);

    await page.goto(`${server.url}/functions/${fn.body.id}`);
    const rows = page.getByTestId("invocation-row");
    await page.getByTestId("log-count").filter({ hasText: /^50 invocations/ }).waitFor();
    assert(await rows.count() === 50, `the first page should hold 50 rows, not ${await rows.count()}`);
    // Start and Memory: the first call (the oldest row) was the cold start, the newest warm; each
    // shows its peak memory, as the API lists them
    const cells = async (row) => (await row.locator("td").allTextContents()).map((t) => t.trim());
    const newest = await cells(rows.first());
    assert(records[0].cold_start === false && newest[4] === "warm", `the newest row's start: ${newest.join(" | ")}`);
    assert(records[0].peak_memory_kb > 0 && /^\d+(\.\d)? (KB|MB)$/.test(newest[5]), `the newest row's memory: ${newest.join(" | ")}`);
    // Load more: the other 5, down to the cold start
    const more = page.getByTestId("log-more");
    assert(/Load 50 more/.test(await more.textContent()), `the button: ${await more.textContent()}`);
    await more.click();
    await page.getByTestId("log-count").filter({ hasText: new RegExp(`^${CALLS} invocations`) }).waitFor();
    assert(await rows.count() === CALLS, `after Load more: ${await rows.count()} rows`);
    assert(await more.count() === 0, "nothing is left to load");
    const oldest = await cells(rows.last());
    assert(records[CALLS - 1].cold_start === true && oldest[4] === "cold", `the oldest row's start: ${oldest.join(" | ")}`);
    assert(/^\d+(\.\d)? (KB|MB)$/.test(oldest[5]), `the oldest row's memory: ${oldest.join(" | ")}`);
    // Live: a call made elsewhere appears without a reload (the log polls every 5 s)
    assert(/updates every 5 s/.test(await page.getByTestId("log-count").textContent()), "the log should say it is live");
    const late = await apiSend("POST", `/api/invoke/${fn.body.id}`, { input: { n: 1000 } });
    assert(late.status === 200, `the late call: ${JSON.stringify(late.body)}`);
    await page.getByTestId("log-count").filter({ hasText: new RegExp(`^${CALLS + 1} invocations`) }).waitFor({ timeout: T });
    await rows.first().click();
    await page.getByTestId("invocation-details").first().filter({ hasText: '"n": 1000' }).waitFor();
    await apiSend("DELETE", `/api/projects/${project.body.id}`);
  });

  await step("a timeout's row shows timed out", ["create project"], async () => {
    await page.goto(`${server.url}/functions/new?project=${state.projectId}`);
    await page.getByLabel("Name").fill("sleeper");
    await page.getByRole("button", { name: "Create function" }).click();
    await page.waitForURL(/\/functions\/[0-9a-f]{12}$/);
    state.sleeperId = page.url().split("/functions/")[1];
    await typeInMonaco("code-editor", "import time\ndef handler(event, context):\n    time.sleep(30)\n    return 1");
    await page.keyboard.press("ControlOrMeta+s");
    await page.getByTestId("active-version").filter({ hasText: "v2" }).waitFor();
    await page.getByLabel("Timeout (s)").fill("1");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved").first().waitFor();
    await page.getByTestId("run-test").click();
    await page.getByTestId("test-status").filter({ hasText: "timed out" }).waitFor({ timeout: INVOKE_T });
    const row = page.getByTestId("invocation-row").filter({ hasText: "timed out" }).first();
    await row.waitFor();
    await row.click();
    const err = await page.getByTestId("invocation-error").first().textContent();
    assert(/timed out/i.test(err), `the row's details should say why: ${err}`);
  });

  await step("add a secret and see it masked", ["create project"], async () => {
    await page.goto(`${server.url}/projects/${state.projectId}?tab=env`);
    await page.getByLabel("Key", { exact: true }).fill("API_KEY");
    await page.getByLabel("Value", { exact: true }).fill("s3cr3t-value");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    const row = page.getByTestId("env-row").filter({ hasText: "API_KEY" });
    await row.waitFor();
    assert((await row.getByTestId("env-value").textContent()) === "••••••••", "the secret should be masked");
    assert(!(await page.content()).includes("s3cr3t-value"), "the secret value must not be in the page");
    assert((await row.getByTestId("env-write-only").textContent()).trim() === "write-only",
           "the UI should say a secret is write-only");
    assert((await row.getByRole("button", { name: "Reveal value" }).count()) === 0,
           "there is nothing to reveal: the server never sends a secret back");
    const env = await apiGet(`/api/projects/${state.projectId}/env`);
    assert(env.body.find((v) => v.key === "API_KEY")?.value === "********", "the API should mask the secret");
  });

  await step("API errors show the detail sentence", ["dashboard loads"], async () => {
    await page.goto(`${server.url}/functions/000000000000`);
    const err = page.getByTestId("error");
    await err.waitFor();
    const text = await err.textContent();
    assert(/not found/i.test(text), `expected the API's detail, got: ${text}`);
    await page.getByRole("link", { name: "Back to functions" }).click();
    await page.getByRole("heading", { name: "Functions" }).waitFor();
  });

  await step("dependencies and database: each tab shows what the server offers", ["create project"], async () => {
    // Each tab follows its endpoint: the form when the server has the feature, the "not available
    // yet" notice (with the server's own sentence) when it answers 501 — never one for the other
    const notice = page.getByTestId("not-available");
    const deps = await apiGet(`/api/projects/${state.projectId}/requirements`);
    assert(deps.status === 200 || deps.status === 501, `requirements: ${JSON.stringify(deps)}`);
    await page.goto(`${server.url}/projects/${state.projectId}?tab=dependencies`);
    const requirements = page.getByRole("textbox", { name: "requirements.txt" });
    if (deps.status === 501) {
      await notice.filter({ hasText: deps.body.detail }).waitFor();
      assert(await requirements.count() === 0, "dependencies: a form for a feature the server lacks");
    } else {
      await requirements.waitFor();
      assert((await requirements.inputValue()) === (deps.body.requirements_txt ?? ""), `the box should hold the project's requirements: ${JSON.stringify(deps)}`);
      assert(await notice.count() === 0, "dependencies: 'not available' on a server that has them");
    }
    const db = await apiGet(`/api/projects/${state.projectId}/database`);
    assert(db.status === 200 && db.body.has_database === false, `database: ${JSON.stringify(db)}`);
    await page.goto(`${server.url}/projects/${state.projectId}?tab=database`);
    const tab = page.getByTestId("database-tab");
    await tab.getByText("This project has no database yet.").waitFor();
    await tab.getByRole("button", { name: "Create database" }).waitFor();
    assert(await notice.count() === 0, "database: 'not available' on a server that has it");
  });

  await step("provision a database, use it from a function, remove it", ["dashboard loads"], async () => {
    // A project of its own, so that the other steps' counts stay as they are
    const send = apiSend;
    const project = await send("POST", "/api/projects", { name: "Database Test" });
    assert(project.status === 200, `project: ${JSON.stringify(project)}`);
    await page.goto(`${server.url}/projects/${project.body.id}?tab=database`);
    await page.getByRole("button", { name: "Create database" }).click();
    const url = page.getByTestId("database-url");
    await url.waitFor({ timeout: INVOKE_T });      // the tab polls until the database is ready
    assert((await url.textContent()) === "sqlite:////opt/database/db.sqlite3", `url: ${await url.textContent()}`);
    assert(/sqlite3\.connect/.test(await page.getByTestId("database-snippet").textContent()), "no Python snippet");
    const code = "import os, sqlite3\ndef handler(event, context):\n" +
      "    db = sqlite3.connect(os.environ['DATABASE_URL'][len('sqlite:///'):])\n" +
      "    db.execute('CREATE TABLE IF NOT EXISTS t (v TEXT)')\n" +
      "    db.execute('INSERT INTO t VALUES (?)', (event['v'],))\n    db.commit()\n" +
      "    return [r[0] for r in db.execute('SELECT v FROM t')]\n";
    const fn = await send("POST", "/api/functions", { name: "dbuser", code, project_id: project.body.id });
    assert(fn.status === 200, `function: ${JSON.stringify(fn)}`);
    const run = await send("POST", `/api/invoke/${fn.body.id}`, { input: { v: "from the browser test" } });
    assert(run.body?.success && JSON.stringify(run.body.output) === '["from the browser test"]',
      `invocation: ${JSON.stringify(run.body)}`);
    // Removal asks first
    await page.getByRole("button", { name: "Remove database" }).click();
    await page.getByTestId("database-deprovision-confirm").click();
    await page.getByRole("button", { name: "Create database" }).waitFor({ timeout: INVOKE_T });
    const after = await apiGet(`/api/projects/${project.body.id}/database`);
    assert(after.body?.has_database === false, `after removal: ${JSON.stringify(after.body)}`);
    await send("DELETE", `/api/projects/${project.body.id}`);
  });

  await step("dependencies: add a requirement and watch the layer build; a bad one fails with pip's message", ["dashboard loads"], async () => {
    // A server of its own, pointed at a package index on loopback that holds one tiny wheel
    const index = await startPackageIndex();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-deps-"));
    let deps;
    try {
      try {
        deps = await startServer(dir, ["--pip-index-url", index.url]);
      } catch (e) {
        needs(false, "deps", `the server did not start with --pip-index-url: ${String(e.message).slice(-400)}`);
      }
      allowedOrigins.add(new URL(deps.url).origin);
      const send = async (method, p, body) => {
        const r = await fetch(deps.url + p, { method, headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: r.status, body: await r.json().catch(() => null) };
      };
      const project = await send("POST", "/api/projects", { name: "Layer Test" });
      const fn = await send("POST", "/api/functions", { name: "tiny", project_id: project.body.id,
        code: "import clowdy_tiny\ndef handler(event, context):\n    return {'answer': clowdy_tiny.answer()}\n" });
      assert(fn.status === 200, `function: ${JSON.stringify(fn)}`);
      const probe = await send("GET", `/api/projects/${project.body.id}/requirements`);
      needs(probe.status === 200 && "build_status" in (probe.body ?? {}), "deps", `GET requirements answered ${probe.status} ${JSON.stringify(probe.body)}`);

      await page.goto(`${deps.url}/projects/${project.body.id}?tab=dependencies`);
      const status = page.getByTestId("deps-status");
      await status.waitFor();
      assert(await page.getByTestId("deps-active-hash").textContent() === "none", "a new project has no layer");
      await page.getByRole("textbox", { name: "requirements.txt" }).fill("clowdy-tiny==1.0\n");
      await page.getByTestId("save-requirements").click();
      // PUT answers at once: the build is under way (or, on a fast machine, done) ...
      await page.locator('[data-testid="deps-status"]:is([data-status="queued"], [data-status="building"], [data-status="ready"])').waitFor();
      // ... and the tab follows it, polling, to the end
      await page.locator('[data-testid="deps-status"][data-status="ready"], [data-testid="deps-status"][data-status="failed"]').waitFor({ timeout: BUILD_T });
      const after = await send("GET", `/api/projects/${project.body.id}/requirements`);
      assert(after.body.build_status === "ready", `the build did not succeed: ${JSON.stringify(after.body).slice(0, 3000)}`);
      const short = after.body.active_hash.replace(/^sha256:/, "").slice(0, 12);
      await page.getByTestId("deps-active-hash").filter({ hasText: short }).waitFor();
      assert(/\d (B|KB|MB)$/.test(await page.getByTestId("deps-size").textContent()), `the layer's size: ${await page.getByTestId("deps-size").textContent()}`);
      assert(await page.getByTestId("deps-built-at").textContent() !== "—", "when it was built");

      // The function imports the package, and its page says which layer it runs with
      await page.goto(`${deps.url}/functions/${fn.body.id}`);
      await page.getByTestId("fn-layer").filter({ hasText: short }).waitFor();
      await page.getByTestId("run-test").click();
      await page.getByTestId("test-status").filter({ hasText: "success" }).waitFor({ timeout: INVOKE_T });
      assert(/"answer":\s*42/.test(await page.getByTestId("test-output").textContent()), `the function should use the package: ${await page.getByTestId("test-output").textContent()}`);

      // A package the index does not have: the build fails with pip's own words, nothing that runs changes
      await page.goto(`${deps.url}/projects/${project.body.id}?tab=dependencies`);
      await page.getByRole("textbox", { name: "requirements.txt" }).fill("clowdy-tiny==1.0\nclowdy-no-such-package==9.9\n");
      await page.getByTestId("save-requirements").click();
      await page.locator('[data-testid="deps-status"][data-status="failed"]').waitFor({ timeout: BUILD_T });
      await page.getByTestId("deps-failed").waitFor();
      const log = await page.getByTestId("deps-log").textContent();
      assert(/clowdy-no-such-package/.test(log) && /No matching distribution|Could not find a version|not find/i.test(log), `the log should carry pip's message: ${log.slice(-1500)}`);
      await page.getByTestId("deps-active-hash").filter({ hasText: short }).waitFor();
      const still = await send("POST", `/api/invoke/${fn.body.id}`, { input: {} });
      assert(still.body?.success && still.body.output?.answer === 42, `the function should keep its layer: ${JSON.stringify(still.body)}`);
    } finally {
      await leave();
      if (deps?.proc && deps.proc.exitCode === null) deps.proc.kill("SIGTERM");
      index.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  await step("schedules card: a bad expression says why; add rate and cron schedules, delete them", ["create function"], async () => {
    const probe = await apiGet(`/api/functions/${state.fnId}/schedules`);
    needs(probe.status === 200 && Array.isArray(probe.body), "async", `GET schedules answered ${probe.status}`);
    await page.goto(`${server.url}/functions/${state.fnId}`);
    const card = page.getByTestId("schedules-card");
    await card.getByTestId("schedules-empty").waitFor();
    const expression = card.getByLabel("Expression");
    await expression.fill("every tuesday");
    await card.getByTestId("schedule-add").click();
    await card.getByTestId("error").waitFor();
    for (const e of ["rate(5 minutes)", "0 3 * * *"]) {
      await expression.fill(e);
      await card.getByTestId("schedule-add").click();
      await card.getByTestId("schedule-row").filter({ hasText: e }).waitFor();
    }
    assert(await card.getByTestId("error").count() === 0, "the error should go once a schedule is added");
    const next = await card.getByTestId("schedule-row").filter({ hasText: "rate(5 minutes)" }).getByTestId("schedule-next").textContent();
    assert(/next (in \d+ (s|min)|due now) · last never/.test(next), `the next run: ${next}`);
    const listed = await apiGet(`/api/functions/${state.fnId}/schedules`);
    assert(listed.body.map((x) => x.expression).sort().join("|") === "0 3 * * *|rate(5 minutes)", `the API's schedules: ${JSON.stringify(listed.body)}`);
    for (const e of ["rate(5 minutes)", "0 3 * * *"]) await card.getByRole("button", { name: `Delete schedule ${e}` }).click();
    await card.getByTestId("schedules-empty").waitFor();
    const left = await apiGet(`/api/functions/${state.fnId}/schedules`);
    assert(left.body.length === 0, `schedules left: ${JSON.stringify(left.body)}`);
  });

  await step("failed events: an async call that fails with no retries left is listed, re-driven and deleted", ["dashboard loads"], async () => {
    const project = await apiSend("POST", "/api/projects", { name: "Async Test" });
    const fn = await apiSend("POST", "/api/functions", { name: "flaky", project_id: project.body.id,
      code: "def handler(event, context):\n    raise ValueError('always fails: %s' % event.get('n'))\n" });
    assert(fn.status === 200, `function: ${JSON.stringify(fn)}`);
    try {
      const probe = await apiGet(`/api/functions/${fn.body.id}/failed-events`);
      needs(probe.status === 200 && typeof fn.body.max_retries === "number", "async", `GET failed-events answered ${probe.status}; max_retries is ${fn.body.max_retries}`);
      await page.goto(`${server.url}/functions/${fn.body.id}`);
      await page.getByLabel("Async retries").fill("0");
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByText("Settings saved").first().waitFor();
      assert((await apiGet(`/api/functions/${fn.body.id}`)).body.max_retries === 0, "max_retries should be saved");
      const card = page.getByTestId("failed-events-card");
      await card.getByTestId("failed-events-empty").waitFor();
      const call = await apiSend("POST", `/api/invoke/${fn.body.id}?async=1`, { input: { n: 7 } });
      assert(call.status === 202 && call.body?.invocation_id, `an async call: ${call.status} ${JSON.stringify(call.body)}`);
      // The card and the log poll: the failure shows up without a reload
      const event = card.getByTestId("failed-event");
      await event.first().waitFor({ timeout: INVOKE_T });
      assert(/always fails: 7/.test(await event.first().textContent()), `the event's error: ${await event.first().textContent()}`);
      assert(/^1 attempt$/.test(await event.first().getByTestId("failed-event-attempts").textContent()), "one attempt with no retries");
      const asyncRows = page.locator('[data-testid="invocation-row"][data-source="async"][data-status="error"]');
      await asyncRows.first().waitFor({ timeout: T });
      // Re-drive: it runs again (and fails again, so it is listed again)
      await card.getByTestId("failed-event-redrive").first().click();
      await page.getByText("Event re-driven").first().waitFor();
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="invocation-row"][data-source="async"][data-status="error"]').length >= 2, null, { timeout: INVOKE_T });
      await event.first().waitFor({ timeout: INVOKE_T });
      assert(await event.count() === 1, `one failed event after the re-drive, not ${await event.count()}`);
      await card.getByTestId("failed-event-delete").click();
      await card.getByTestId("failed-events-empty").waitFor();
      const left = await apiGet(`/api/functions/${fn.body.id}/failed-events`);
      assert(left.body.length === 0, `failed events left: ${JSON.stringify(left.body)}`);
    } finally {
      await apiSend("DELETE", `/api/projects/${project.body.id}`);
    }
  });

  await step("the test panel and the log show init and queue time beside the duration", ["dashboard loads"], async () => {
    const project = await apiSend("POST", "/api/projects", { name: "Timing Test" });
    const fn = await apiSend("POST", "/api/functions", { name: "timed", project_id: project.body.id,
      code: "def handler(event, context):\n    return 'ok'\n" });
    try {
      await page.goto(`${server.url}/functions/${fn.body.id}`);
      await page.getByTestId("run-test").click();
      await page.getByTestId("test-status").filter({ hasText: "success" }).waitFor({ timeout: INVOKE_T });
      const records = (await apiGet(`/api/functions/${fn.body.id}/invocations`)).body ?? [];
      needs(typeof records[0]?.init_ms === "number" && typeof records[0]?.queue_ms === "number", "perf", `the record has init_ms ${records[0]?.init_ms} and queue_ms ${records[0]?.queue_ms}`);
      const timings = await page.getByTestId("test-timings").textContent();
      assert(/init [\d.]+ (ms|s)/.test(timings) && /queue [\d.]+ (ms|s)/.test(timings), `a cold call's platform time: ${timings}`);
      await page.getByTestId("invocation-row").first().click();
      const shown = await page.getByTestId("invocation-timings").first().textContent();
      assert(/init [\d.]+ (ms|s)/.test(shown) && /queue/.test(shown), `the record's platform time: ${shown}`);
    } finally {
      await apiSend("DELETE", `/api/projects/${project.body.id}`);
    }
  });

  await step("chat panel answers or explains", ["dashboard loads"], async () => {
    await page.goto(server.url + "/");
    await page.getByTestId("chat-toggle").click();
    const panel = page.getByTestId("chat-panel");
    // This server has no model provider: the panel says so before anyone types, and sends nothing
    const notice = panel.getByTestId("chat-not-configured");
    await notice.waitFor({ timeout: INVOKE_T });
    assert(/not set up/.test(await notice.textContent()), "the panel should say the assistant is not set up");
    assert(await panel.getByLabel("Message").isDisabled(), "there is nothing to type to");
    // Escape closes the panel
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => document.querySelector("[data-testid=chat-panel]")?.getAttribute("aria-hidden") === "true");
  });

  await step("the assistant makes a function and shows its steps", ["dashboard loads"], async () => {
    // A second server whose model is a scripted fake of the chat completions API on loopback: it
    // creates a function, invokes it, then answers, as a model with tool calling would.
    const fake = http.createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => { raw += c; });
      req.on("end", () => {
        const body = JSON.parse(raw);
        const results = body.messages.filter((m) => m.role === "tool").map((m) => JSON.parse(m.content));
        const toolCall = (name, args) => ({ id: `functions.${name}:${results.length}`, type: "function", function: { name, arguments: JSON.stringify(args) } });
        let message;
        if (results.length === 0)
          message = { role: "assistant", tool_calls: [toolCall("create_function", { name: "greeter", code: "def handler(input):\n    return 'hello ' + input.get('name', 'you')\n" })] };
        else if (results.length === 1)
          message = { role: "assistant", tool_calls: [toolCall("invoke_function", { function_id: results[0].id, input: { name: "Ada" } })] };
        else
          message = { role: "assistant", content: `I made greeter; it answered ${JSON.stringify(results[1].output)}.` };
        if (body.stream && message.content) {
          // The answer streamed in two pieces, as server-sent events
          const half = Math.floor(message.content.length / 2);
          const chunk = (delta, finish) => `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
          res.writeHead(200, { "Content-Type": "text/event-stream" });
          res.end(chunk({ role: "assistant", content: message.content.slice(0, half) }, null) + chunk({ content: message.content.slice(half) }, null) + chunk({}, "stop") + "data: [DONE]\n\n");
          return;
        }
        const reply = JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", choices: [{ index: 0, message, finish_reason: message.tool_calls ? "tool_calls" : "stop" }] });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(reply);
      });
    });
    await new Promise((r) => fake.listen(0, "127.0.0.1", r));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-ai-"));
    let ai;
    try {
      ai = await startServer(dir, ["--ai-base-url", `http://127.0.0.1:${fake.address().port}/v1`]);
      allowedOrigins.add(new URL(ai.url).origin);
      await page.goto(ai.url + "/functions");
      await page.getByText("No functions yet").waitFor();
      await page.getByTestId("chat-toggle").click();
      // The panel takes focus: the message box is ready to type in
      await page.waitForFunction(() => document.activeElement?.getAttribute("aria-label") === "Message");
      const panel = page.getByTestId("chat-panel");
      await panel.getByLabel("Message").fill("Make a greeter function and test it");
      await panel.getByRole("button", { name: "Send" }).click();
      await panel.getByText("it answered \"hello Ada\"").waitFor({ timeout: INVOKE_T });
      const steps = panel.getByTestId("chat-tool-step");
      assert((await steps.count()) === 2, `expected 2 tool steps, got ${await steps.count()}`);
      assert(!(await steps.first().evaluate((d) => d.open)), "a tool step should be folded by default");
      await steps.first().locator("summary").click();
      await steps.first().getByText("def handler(input)").first().waitFor();
      // The page behind refreshed: the new function is listed without a reload
      await page.getByRole("main").getByText("greeter").first().waitFor();
      await panel.getByTestId("chat-function-link").click();
      await page.waitForURL(/\/functions\/[0-9a-f]{12}/);
      await page.getByRole("heading", { name: "greeter" }).first().waitFor();
      // The page loads the editor and polls its cards: let it finish before its server goes away
      await page.getByTestId("code-editor").locator(".monaco-editor").waitFor({ timeout: INVOKE_T });
    } finally {
      await leave();
      if (ai?.proc && ai.proc.exitCode === null) ai.proc.kill("SIGTERM");
      fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  await step("dashboard shows activity", ["invoke from the test panel"], async () => {
    await page.goto(server.url + "/");
    await page.getByText("Invocations per day").waitFor();
    const n = Number(await page.getByTestId("stat-invocations").textContent());
    assert(n >= 2, `expected at least 2 invocations on the dashboard, got ${n}`);
    await page.locator(".recharts-bar-rectangle path").first().waitFor();
    await page.getByRole("link", { name: "adder" }).first().waitFor(); // in recent failures
  });

  await step("the dashboard shows p50 and the per-function table", ["invoke from the test panel"], async () => {
    await page.goto(server.url + "/");
    const p50 = await page.getByTestId("stat-p50").textContent();
    assert(/\d.*(ms|s)$/.test(p50), `p50 should be a duration, got ${p50}`);
    assert(/\d/.test(await page.getByTestId("stat-p95").textContent()), "p95 should be shown");
    assert(/\d+%/.test(await page.getByTestId("stat-cold-starts").textContent()), "the cold-start rate should be shown");
    const row = page.getByTestId("function-stats-row").filter({ hasText: "adder" });
    await row.waitFor();
    const cells = await row.locator("td").allTextContents();
    assert(Number(cells[1]) >= 2 && Number(cells[2]) >= 1, `adder's row should count its calls and failures: ${cells.join(" | ")}`);
    // Recent failures say why, not only a badge.
    await page.getByTestId("failure").filter({ hasText: /KeyError|timed out/ }).first().waitFor();
  });

  await step("phone layout", ["create project"], async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const pages = [["project", `/projects/${state.projectId}?tab=routes`], ["function", `/functions/${state.fnId ?? ""}`], ["dashboard", "/"]];
    for (const [name, p] of pages) {
      await page.goto(server.url + p);
      await page.waitForLoadState("networkidle");
      await page.getByRole("button", { name: "Open menu" }).waitFor();
      await page.screenshot({ path: path.join(artifacts, `phone-${name}.png`), fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 1, `${p} scrolls sideways by ${overflow}px on a phone`);
    }
    await page.getByRole("button", { name: "Open menu" }).click();
    await page.getByRole("link", { name: "Functions" }).click();
    await page.getByRole("heading", { name: "Functions" }).waitFor();
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  await step("the dashboard's cluster card lists the workers /api/cluster reports", ["dashboard loads"], async () => {
    const c = await apiGet("/api/cluster");
    needs(c.status === 200 && Array.isArray(c.body?.workers), "cluster", `GET /api/cluster answered ${c.status}`);
    await page.goto(server.url + "/");
    const card = page.getByTestId("cluster-card");
    await card.waitFor();
    const now = (await apiGet("/api/cluster")).body.workers;
    if (now.length === 0) {
      await card.getByTestId("cluster-empty").waitFor();
    } else {
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid="cluster-worker"]').length === n, now.length);
      const states = await card.getByTestId("cluster-worker").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-state")));
      assert(states.join() === now.map((w) => w.state).join(), `states ${states} against the API's ${now.map((w) => w.state)}`);
      assert(/ready/.test(await page.getByTestId("cluster-summary").textContent()), "the summary counts the ready workers");
    }
    const stats = (await apiGet("/api/stats")).body;
    if (typeof stats.platform_errors === "number" || typeof stats.lost === "number")
      await page.getByText(/platform failures? \(lost\) apart/).waitFor();
  });

  await step("a worker host on a --role control server: the cluster card shows it ready, then lost when it dies", ["dashboard loads"], async () => {
    // A control process and one worker process on loopback tcp (plain: no --curve-dir)
    const port = await new Promise((resolve) => { const srv = net.createServer(); srv.listen(0, "127.0.0.1", () => { const p = srv.address().port; srv.close(() => resolve(p)); }); });
    const endpoint = { CLOWDY_ENDPOINT_WORKER: `tcp://127.0.0.1:${port}` };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-control-"));
    const wdir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-worker-"));
    let control, worker;
    try {
      control = await startServer(dir, ["--role", "control"], endpoint);
      allowedOrigins.add(new URL(control.url).origin);
      const get = async (p) => { const r = await fetch(control.url + p); return { status: r.status, body: await r.json().catch(() => null) }; };
      const probe = await get("/api/cluster");
      needs(probe.status === 200 && Array.isArray(probe.body?.workers), "cluster", `GET /api/cluster answered ${probe.status}`);
      const out = fs.openSync(path.join(wdir, "worker.log"), "a");
      worker = spawn(binary, ["--role", "worker", "--listen", "127.0.0.1:0", "--data-dir", wdir, "--workers", "1", "--prewarm", "0"], { stdio: ["ignore", out, out], env: { ...process.env, ...endpoint } });
      let listed = [];
      for (const deadline = Date.now() + 30000; Date.now() < deadline;) {
        listed = (await get("/api/cluster")).body?.workers ?? [];
        if (listed.some((w) => w.state === "ready")) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert(listed.some((w) => w.state === "ready"), `the worker did not register: ${JSON.stringify(listed)}\n${fs.readFileSync(path.join(wdir, "worker.log"), "utf8").slice(-1500)}`);
      await page.goto(control.url + "/");
      const card = page.getByTestId("cluster-card");
      await card.locator('[data-testid="cluster-worker"][data-state="ready"]').waitFor();
      assert(/[1-9]\d* of \d+ workers? ready/.test(await page.getByTestId("cluster-summary").textContent()), `the summary: ${await page.getByTestId("cluster-summary").textContent()}`);
      const cells = await card.getByTestId("cluster-worker").first().locator("td").allTextContents();
      assert(/ms ago|s ago/.test(cells[6] ?? ""), `the worker's heartbeat: ${cells.join(" | ")}`);
      // kill -9: the card follows (it polls) to a lost worker, or to none
      worker.kill("SIGKILL");
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll('[data-testid="cluster-worker"]')];
        return rows.length === 0 ? !!document.querySelector('[data-testid="cluster-empty"]') : rows.every((r) => r.getAttribute("data-state") === "lost");
      }, null, { timeout: T });
    } finally {
      await leave();
      if (worker && worker.exitCode === null) worker.kill("SIGKILL");
      if (control?.proc && control.proc.exitCode === null) control.proc.kill("SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(wdir, { recursive: true, force: true });
    }
  });

  await step("every page: no serious accessibility violations, screenshots at 1440x900 and 390x844", ["create project", "create function"], async () => {
    const pages = [
      ["dashboard", "/"], ["projects", "/projects"], ["functions", "/functions"], ["function-new", "/functions/new"],
      ["function", `/functions/${state.fnId}`], ["not-found", "/no/such/page"], ["missing-function", "/functions/000000000000"],
      ...["functions", "routes", "env", "dependencies", "database", "settings"].map((t) => [`project-${t}`, `/projects/${state.projectId}?tab=${t}`]),
    ];
    const problems = [];
    const titles = new Set();
    for (const [size, w, h] of [["wide", 1440, 900], ["phone", 390, 844]]) {
      await page.setViewportSize({ width: w, height: h });
      for (const [name, p] of pages) {
        await page.goto(server.url + p);
        await page.waitForLoadState("networkidle");
        await page.locator('[data-testid="page-skeleton"]').waitFor({ state: "detached" });
        if (name === "function") {
          await page.getByTestId("code-editor").locator(".monaco-editor").waitFor();
          await page.getByTestId("invocation-toggle").first().click(); // an open row is checked too
          await page.getByTestId("invocation-details").first().waitFor();
        }
        // What the screen shows, and the whole page (in which a sticky sidebar may look displaced).
        await page.screenshot({ path: path.join(artifacts, `${size}-${name}.png`) });
        await page.screenshot({ path: path.join(artifacts, `${size}-${name}-full.png`), fullPage: true });
        if (size === "wide" && name === "function") {
          // The sidebar stays in view at the bottom of a long page: the assistant button is reachable.
          await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
          const box = await page.getByTestId("chat-toggle").boundingBox();
          if (!box || box.y < 0 || box.y + box.height > h) problems.push(`the AI assistant button is off-screen at the bottom of ${p}: ${JSON.stringify(box)}`);
        }
        if (size === "wide") {
          titles.add(await page.title());
          for (const v of await axeViolations()) problems.push(`${p}: ${v}`);
        } else {
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          if (overflow > 1) problems.push(`${p} scrolls sideways by ${overflow}px on a phone`);
        }
      }
    }
    // Dark mode follows the system setting, with the same contrast.
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.emulateMedia({ colorScheme: "dark" });
    for (const [name, p] of pages.filter(([n]) => ["dashboard", "function", "project-routes", "missing-function"].includes(n))) {
      await page.goto(server.url + p);
      await page.waitForLoadState("networkidle");
      if (name === "function") await page.getByTestId("code-editor").locator(".monaco-editor").waitFor();
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      if (!/oklch\(0\.1|rgb\((\d|[1-4]\d),/.test(bg)) problems.push(`${p}: dark mode background is ${bg}`);
      await page.screenshot({ path: path.join(artifacts, `dark-${name}.png`) });
      for (const v of await axeViolations()) problems.push(`${p} (dark): ${v}`);
    }
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1366, height: 900 });
    assert(titles.size >= 8, `each page should have its own title: ${[...titles].join(", ")}`);
    fs.writeFileSync(path.join(artifacts, "axe-and-layout-problems.txt"), problems.join("\n") + "\n");
    if (problems.length) log(problems.map((p) => "      " + p).join("\n"));
    assert(problems.length === 0, `${problems.length} problems (listed above and in axe-and-layout-problems.txt)`);
  });

  await step("rename the project", ["create project"], async () => {
    await page.goto(`${server.url}/projects/${state.projectId}?tab=settings`);
    await page.getByLabel("Name", { exact: true }).fill("Browser Test Renamed");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { name: "Browser Test Renamed" }).waitFor();
    const p = await apiGet(`/api/projects/${state.projectId}`);
    assert(p.body.name === "Browser Test Renamed", `rename not saved: ${p.body.name}`);
    state.projectName = p.body.name;
  });

  await step("delete a function", ["create project"], async () => {
    await page.goto(`${server.url}/functions/new?project=${state.projectId}`);
    await page.getByLabel("Name").fill("doomed");
    await page.getByRole("button", { name: "Create function" }).click();
    await page.waitForURL(/\/functions\/[0-9a-f]{12}$/);
    const id = page.url().split("/functions/")[1];
    await page.getByRole("button", { name: "Delete" }).first().click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
    await page.waitForURL(new RegExp(`/projects/${state.projectId}`));
    const f = await apiGet(`/api/functions/${id}`);
    assert(f.status === 404, `function still there: ${f.status}`);
  });

  await step("delete the project with confirmation", ["create project"], async () => {
    await page.goto(`${server.url}/projects/${state.projectId}?tab=settings`);
    await page.getByRole("button", { name: "Delete project" }).click();
    const forever = page.getByRole("button", { name: "Delete forever" });
    assert(await forever.isDisabled(), "delete must wait for the name to be typed");
    await page.getByLabel("Project name").fill(state.projectName ?? "Browser Test");
    await forever.click();
    await page.waitForURL(/\/projects$/);
    const p = await apiGet(`/api/projects/${state.projectId}`);
    assert(p.status === 404, `project still there: ${p.status}`);
  });

  await step("token sign-in when the server requires credentials", ["dashboard loads"], async () => {
    // A second server in jwt mode; API tokens made with `clowdy token create` work without a JWKS.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "clowdy-browser-jwt-"));
    let jwt;
    try {
      const made = spawnSync(binary, ["token", "create", "--user", "alice", "--name", "browser", "--data-dir", dir], { encoding: "utf8" });
      assert(made.status === 0 && made.stdout.trim(), `clowdy token create failed: ${made.stderr}`);
      const token = made.stdout.trim().split("\n").pop();
      jwt = await startServer(dir, ["--auth", "jwt", "--jwks-url", "http://127.0.0.1:9/jwks.json"]);
      allowedOrigins.add(new URL(jwt.url).origin);
      await page.goto(jwt.url + "/");
      await page.getByRole("heading", { name: "Sign in" }).or(page.getByText("Sign in", { exact: true })).first().waitFor();
      await page.getByLabel("Token").fill("not-a-real-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByTestId("error").waitFor();
      await page.getByLabel("Token").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Dashboard" }).waitFor();
      await page.getByRole("link", { name: "Projects" }).first().click();
      await page.getByRole("button", { name: "New project" }).click();
      await page.getByLabel("Name").fill("Alice's");
      await page.getByRole("button", { name: "Create project" }).click();
      await page.waitForURL(/\/projects\/[0-9a-f]{12}/);
      const r = await fetch(jwt.url + "/api/projects");
      assert(r.status === 401, `the API should refuse requests without the token, got ${r.status}`);
      const stored = await page.evaluate(() => localStorage.getItem("clowdy.token"));
      assert(stored === token, "the token should be kept for the next visit");
    } finally {
      await leave();
      if (jwt?.proc && jwt.proc.exitCode === null) jwt.proc.kill("SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  await step("no request left the server's origin", ["dashboard loads"], async () => {
    assert(outside.length === 0, `requests outside ${origin}:\n${[...new Set(outside)].join("\n")}`);
  });

  await step("no uncaught page errors", ["dashboard loads"], async () => {
    // A step that navigates while the editor is still loading its language modules and workers
    // makes the browser abort those fetches (net::ERR_ABORTED), and Monaco reports the aborted
    // imports as page errors. Those are the navigation's doing, not the server's: a fetch the
    // server failed (reset, empty reply, 404) fails with another reason, or not at all.
    const aborted = (step) => failedRequests.some((r) => r.step === step && r.why === "net::ERR_ABORTED");
    const ofNavigation = (e) => aborted(e.step) &&
      (/^Failed to fetch dynamically imported module: /.test(e.text) || e.text === "Event");
    const real = pageErrors.filter((e) => !ofNavigation(e) ||
      (e.text.startsWith("Failed to fetch") && !failedRequests.some((r) =>
        r.why === "net::ERR_ABORTED" && e.text.endsWith(r.url))));
    const show = (list) => list.map((x) => `${x.text ?? `${x.url}: ${x.why}`} (during "${x.step}")`).join("\n") || "none";
    if (pageErrors.length > real.length) log(`      page errors of aborted navigations, not counted:\n${show(pageErrors)}`);
    assert(real.length === 0, `page errors:\n${show(real)}\nfailed requests:\n${show(failedRequests)}`);
  });
}

let fatal = null;
try {
  await main();
} catch (e) {
  fatal = e;
  log(`FAIL  set-up: ${e?.message ?? e}`);
  results.push({ name: "set-up", status: "failed", why: String(e?.message ?? e) });
} finally {
  try { await context?.close(); } catch { /* ignore */ }
  if (server?.proc && server.proc.exitCode === null) {
    server.proc.kill("SIGTERM");
    await new Promise((r) => { const t = setTimeout(() => { server.proc.kill("SIGKILL"); r(); }, 10000); server.proc.on("exit", () => { clearTimeout(t); r(); }); });
  }
  if (server?.logPath) fs.copyFileSync(server.logPath, path.join(artifacts, "server.log"));
  fs.rmSync(userDataDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
}

const unitPassed = Number(process.env.UNIT_PASSED ?? 0) || 0; // from tests/browser/run's Vitest run
const unitFailed = Number(process.env.UNIT_FAILED ?? 0) || 0;
if (process.env.UNIT_PASSED !== undefined) log(`web unit tests: ${unitPassed} passed, ${unitFailed} failed`);
const passed = results.filter((r) => r.status === "passed").length + unitPassed;
const failed = results.filter((r) => r.status === "failed").length + unitFailed;
const skipped = results.filter((r) => r.status === "skipped").length;
log(`screenshots in ${path.relative(process.cwd(), artifacts) || artifacts}`);
log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
process.exit(failed || skipped || fatal || passed === 0 ? 1 : 0);
