// Small pure helpers shared by the pages: class names, URLs shown to the user, formatting.
import { clsx, type ClassValue } from "clsx";
import { twMerge } from "tailwind-merge";

export function cn(...inputs: ClassValue[]) {
  return twMerge(clsx(inputs));
}

/** The origin the UI was served from; the API lives on the same origin. */
export function currentOrigin(): string {
  return typeof window === "undefined" ? "http://127.0.0.1:8000" : window.location.origin;
}

/** Full gateway URL for a route: {origin}/api/gateway/{slug}{path}. Params stay as written (":id"). */
export function gatewayUrl(origin: string, slug: string, path: string): string {
  let p = (path ?? "").trim();
  if (!p.startsWith("/")) p = "/" + p;
  if (p.length > 1 && p.endsWith("/")) p = p.replace(/\/+$/, "");
  if (p === "/") p = "";
  return `${origin.replace(/\/+$/, "")}/api/gateway/${encodeURIComponent(slug)}${p}`;
}

/** The origin gateway URLs are shown on: with a functions' own host (--gateway-host, /api/config's
 *  gateway_host) that host at the page's scheme and port, since the server answers on every port;
 *  without one, the page's origin. */
export function gatewayOrigin(origin: string, gatewayHost?: string | null): string {
  const host = (gatewayHost ?? "").trim();
  if (!host) return origin;
  try {
    const u = new URL(origin);
    return `${u.protocol}//${host}${u.port ? `:${u.port}` : ""}`;
  } catch {
    return `http://${host}`;
  }
}

/** URL for direct invocation of a function. */
export function invokeUrl(origin: string, functionId: string): string {
  return `${origin.replace(/\/+$/, "")}/api/invoke/${encodeURIComponent(functionId)}`;
}

function shellQuote(s: string): string {
  return "'" + s.replace(/'/g, `'\\''`) + "'";
}

/** A copy-pasteable curl command that invokes a function with the given JSON input. */
export function curlExample(origin: string, functionId: string, input: unknown, token?: string | null): string {
  const body = JSON.stringify({ input: input ?? {} });
  const lines = [
    `curl -X POST ${shellQuote(invokeUrl(origin, functionId))}`,
    `  -H 'Content-Type: application/json'`,
  ];
  if (token) lines.push(`  -H 'Authorization: Bearer <your token>'`);
  lines.push(`  -d ${shellQuote(body)}`);
  return lines.join(" \\\n");
}

/** curl for a gateway route; a route path with params gets example values. */
export function curlForRoute(url: string, method: string): string {
  const m = method === "ANY" ? "GET" : method;
  const concrete = url.replace(/\/:([A-Za-z0-9_]+)/g, "/example-$1").replace(/\/\*([A-Za-z0-9_]*)$/, "/some/path");
  const withBody = m === "POST" || m === "PUT" || m === "PATCH";
  return `curl -X ${m} ${shellQuote(concrete)}` + (withBody ? ` -H 'Content-Type: application/json' -d '{}'` : "");
}

export function formatDate(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return d.toLocaleString();
}

export function timeAgo(iso?: string | null, now: number = Date.now()): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function formatMs(ms?: number | null): string {
  if (ms === undefined || ms === null || isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A duration with sub-ms precision when it is known: microseconds win over whole milliseconds.
 *  "0.42 ms", "3.1 ms", "250 ms", "2.05 s"; a whole-ms 0 reads "<1 ms" (the server rounded it). */
export function formatDuration(ms?: number | null, us?: number | null): string {
  if (typeof us === "number" && isFinite(us) && us >= 0) {
    const m = us / 1000;
    if (m < 1) return `${m.toFixed(2)} ms`;
    if (m < 100) return `${m.toFixed(1)} ms`;
    if (m < 1000) return `${Math.round(m)} ms`;
    return `${(m / 1000).toFixed(2)} s`;
  }
  if (typeof ms !== "number" || !isFinite(ms)) return "—";
  if (ms === 0) return "<1 ms";
  if (ms < 100 && !Number.isInteger(ms)) return `${ms.toFixed(1)} ms`;
  return formatMs(ms);
}

/** Peak memory from kilobytes: "812 KB", "12.4 MB"; unknown (absent or 0) reads "—". */
export function formatMemoryKb(kb?: number | null): string {
  if (typeof kb !== "number" || !isFinite(kb) || kb <= 0) return "—";
  if (kb < 1024) return `${Math.round(kb)} KB`;
  return `${(kb / 1024).toFixed(1)} MB`;
}

/** An absolute local timestamp, sortable and unambiguous: "2026-11-30 08:01:29". */
export function formatTimestamp(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** How a status reads to a person: a timeout is "timed out", not an error. */
export function statusLabel(status?: string | null): string {
  if (status === "timeout") return "timed out";
  if (status === "lost") return "lost (platform)";
  return status ?? "unknown";
}

/** A platform failure: the worker running the call went away. Not the function's own error, and the
 *  function may or may not have run. */
export function isPlatformFailure(status?: string | null): boolean {
  return status === "lost";
}

/** Where the platform's own time went in a call: "init 31 ms · queue 0.40 ms" (init: the cold start's
 *  share of the duration; queue: the wait before a worker took the call).
 *  Only the parts the server sent; an empty string when it sent neither (an older server). A zero
 *  init is left out on a warm call (nothing was started), kept on a cold one. */
export function platformTimes(t: { init_ms?: number | null; queue_ms?: number | null; cold_start?: boolean }): string {
  const parts: string[] = [];
  const ok = (n: unknown): n is number => typeof n === "number" && isFinite(n) && n >= 0;
  if (ok(t.init_ms) && (t.init_ms > 0 || t.cold_start)) parts.push(`init ${formatDuration(t.init_ms, t.init_ms * 1000)}`);
  if (ok(t.queue_ms)) parts.push(`queue ${formatDuration(t.queue_ms, t.queue_ms * 1000)}`);
  return parts.join(" · ");
}

/** A size from bytes: "812 B", "4.0 KB", "12.4 MB", "1.20 GB"; unknown reads "—". */
export function formatBytes(n?: number | null): string {
  if (typeof n !== "number" || !isFinite(n) || n < 0) return "—";
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GB`;
}

/** The first 12 characters of a content hash, as the UI shows it ("sha256:" prefix dropped). */
export function shortHash(h?: string | null): string {
  if (!h) return "";
  return h.replace(/^sha256:/, "").slice(0, 12);
}

/** A success rate to show: none yet when nothing ran (never a misleading "0%"). */
export function formatRate(rate: unknown, total: unknown): string {
  const n = Number(total);
  const r = Number(rate);
  if (!n || !isFinite(r)) return "—";
  return `${Math.round(r)}%`;
}

/** The first line of an error message, for a one-line summary in a table. */
export function firstLine(text?: string | null, max = 140): string {
  if (!text) return "";
  const lines = String(text).split("\n").map((l) => l.trim()).filter(Boolean);
  // A Python traceback's last line names the exception; prefer it over "Traceback (most recent...".
  const line = lines[0]?.startsWith("Traceback") ? lines[lines.length - 1] : (lines[0] ?? "");
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}

/** Pretty-print JSON text when it parses, else return it unchanged. */
export function prettyJson(text: unknown): string {
  if (text === undefined || text === null) return "";
  if (typeof text !== "string") {
    try { return JSON.stringify(text, null, 2); } catch { return String(text); }
  }
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

export const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"] as const;
