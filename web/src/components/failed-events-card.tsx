// A function's failed events: the async calls that failed on every attempt (max_retries + 1), kept
// by the server as a dead-letter list. Each shows when it failed, after how many attempts, why (the
// last attempt's error) and its input; "Re-drive" queues it again as a new async call (202) and
// takes it off the list, "Delete" drops it (204). A server without async calls (404/405/501) gets
// no card at all.
import { useEffect, useState } from "react";
import { RotateCcw, Trash2 } from "lucide-react";
import { api, type FailedEvent } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Spinner } from "@/components/ui/skeleton";
import { ErrorAlert, isUnsupported, ListSkeleton } from "@/components/common";
import { useToast } from "@/components/toaster";
import { firstLine, formatTimestamp, prettyJson, timeAgo } from "@/lib/utils";

/** An event's input as one short line: stored as JSON text or as a value. */
export function inputPreview(input: unknown, max = 80): string {
  if (input === undefined || input === null || input === "") return "(no input)";
  let text: string;
  if (typeof input === "string") {
    try { text = JSON.stringify(JSON.parse(input)); } catch { text = input; }
  } else {
    try { text = JSON.stringify(input); } catch { text = String(input); }
  }
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

export function FailedEventsCard({ functionId, refreshKey = 0, onRedriven, pollMs = 5000 }: {
  functionId: string; refreshKey?: number; onRedriven?: () => void; pollMs?: number;
}) {
  const list = useApi(() => api.failedEvents(functionId), [functionId]);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  const { reload } = list;
  const unsupported = !!list.error && !list.data && isUnsupported(list.error);

  // Events land here when an async call's last retry fails, later than any click: poll while shown.
  useEffect(() => {
    if (unsupported) return;
    const h = setInterval(() => { if (document.visibilityState === "visible") void reload({ quiet: true }); }, pollMs);
    return () => clearInterval(h);
  }, [unsupported, reload, pollMs]);
  useEffect(() => { if (refreshKey) void reload({ quiet: true }); }, [refreshKey, reload]);

  if (unsupported) return null;

  async function act(e: FailedEvent, what: "redrive" | "delete") {
    setBusy(`${what}:${e.id}`);
    setError(null);
    try {
      if (what === "redrive") await api.redrive(functionId, e.id);
      else await api.deleteFailedEvent(functionId, e.id);
      list.setData((list.data ?? []).filter((x) => x.id !== e.id));
      toast(what === "redrive" ? "Event re-driven: it runs again as a new async call" : "Failed event deleted");
      if (what === "redrive") onRedriven?.();
      void reload({ quiet: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  }

  const rows = list.data;
  return (
    <Card data-testid="failed-events-card">
      <CardHeader>
        <CardTitle>Failed events</CardTitle>
        <CardDescription>Async calls that failed on every attempt. Re-drive one to run it again.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <ErrorAlert error={error} title="Could not do that" />
        {list.error != null && !rows ? (
          <ErrorAlert error={list.error} title="Could not load the failed events" onRetry={() => void reload()} />
        ) : !rows ? (
          <ListSkeleton rows={2} />
        ) : rows.length === 0 ? (
          <p className="text-muted-foreground text-sm" data-testid="failed-events-empty">None: every async call succeeded or is still being retried.</p>
        ) : (
          <ul className="divide-y" data-testid="failed-event-list">
            {rows.map((e) => (
              <li key={e.id} className="flex flex-col gap-1 py-2 text-sm" data-testid="failed-event">
                <div className="flex flex-wrap items-center gap-x-3 gap-y-1">
                  <time className="tabular-nums" dateTime={e.failed_at} title={timeAgo(e.failed_at)}>{formatTimestamp(e.failed_at)}</time>
                  {typeof e.attempts === "number" && <span className="text-muted-foreground text-xs" data-testid="failed-event-attempts">{e.attempts} attempt{e.attempts === 1 ? "" : "s"}</span>}
                  <span className="ml-auto flex gap-1">
                    <Button type="button" size="sm" variant="outline" disabled={busy !== null} onClick={() => void act(e, "redrive")} data-testid="failed-event-redrive" aria-label={`Re-drive the event that failed at ${formatTimestamp(e.failed_at)}`}>
                      {busy === `redrive:${e.id}` ? <Spinner /> : <RotateCcw />} Re-drive
                    </Button>
                    <Button type="button" size="sm" variant="ghost" disabled={busy !== null} onClick={() => void act(e, "delete")} data-testid="failed-event-delete" aria-label={`Delete the event that failed at ${formatTimestamp(e.failed_at)}`}>
                      {busy === `delete:${e.id}` ? <Spinner /> : <Trash2 />}
                    </Button>
                  </span>
                </div>
                <p className="text-destructive font-mono text-xs break-words" title={e.error ?? undefined} data-testid="failed-event-error">{firstLine(e.error) || "The call failed"}</p>
                <details className="text-xs">
                  <summary className="text-muted-foreground cursor-pointer">Input: <code className="break-all">{inputPreview(e.input)}</code></summary>
                  <pre tabIndex={0} className="bg-muted mt-1 max-h-48 overflow-auto rounded p-2 font-mono whitespace-pre-wrap break-words">{prettyJson(e.input)}</pre>
                  {e.error && <pre tabIndex={0} className="bg-muted text-destructive mt-1 max-h-48 overflow-auto rounded p-2 font-mono whitespace-pre-wrap break-words">{e.error}</pre>}
                  {e.invocation_id && <p className="text-muted-foreground mt-1">First attempt: invocation {e.invocation_id}</p>}
                </details>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
