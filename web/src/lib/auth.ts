// Auth for the UI, kept small and in one place.
//
// GET /api/config tells the mode. A 404 (server without the auth issue yet) or any network problem
// means local mode: no credentials. In "jwt" (or "token") mode the user pastes an API token or a JWT
// into a sign-in form; it is kept in localStorage and sent as `Authorization: Bearer <token>`.
// Clerk's hosted widgets would need scripts from outside the server's origin, so even with a Clerk
// publishable key the UI offers the token form (a Clerk session JWT works there).

export type AuthMode = "local" | "jwt" | "token";

export interface ServerConfig {
  auth_mode: AuthMode;
  clerk_publishable_key?: string | null;
  /** The functions' own host name (--gateway-host), or null when they share the console's origin. */
  gateway_host?: string | null;
  [key: string]: unknown;
}

const TOKEN_KEY = "clowdy.token";
const listeners = new Set<() => void>();

function storage(): Storage | null {
  try { return typeof window !== "undefined" ? window.localStorage : null; } catch { return null; }
}

export function getToken(): string | null {
  return storage()?.getItem(TOKEN_KEY) || null;
}

export function setToken(token: string | null): void {
  const s = storage();
  if (s) {
    if (token && token.trim()) s.setItem(TOKEN_KEY, token.trim());
    else s.removeItem(TOKEN_KEY);
  }
  listeners.forEach((fn) => fn());
}

export function onTokenChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Headers to add to every API request. */
export function authHeaders(): Record<string, string> {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** Parse the /api/config answer; anything unexpected falls back to local mode. */
export function parseConfig(status: number, body: unknown): ServerConfig {
  if (status !== 200 || !body || typeof body !== "object") return { auth_mode: "local" };
  const b = body as Record<string, unknown>;
  const mode = b.auth_mode === "jwt" || b.auth_mode === "token" ? b.auth_mode : "local";
  return { ...b, auth_mode: mode } as ServerConfig;
}

export async function fetchConfig(): Promise<ServerConfig> {
  try {
    const res = await fetch("/api/config", { headers: { Accept: "application/json" } });
    let body: unknown = null;
    try { body = await res.json(); } catch { body = null; }
    return parseConfig(res.status, body);
  } catch {
    return { auth_mode: "local" };
  }
}
