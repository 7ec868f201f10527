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

/** Pretty-print JSON text when it parses, else return it unchanged. */
export function prettyJson(text: unknown): string {
  if (text === undefined || text === null) return "";
  if (typeof text !== "string") {
    try { return JSON.stringify(text, null, 2); } catch { return String(text); }
  }
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

export const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"] as const;
