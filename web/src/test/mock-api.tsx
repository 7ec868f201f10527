// Test helpers for components that talk to the API: a fetch mock routed by method and path (each
// route answers a status and a JSON body, or a function of the call), a render into the document
// inside a router, and a wait for what the page shows.
import { act, type ReactElement } from "react";
import { createRoot, type Root } from "react-dom/client";
import { MemoryRouter } from "react-router";
import { vi } from "vitest";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

export interface Call { method: string; path: string; body: unknown }
type Answer = [number, unknown] | ((call: Call, n: number) => [number, unknown]);

/** Routes keyed "METHOD /path" (the path without the query). Unknown routes answer 404. */
export function mockApi(routes: Record<string, Answer>) {
  const calls: Call[] = [];
  const counts: Record<string, number> = {};
  const fn = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? "GET";
    const path = String(url).split("?")[0];
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    const call = { method, path, body };
    calls.push(call);
    const key = `${method} ${path}`;
    counts[key] = (counts[key] ?? 0) + 1;
    const a = routes[key];
    const [status, out] = !a ? [404, { detail: "Not Found" }] : typeof a === "function" ? a(call, counts[key]) : a;
    const text = out === null || out === undefined ? "" : JSON.stringify(out);
    return new Response(status === 204 ? null : text, { status, headers: { "Content-Type": "application/json" } });
  });
  vi.stubGlobal("fetch", fn);
  return { calls, fn };
}

const mounted: Root[] = [];

/** Unmounts what render() mounted (their polling stops) and empties the document: call in afterEach. */
export function cleanup() {
  for (const root of mounted.splice(0)) act(() => root.unmount());
  document.body.innerHTML = "";
}

export function render(el: ReactElement): { host: HTMLElement; root: Root } {
  const host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  mounted.push(root);
  act(() => root.render(<MemoryRouter>{el}</MemoryRouter>));
  return { host, root };
}

/** Lets pending fetches and renders settle. */
export async function flush(ms = 0) {
  await act(async () => { await new Promise((r) => setTimeout(r, ms)); });
}

/** Waits (up to 2 s) until `check` holds, letting React render in between. */
export async function until(check: () => boolean, what = "the condition") {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await flush(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function byTestId(host: ParentNode, id: string): HTMLElement | null {
  return host.querySelector(`[data-testid="${id}"]`);
}

export function allByTestId(host: ParentNode, id: string): HTMLElement[] {
  return [...host.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];
}

/** Sets an input's or textarea's value as a user would (React listens to the native setter). */
export function typeInto(el: HTMLInputElement | HTMLTextAreaElement, value: string) {
  const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  act(() => {
    Object.getOwnPropertyDescriptor(proto, "value")!.set!.call(el, value);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
}

export function click(el: Element | null) {
  if (!el) throw new Error("nothing to click");
  act(() => { (el as HTMLElement).click(); });
}
