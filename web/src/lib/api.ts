// The API client: one `request` that adds credentials, parses JSON and turns every failure into an
// ApiError whose message is the server's `detail` sentence (422 detail arrays become field messages).
// Pages never see a raw Response, so an error is always something readable, never a blank page.
import { authHeaders, setToken } from "./auth";

export interface FieldError { field: string; message: string }

export class ApiError extends Error {
  status: number;
  fields: FieldError[];
  body: unknown;                 // the parsed error body, for callers that read more than `detail`
  constructor(status: number, message: string, fields: FieldError[] = [], body: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
    this.body = body;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not accepted.",
  401: "You need to sign in.",
  403: "You are not allowed to do that.",
  404: "Not found.",
  409: "That conflicts with something that already exists.",
  413: "That is too large.",
  422: "Some fields are not valid.",
  429: "The server is busy; try again in a moment.",
  500: "The server hit an internal error.",
  501: "This is not available yet on this server.",
  502: "The server could not reach the function.",
  503: "The service is unavailable right now; try again in a moment.",
  504: "The request timed out.",
};

/** Build an ApiError from a status and an already-parsed (or unparsable) body. */
export function errorFromBody(status: number, body: unknown): ApiError {
  const fallback = STATUS_TEXT[status] ?? `The server answered with HTTP ${status}.`;
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string" && detail.trim()) return new ApiError(status, detail, []);
    if (Array.isArray(detail)) {
      const fields: FieldError[] = detail.map((d) => {
        const item = (d && typeof d === "object" ? d : {}) as { loc?: unknown; msg?: unknown };
        const loc = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body").map(String) : [];
        return { field: loc.join("."), message: typeof item.msg === "string" ? item.msg : "is not valid" };
      });
      const text = fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join("; ");
      return new ApiError(status, text || fallback, fields);
    }
  }
  if (typeof body === "string" && body.trim() && body.length < 300 && !body.trim().startsWith("<"))
    return new ApiError(status, body.trim(), []);
  return new ApiError(status, fallback, []);
}

export interface RequestOptions { method?: string; body?: unknown; signal?: AbortSignal }

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method: opts.method ?? "GET", headers, body, signal: opts.signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "Cannot reach the Clowdy server. Is it running?");
  }
  const text = await res.text();
  let parsed: unknown = text;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = text; }
  } else {
    parsed = null;
  }
  if (!res.ok) {
    if (res.status === 401 && authHeaders().Authorization) setToken(null);
    const error = errorFromBody(res.status, parsed);
    error.body = parsed;
    throw error;
  }
  return parsed as T;
}

/** A streamed chat's progress: a piece of the answer's text, or a tool call that ran. */
export type ChatEvent = { event: "delta"; data: { content: string } } | { event: "tool"; data: ChatToolCall };

/** POST /api/chat with stream: true. Calls onEvent as the assistant writes and acts, and resolves with
 *  the whole reply; an `error` event (or an error reply before the stream starts) throws an ApiError
 *  whose body still lists the tool calls that ran. */
export async function chatStream(messages: ChatMessage[], onEvent: (e: ChatEvent) => void, signal?: AbortSignal): Promise<ChatReply> {
  const headers: Record<string, string> = { Accept: "text/event-stream, application/json", "Content-Type": "application/json", ...authHeaders() };
  let res: Response;
  try {
    res = await fetch("/api/chat", { method: "POST", headers, body: JSON.stringify({ messages, stream: true }), signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "Cannot reach the Clowdy server. Is it running?");
  }
  const fail = (status: number, body: unknown) => {
    if (status === 401 && authHeaders().Authorization) setToken(null);
    const error = errorFromBody(status, body);
    error.body = body;
    return error;
  };
  if (!(res.headers.get("Content-Type") ?? "").startsWith("text/event-stream") || !res.body) {
    const text = await res.text();
    let parsed: unknown = null;
    if (text) { try { parsed = JSON.parse(text); } catch { parsed = text; } }
    if (!res.ok) throw fail(res.status, parsed);
    return parsed as ChatReply;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let name = "message";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).replace(/\r$/, "");
      buffer = buffer.slice(cut + 1);
      if (line === "") { name = "message"; continue; }
      if (line.startsWith("event:")) { name = line.slice(6).trim(); continue; }
      if (!line.startsWith("data:")) continue;
      let data: unknown;
      try { data = JSON.parse(line.slice(5).trim()); } catch { continue; }
      if (name === "done") return data as ChatReply;
      if (name === "error") {
        const status = (data as { status?: unknown })?.status;
        throw fail(typeof status === "number" ? status : 502, data);
      }
      if (name === "delta" || name === "tool") onEvent({ event: name, data } as ChatEvent);
    }
  }
  throw new ApiError(502, "The assistant's answer stopped before it was complete.");
}

/** Checks a token before it is stored: resolves when the server accepts it, else throws ApiError. */
export async function checkToken(token: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch("/api/stats", { headers: { Accept: "application/json", Authorization: `Bearer ${token}` } });
  } catch {
    throw new ApiError(0, "Cannot reach the Clowdy server. Is it running?");
  }
  if (res.ok) return;
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* keep text */ }
  throw errorFromBody(res.status, body);
}

// ---- Objects (see API.md) ----
export interface Project {
  id: string; name: string; slug: string; description?: string | null; status?: string;
  function_count?: number; requirements_txt?: string | null; has_database?: boolean;
  created_at: string; updated_at: string;
}
export interface Fn {
  id: string; name: string; description?: string | null; code: string; runtime?: string; status?: string;
  network_enabled: boolean; timeout_seconds: number; memory_mb: number; active_version: number;
  project_id?: string | null; created_at: string; updated_at: string;
  last_invoked_at?: string | null; invocation_count?: number;
  /** The dependency layer (hash) the function runs with; null when its project has none. Absent on
   *  servers without layers. */
  layer_hash?: string | null;
  /** Retries of a failed async call (0..10); absent on servers without async invocations. */
  max_retries?: number;
}
export interface Version { function_id: string; version: number; code: string; created_at: string; updated_at: string; list_truncated?: string[] }
export interface Invocation {
  id: string; function_id: string; input?: string | null; output?: string | null;
  /** queued and running: an async call not finished yet; lost: a platform failure (the worker went
   *  away), not the function's own error. */
  status: "success" | "error" | "timeout" | "queued" | "running" | "lost" | string; duration_ms: number; source?: string;
  http_method?: string | null; http_path?: string | null; created_at: string;
  cold_start?: boolean; version?: number; logs?: string | null;
  /** A failed call's message and traceback (output carries the message too). */
  error?: string | null;
  /** Sent by servers that keep sub-millisecond durations and peak memory; shown when present. */
  duration_us?: number; peak_memory_kb?: number;
  /** Fields the list shows a prefix of: the single-record GET has them whole. */
  list_truncated?: string[];
  /** Fields the stored record itself keeps only the start of (--record-max-bytes): not whole anywhere. */
  input_truncated?: boolean; output_truncated?: boolean; logs_truncated?: boolean;
  /** The platform's own time beside the function's: starting its environment (a cold start) and the
   *  wait in the queue, in ms. */
  init_ms?: number | null; queue_ms?: number | null;
  /** Async retries: the attempt's number (1 = the first) and the first attempt's invocation id. */
  attempt?: number | null; parent_invocation_id?: string | null;
}
export interface InvokeResult {
  success: boolean; output?: unknown; error?: string; duration_ms: number; invocation_id?: string;
  cold_start?: boolean; logs?: string | null; timeout?: boolean;
  init_ms?: number | null; queue_ms?: number | null;
}
export interface EnvVar { id: string; key: string; value: string; is_secret: boolean; created_at: string; updated_at: string }
export interface Route {
  id: string; project_id: string; function_id: string; method: string; path: string;
  description?: string | null; created_at: string; updated_at: string;
}
export interface Stats {
  total_functions: number; total_invocations: number; success_rate: number; avg_duration_ms: number;
  total_projects?: number;
  invocations_per_day?: Array<{ date?: string; day?: string; count?: number; invocations?: number; errors?: number; avg_duration_ms?: number; p50_duration_ms?: number; p95_duration_ms?: number }>;
  recent_failures?: Invocation[];
  p50_duration_ms?: number; p95_duration_ms?: number; cold_start_rate?: number;
  functions?: FunctionStats[];
  /** Platform failures (lost workers), counted apart from the functions' own errors. */
  lost?: number; platform_errors?: number;
  [key: string]: unknown;
}
export interface FunctionStats { function_id: string; name: string; count: number; errors: number; p50_duration_ms?: number }
export type BuildStatus = "none" | "queued" | "building" | "ready" | "failed";
export interface Requirements {
  requirements_txt: string; requirements_hash?: string | null; has_custom_image?: boolean;
  build_status?: BuildStatus | string | null; build_log?: string | null;
  /** The layer's size on disk, when built; the time it was built; the layer the functions use now
   *  (the last ready one, which may differ from requirements_hash while a new one builds). */
  layer_size_bytes?: number | null; built_at?: string | null; active_hash?: string | null;
}
export interface Schedule {
  id: string; function_id: string; expression: string; next_run_at?: string | null;
  last_run_at?: string | null; created_at: string; enabled?: boolean;
}
export interface FailedEvent {
  id: string; invocation_id?: string | null; input?: unknown; error?: string | null; attempts?: number; failed_at: string;
}
export interface ClusterWorker {
  /** Absent for users who are not cluster admins: they get an index instead. */
  id?: string; index?: number; host?: string | null; state: "ready" | "draining" | "lost" | string;
  memory_mb?: number; cores?: number; memory_used_mb?: number; running?: number; environments?: number;
  last_heartbeat_ms?: number | null;
  /** Why a lost worker was given up (servers keep the last few lost ones listed). */
  why?: string | null;
}
export interface Cluster { workers: ClusterWorker[]; memory_mb?: number; cores?: number }
export type DatabaseStatus = "provisioning" | "ready" | "deprovisioning" | "failed";
export interface DatabaseInfo {
  has_database: boolean; database_url?: string | null; neon_project_id?: string | null;
  provider?: string | null; status?: DatabaseStatus | null; error?: string;
}
export interface ChatMessage { role: "user" | "assistant"; content: string }
/** One tool call the assistant ran: its name, its arguments (the model's text when they did not parse),
 *  what it returned, and whether it worked. */
/** A tool step. A result (or args) too large to list whole comes cut, still JSON of the same shape
 *  (long strings end "... [cut: N more bytes]", long lists "[cut: N more items]"), or, past the
 *  chat's limit, a note string; result_truncated (args_truncated) says so. */
export interface ChatToolCall {
  tool: string; args: unknown; result: unknown; ok?: boolean; args_truncated?: boolean; result_truncated?: boolean;
}
export interface ChatReply { response: string; tool_calls?: ChatToolCall[]; steps?: number; step_limit?: boolean }

const enc = encodeURIComponent;

export const api = {
  health: () => request<{ status: string }>("/api/health"),
  stats: () => request<Stats>("/api/stats"),

  projects: () => request<Project[]>("/api/projects"),
  project: (id: string) => request<Project>(`/api/projects/${enc(id)}`),
  createProject: (b: { name: string; description?: string }) => request<Project>("/api/projects", { method: "POST", body: b }),
  updateProject: (id: string, b: { name?: string; description?: string }) => request<Project>(`/api/projects/${enc(id)}`, { method: "PUT", body: b }),
  deleteProject: (id: string) => request<{ detail: string }>(`/api/projects/${enc(id)}`, { method: "DELETE" }),
  projectFunctions: (id: string) => request<Fn[]>(`/api/projects/${enc(id)}/functions`),

  functions: () => request<Fn[]>("/api/functions"),
  fn: (id: string) => request<Fn>(`/api/functions/${enc(id)}`),
  createFunction: (b: Partial<Fn> & { name: string; code: string }) => request<Fn>("/api/functions", { method: "POST", body: b }),
  updateFunction: (id: string, b: Partial<Pick<Fn, "name" | "description" | "code" | "status" | "network_enabled" | "timeout_seconds" | "memory_mb" | "max_retries">>) =>
    request<Fn>(`/api/functions/${enc(id)}`, { method: "PUT", body: b }),
  deleteFunction: (id: string) => request<{ detail: string }>(`/api/functions/${enc(id)}`, { method: "DELETE" }),
  versions: (id: string) => request<Version[]>(`/api/functions/${enc(id)}/versions`),
  version: (id: string, version: number) => request<Version>(`/api/functions/${enc(id)}/versions/${version}`),
  rollback: (id: string, version: number) => request<Fn>(`/api/functions/${enc(id)}/versions/${version}`, { method: "PUT" }),
  invoke: (id: string, input: unknown, signal?: AbortSignal) => request<InvokeResult>(`/api/invoke/${enc(id)}`, { method: "POST", body: { input }, signal }),
  invocations: (id: string, limit = 50) => request<Invocation[]>(`/api/functions/${enc(id)}/invocations?limit=${limit}`),
  invocation: (id: string, invocationId: string) => request<Invocation>(`/api/functions/${enc(id)}/invocations/${enc(invocationId)}`),

  schedules: (id: string) => request<Schedule[]>(`/api/functions/${enc(id)}/schedules`),
  createSchedule: (id: string, expression: string) => request<Schedule>(`/api/functions/${enc(id)}/schedules`, { method: "POST", body: { expression } }),
  deleteSchedule: (id: string, sid: string) => request<null>(`/api/functions/${enc(id)}/schedules/${enc(sid)}`, { method: "DELETE" }),
  failedEvents: (id: string) => request<FailedEvent[]>(`/api/functions/${enc(id)}/failed-events`),
  redrive: (id: string, eid: string) => request<{ invocation_id?: string } | null>(`/api/functions/${enc(id)}/failed-events/${enc(eid)}/redrive`, { method: "POST" }),
  deleteFailedEvent: (id: string, eid: string) => request<null>(`/api/functions/${enc(id)}/failed-events/${enc(eid)}`, { method: "DELETE" }),
  cluster: () => request<Cluster>("/api/cluster"),

  env: (pid: string) => request<EnvVar[]>(`/api/projects/${enc(pid)}/env`),
  setEnv: (pid: string, b: { key: string; value: string; is_secret: boolean }) => request<EnvVar>(`/api/projects/${enc(pid)}/env`, { method: "POST", body: b }),
  deleteEnv: (pid: string, key: string) => request<{ detail: string }>(`/api/projects/${enc(pid)}/env/${enc(key)}`, { method: "DELETE" }),

  routes: (pid: string) => request<Route[]>(`/api/projects/${enc(pid)}/routes`),
  createRoute: (pid: string, b: { function_id: string; method: string; path: string; description?: string }) =>
    request<Route>(`/api/projects/${enc(pid)}/routes`, { method: "POST", body: b }),
  updateRoute: (pid: string, rid: string, b: Partial<{ function_id: string; method: string; path: string; description: string }>) =>
    request<Route>(`/api/projects/${enc(pid)}/routes/${enc(rid)}`, { method: "PUT", body: b }),
  deleteRoute: (pid: string, rid: string) => request<{ detail: string }>(`/api/projects/${enc(pid)}/routes/${enc(rid)}`, { method: "DELETE" }),

  requirements: (pid: string) => request<Requirements>(`/api/projects/${enc(pid)}/requirements`),
  setRequirements: (pid: string, requirements_txt: string) => request<Requirements>(`/api/projects/${enc(pid)}/requirements`, { method: "PUT", body: { requirements_txt } }),
  database: (pid: string) => request<DatabaseInfo>(`/api/projects/${enc(pid)}/database`),
  provisionDatabase: (pid: string) => request<DatabaseInfo>(`/api/projects/${enc(pid)}/database/provision`, { method: "POST" }),
  deprovisionDatabase: (pid: string) => request<DatabaseInfo>(`/api/projects/${enc(pid)}/database/deprovision`, { method: "DELETE" }),

  chat: (messages: ChatMessage[], signal?: AbortSignal) => request<ChatReply>("/api/chat", { method: "POST", body: { messages }, signal }),
};
