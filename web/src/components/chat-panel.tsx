// The AI assistant panel: a chat over POST /api/chat. When the server has no assistant configured
// (501) or it is unavailable (503), the panel says so plainly instead of failing.
import { useRef, useState } from "react";
import { Bot, Send, X } from "lucide-react";
import { api, ApiError, type ChatMessage, type ChatReply } from "@/lib/api";
import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
import { Spinner } from "@/components/ui/skeleton";
import { errorMessage } from "@/components/common";
import { cn } from "@/lib/utils";

interface Entry extends ChatMessage { tool_calls?: ChatReply["tool_calls"] }

export function chatUnavailableText(e: unknown): string | null {
  if (!(e instanceof ApiError)) return null;
  if (e.status === 501) return "The AI assistant is not set up on this server. An administrator can enable it by configuring an LLM provider; everything else in Clowdy works without it.";
  if (e.status === 503) return `The AI assistant is unavailable right now (${e.message}). Try again later.`;
  return null;
}

export function ChatPanel({ open, onClose, onActed }: { open: boolean; onClose: () => void; onActed?: () => void }) {
  const [messages, setMessages] = useState<Entry[]>([]);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const bottom = useRef<HTMLDivElement>(null);

  async function send() {
    const text = draft.trim();
    if (!text || busy) return;
    const next: Entry[] = [...messages, { role: "user", content: text }];
    setMessages(next);
    setDraft("");
    setBusy(true);
    setError(null);
    try {
      const reply = await api.chat(next.map(({ role, content }) => ({ role, content })));
      const calls = Array.isArray(reply?.tool_calls) ? reply.tool_calls : [];
      setMessages([...next, { role: "assistant", content: String(reply?.response ?? ""), tool_calls: calls }]);
      if (calls.length > 0) onActed?.(); // the assistant changed something: refresh the page behind
    } catch (e) {
      setError(e);
    } finally {
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
        {messages.length === 0 && (
          <p className="text-muted-foreground">
            Ask the assistant to create a function, explain an error, or add a route. It acts on your projects through the same API as this UI.
          </p>
        )}
        {messages.map((m, i) => (
          <div key={i} className={cn("max-w-[90%] rounded-lg px-3 py-2 whitespace-pre-wrap", m.role === "user" ? "bg-primary text-primary-foreground ml-auto" : "bg-muted")}>
            {m.content}
            {m.tool_calls && m.tool_calls.length > 0 && (
              <details className="mt-2 text-xs opacity-80">
                <summary>{m.tool_calls.length} action(s) taken</summary>
                <ul className="mt-1 list-disc pl-4">{m.tool_calls.map((t, j) => <li key={j}><code>{String(t?.tool ?? "tool")}</code></li>)}</ul>
              </details>
            )}
          </div>
        ))}
        {busy && <div className="text-muted-foreground flex items-center gap-2"><Spinner /> Thinking…</div>}
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
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={(e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); void send(); } }}
          placeholder="Ask something…"
          aria-label="Message"
          className="min-h-10 resize-none"
          rows={2}
        />
        <Button type="submit" size="icon" disabled={busy || !draft.trim()} aria-label="Send"><Send /></Button>
      </form>
    </aside>
  );
}
