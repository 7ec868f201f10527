// The AI assistant panel: a chat over POST /api/chat, streamed (text and tool steps appear as they
// happen). Each answer shows the tool steps the assistant took (name, arguments, result; folded by
// default), links to the functions it made or changed, and a stop button while it works. When the server has no assistant configured (503 saying how) or the
// model provider fails, the panel says so plainly, and still lists the steps that ran before the fault.
// /api/config says whether a provider is set, so an unconfigured server says so before anyone types.
// The panel takes focus when it opens and closes on Escape.
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { Bot, Send, Square, X } from "lucide-react";
import { ApiError, chatStream, type ChatMessage, type ChatToolCall } from "@/lib/api";
import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
import { Spinner } from "@/components/ui/skeleton";
import { errorMessage } from "@/components/common";
import { fetchConfig } from "@/lib/auth";
import { cn } from "@/lib/utils";

interface Entry extends ChatMessage { tool_calls?: ChatToolCall[]; failed?: boolean }

export function chatUnavailableText(e: unknown): string | null {
  if (!(e instanceof ApiError)) return null;
  if (e.status === 501) return "The AI assistant is not set up on this server. An administrator can enable it by configuring an LLM provider; everything else in Clowdy works without it.";
  if (e.status === 503 && /not configured/i.test(e.message)) return `The AI assistant is not set up on this server. ${e.message}.`;
  if (e.status === 503) return `The AI assistant is unavailable right now (${e.message}). Try again later.`;
  return null;
}

/** The tool calls listed in a reply or an error body ({detail, tool_calls}). */
export function toolCallsOf(body: unknown): ChatToolCall[] {
  const calls = body && typeof body === "object" ? (body as { tool_calls?: unknown }).tool_calls : undefined;
  return Array.isArray(calls) ? calls.filter((c): c is ChatToolCall => !!c && typeof c === "object") : [];
}

const READ_ONLY = /^(list_|get_)/;

/** Functions the steps created or changed, newest last, each once: [{id, name}]. */
export function functionsTouched(calls: ChatToolCall[]): Array<{ id: string; name: string }> {
  const seen = new Map<string, string>();
  for (const c of calls) {
    if (c.ok === false || !["create_function", "update_function", "rollback_function"].includes(c.tool)) continue;
    const r = c.result as { id?: unknown; name?: unknown } | null;
    if (r && typeof r.id === "string") seen.set(r.id, typeof r.name === "string" ? r.name : r.id);
  }
  return [...seen].map(([id, name]) => ({ id, name }));
}

function pretty(value: unknown): string {
  if (typeof value === "string") return value;
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}

// The server cuts a large result (or args) before it lists it: a function's code keeps its start
const CUT = " (cut short: too large to show whole)";

function ToolStep({ call }: { call: ChatToolCall }) {
  const failed = call.ok === false;
  return (
    <details data-testid="chat-tool-step" className="bg-background/60 rounded border px-2 py-1">
      <summary className="cursor-pointer">
        <code>{String(call.tool ?? "tool")}</code>{" "}
        <span className={failed ? "text-destructive" : "text-muted-foreground"}>{failed ? "failed" : "done"}</span>
      </summary>
      <div className="mt-1 space-y-1">
        <div className="text-muted-foreground">Arguments{call.args_truncated === true ? CUT : ""}</div>
        <pre className="max-h-40 overflow-auto whitespace-pre-wrap break-all">{pretty(call.args)}</pre>
        <div className="text-muted-foreground">Result{call.result_truncated === true ? CUT : ""}</div>
        <pre className="max-h-60 overflow-auto whitespace-pre-wrap break-all">{pretty(call.result)}</pre>
      </div>
    </details>
  );
}

function Steps({ calls }: { calls: ChatToolCall[] }) {
  if (calls.length === 0) return null;
  const made = functionsTouched(calls);
  return (
    <div className="mt-2 space-y-1 text-xs">
      <div className="text-muted-foreground">{calls.length} step(s)</div>
      {calls.map((c, j) => <ToolStep key={j} call={c} />)}
      {made.length > 0 && (
        <div className="flex flex-wrap gap-2 pt-1">
          {made.map((f) => (
            <Link key={f.id} to={`/functions/${f.id}`} data-testid="chat-function-link" className="text-primary underline">
              {f.name}
            </Link>
          ))}
        </div>
      )}
    </div>
  );
}

export function ChatPanel({ open, onClose, onActed }: { open: boolean; onClose: () => void; onActed?: () => void }) {
  const [messages, setMessages] = useState<Entry[]>([]);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const bottom = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const controller = useRef<AbortController | null>(null);
  // null until /api/config answers; false: no model provider on this server
  const [configured, setConfigured] = useState<boolean | null>(null);

  useEffect(() => {
    if (!open || configured !== null) return;
    void fetchConfig().then((c) => {
      const assistant = c.assistant as { configured?: unknown } | undefined;
      setConfigured(assistant && typeof assistant.configured === "boolean" ? assistant.configured : true);
    });
  }, [open, configured]);

  // Focus the message box on open; Escape closes the panel
  useEffect(() => {
    if (!open) return;
    const focus = window.setTimeout(() => input.current?.focus(), 50);
    const onKey = (e: KeyboardEvent) => { if (e.key === "Escape") onClose(); };
    window.addEventListener("keydown", onKey);
    return () => { window.clearTimeout(focus); window.removeEventListener("keydown", onKey); };
  }, [open, onClose]);

  function acted(calls: ChatToolCall[]) {
    // A step that changed something: refresh the page behind the panel
    if (calls.some((c) => c.ok !== false && !READ_ONLY.test(String(c.tool)))) onActed?.();
  }

  async function send() {
    const text = draft.trim();
    if (!text || busy) return;
    const next: Entry[] = [...messages, { role: "user", content: text }];
    setMessages(next);
    setDraft("");
    setBusy(true);
    setError(null);
    const abort = new AbortController();
    controller.current = abort;
    // The conversation sent back is text only: earlier failures are not part of it
    const history = next.filter((m) => !m.failed).map(({ role, content }) => ({ role, content }));
    // The answer as it streams in: text deltas and tool steps
    const live = { content: "", calls: [] as ChatToolCall[] };
    const show = () => setMessages([...next, { role: "assistant", content: live.content, tool_calls: [...live.calls] }]);
    try {
      const reply = await chatStream(history, (e) => {
        if (e.event === "delta") live.content += String(e.data?.content ?? "");
        else live.calls.push(e.data);
        show();
      }, abort.signal);
      const calls = toolCallsOf(reply);
      setMessages([...next, { role: "assistant", content: String(reply?.response ?? ""), tool_calls: calls }]);
      acted(calls);
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") {
        const content = live.content ? `${live.content}\n\nStopped.` : "Stopped.";
        setMessages([...next, { role: "assistant", content, tool_calls: live.calls, failed: true }]);
        onActed?.(); // it may have changed things before it stopped
      } else {
        const listed = e instanceof ApiError ? toolCallsOf(e.body) : [];
        const calls = listed.length > 0 ? listed : live.calls;
        if (calls.length > 0) {
          setMessages([...next, { role: "assistant", content: errorMessage(e), tool_calls: calls, failed: true }]);
          acted(calls);
        } else {
          setError(e);
        }
      }
    } finally {
      controller.current = null;
      setBusy(false);
      setTimeout(() => bottom.current?.scrollIntoView({ behavior: "smooth" }), 50);
    }
  }

  const unavailable = chatUnavailableText(error);

  return (
    <aside
      aria-label="AI assistant"
      data-testid="chat-panel"
      className={cn(
        "bg-background fixed inset-y-0 right-0 z-50 flex w-full flex-col border-l shadow-xl transition-transform sm:w-96",
        open ? "visible translate-x-0" : "pointer-events-none invisible translate-x-full",
      )}
      aria-hidden={!open}
    >
      <div className="flex h-14 items-center gap-2 border-b px-4">
        <Bot className="text-primary size-5" />
        <span className="font-semibold">AI assistant</span>
        <Button variant="ghost" size="icon" className="ml-auto" aria-label="Close assistant" onClick={onClose}><X /></Button>
      </div>
      <div className="flex-1 space-y-3 overflow-y-auto p-4 text-sm">
        {configured === false && (
          <div role="status" data-testid="chat-not-configured" className="rounded-lg border px-3 py-2">
            The AI assistant is not set up on this server. An administrator can start Clowdy with
            {" "}<code>--ai-api-key KEY</code> (Groq) or <code>--ai-base-url URL</code> for another
            OpenAI-compatible provider; everything else in Clowdy works without it.
          </div>
        )}
        {messages.length === 0 && configured !== false && (
          <p className="text-muted-foreground">
            Ask the assistant to create a function, explain an error, or add a route. It acts on your projects through the same API as this UI.
          </p>
        )}
        {messages.map((m, i) => (
          <div
            key={i}
            data-testid={m.role === "assistant" ? "chat-answer" : "chat-question"}
            className={cn(
              "max-w-[90%] rounded-lg px-3 py-2 whitespace-pre-wrap",
              m.role === "user" ? "bg-primary text-primary-foreground ml-auto" : m.failed ? "border-destructive/30 bg-destructive/5 border" : "bg-muted",
            )}
          >
            {m.content}
            {m.tool_calls && <Steps calls={m.tool_calls} />}
          </div>
        ))}
        {busy && (
          <div className="text-muted-foreground flex items-center gap-2">
            <Spinner /> Working…
            <Button variant="outline" size="sm" className="ml-auto" data-testid="chat-stop" onClick={() => controller.current?.abort()}>
              <Square /> Stop
            </Button>
          </div>
        )}
        {error != null && (
          <div role="alert" data-testid="chat-error" className="border-destructive/30 bg-destructive/5 rounded-lg border px-3 py-2">
            {unavailable ?? errorMessage(error)}
            {unavailable && error instanceof ApiError && error.status === 501 && <p className="text-muted-foreground mt-1 text-xs">Server says: {error.message}</p>}
          </div>
        )}
        <div ref={bottom} />
      </div>
      <form className="flex gap-2 border-t p-3" onSubmit={(e) => { e.preventDefault(); void send(); }}>
        <Textarea
          ref={input}
          value={draft}
          disabled={configured === false}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={(e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); void send(); } }}
          placeholder="Ask something…"
          aria-label="Message"
          className="min-h-10 resize-none"
          rows={2}
        />
        <Button type="submit" size="icon" disabled={busy || !draft.trim() || configured === false} aria-label="Send"><Send /></Button>
      </form>
    </aside>
  );
}
