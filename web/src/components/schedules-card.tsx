// A function's schedules: list, add (`rate(5 minutes)` or a 5-field cron expression in UTC) and
// delete. Each firing is an async invocation with source "schedule", so its runs show in the
// invocation log. The server checks the expression: its 422 sentence is shown as it is. A server
// without schedules (404/405/501) gets no card at all.
import { useEffect, useState } from "react";
import { Trash2 } from "lucide-react";
import { api, type Schedule } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Spinner } from "@/components/ui/skeleton";
import { ErrorAlert, isUnsupported, ListSkeleton } from "@/components/common";
import { useToast } from "@/components/toaster";
import { formatTimestamp, timeAgo } from "@/lib/utils";

/** When a time to come is: "in 40 s", "in 5 min", "in 3 h", "in 2 d"; a time passed is "due now". */
export function timeUntil(iso?: string | null, now: number = Date.now()): string {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  if (isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return "due now";
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.round(s / 60)} min`;
  if (s < 86400) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} d`;
}

export function SchedulesCard({ functionId, pollMs = 15000 }: { functionId: string; pollMs?: number }) {
  const list = useApi(() => api.schedules(functionId), [functionId]);
  const [expression, setExpression] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  const { reload } = list;
  const unsupported = !!list.error && !list.data && isUnsupported(list.error);
  // Next and last runs move on as the schedules fire: read them again now and then.
  useEffect(() => {
    if (unsupported) return;
    const h = setInterval(() => { if (document.visibilityState === "visible") void reload({ quiet: true }); }, pollMs);
    return () => clearInterval(h);
  }, [unsupported, reload, pollMs]);

  if (unsupported) return null;

  async function add() {
    const expr = expression.trim();
    if (!expr) return;
    setBusy(true);
    setError(null);
    try {
      await api.createSchedule(functionId, expr);
      setExpression("");
      toast(`Schedule ${expr} added`);
      await list.reload({ quiet: true });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function remove(s: Schedule) {
    try {
      await api.deleteSchedule(functionId, s.id);
      toast(`Schedule ${s.expression} deleted`);
      list.setData((list.data ?? []).filter((x) => x.id !== s.id));
      void list.reload({ quiet: true });
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  return (
    <Card data-testid="schedules-card">
      <CardHeader>
        <CardTitle>Schedules</CardTitle>
        <CardDescription>Runs the function on a timer, as an async call (source “schedule”) with its retries.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <form noValidate className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); void add(); }}>
          <div className="grid min-w-0 flex-1 gap-1.5">
            <Label htmlFor={`schedule-expression-${functionId}`}>Expression</Label>
            <Input id={`schedule-expression-${functionId}`} data-testid="schedule-expression" className="font-mono" value={expression} onChange={(e) => setExpression(e.target.value)} placeholder="rate(5 minutes) or 0 * * * *" />
          </div>
          <Button type="submit" disabled={busy || !expression.trim()} data-testid="schedule-add">{busy ? <Spinner /> : null} Add schedule</Button>
        </form>
        <p className="text-muted-foreground -mt-1 text-xs"><code>rate(N minutes|hours|days)</code> or cron <code>minute hour day month weekday</code>, in UTC. Firings missed while the server was down run once at start-up.</p>
        <ErrorAlert error={error} title="Could not add the schedule" />
        {list.error != null && !list.data ? (
          <ErrorAlert error={list.error} title="Could not load the schedules" onRetry={() => void list.reload()} />
        ) : !list.data ? (
          <ListSkeleton rows={2} />
        ) : list.data.length === 0 ? (
          <p className="text-muted-foreground text-sm" data-testid="schedules-empty">No schedules: the function runs only when called.</p>
        ) : (
          <ul className="divide-y" data-testid="schedule-list">
            {list.data.map((s) => (
              <li key={s.id} className="flex flex-wrap items-center gap-x-3 gap-y-1 py-2 text-sm" data-testid="schedule-row">
                <code className="font-mono text-xs" data-testid="schedule-row-expression">{s.expression}</code>
                {s.enabled === false && <Badge variant="secondary">paused</Badge>}
                <span className="text-muted-foreground text-xs" data-testid="schedule-next">
                  next {s.next_run_at ? <time dateTime={s.next_run_at} title={formatTimestamp(s.next_run_at)}>{timeUntil(s.next_run_at)}</time> : "—"}
                  {" · "}last {s.last_run_at ? <time dateTime={s.last_run_at} title={formatTimestamp(s.last_run_at)}>{timeAgo(s.last_run_at)}</time> : "never"}
                </span>
                <Button type="button" size="sm" variant="ghost" className="ml-auto" aria-label={`Delete schedule ${s.expression}`} onClick={() => void remove(s)} data-testid="schedule-delete"><Trash2 /></Button>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
