// A project's dependencies: its requirements.txt, and the layer built from it (a read-only directory
// of installed packages every function of the project imports from). Saving answers at once and the
// build runs on the server: while it is queued or building the tab polls and shows pip's log as it
// grows; then the status, the layer's size, when it was built and the layer the functions use now
// (the last ready one: a build in progress or a failed one changes nothing that runs, so the tab
// says which layer is active beside the one asked for). A server without layers answers 501 (or
// 404): the tab says so instead of offering a form.
import { useEffect, useRef, useState } from "react";
import { api, type Project, type Requirements } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Textarea } from "@/components/ui/textarea";
import { Spinner } from "@/components/ui/skeleton";
import { ErrorAlert, ListSkeleton, NotAvailable, StatusBadge } from "@/components/common";
import { useToast } from "@/components/toaster";
import { formatBytes, formatDate, shortHash, timeAgo } from "@/lib/utils";

export const DEPS_POLL_MS = 1500;

/** A build still on its way: the tab polls and shows the log live. */
export function buildInProgress(status?: string | null): boolean {
  return !!status && /^(pending|queued|building|running|installing)$/i.test(status);
}

/** The status in words, for the line beside the badge. */
export function buildSummary(r: Requirements): string {
  const s = r.build_status ?? "none";
  const active = r.active_hash ? `layer ${shortHash(r.active_hash)}` : "no layer";
  if (s === "none" || (!r.requirements_txt?.trim() && s !== "queued" && s !== "building"))
    return "No packages: functions run with Python's standard library only.";
  if (s === "queued") return `Waiting to build; functions keep running with ${active}.`;
  if (s === "building") return `Building; functions keep running with ${active} until it is ready.`;
  if (s === "ready") return r.active_hash && r.requirements_hash && r.active_hash !== r.requirements_hash
    ? `Built; functions switch to it from their next cold start.`
    : "Ready: every function of the project imports these packages.";
  if (s === "failed") return `The build failed; nothing that runs changed (functions keep ${active}).`;
  return s;
}

export function DependenciesTab({ project, pollMs = DEPS_POLL_MS }: { project: Project; pollMs?: number }) {
  const req = useApi(() => api.requirements(project.id), [project.id]);
  const [text, setText] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  const logRef = useRef<HTMLPreElement>(null);
  const status = req.data?.build_status ?? null;
  const building = buildInProgress(status);
  const { reload } = req;

  useEffect(() => {
    // While the layer builds in the background, poll its status and log.
    if (!building) return;
    const h = setInterval(() => void reload({ quiet: true }), pollMs);
    return () => clearInterval(h);
  }, [building, reload, pollMs]);
  // Keep the newest lines of a growing log in view.
  const log = req.data?.build_log ?? "";
  useEffect(() => {
    const el = logRef.current;
    if (el && building) el.scrollTop = el.scrollHeight;
  }, [log, building]);

  if (req.loading && !req.data) return <ListSkeleton />;
  if (req.error && !req.data) return <NotAvailable error={req.error} what="Dependencies" />;
  const r = req.data!;
  const value = text ?? r.requirements_txt ?? "";

  async function save() {
    setBusy(true);
    setError(null);
    try {
      const saved = await api.setRequirements(project.id, value);
      // The answer is the new state when the server sends it (200); a bare 202 is read back.
      if (saved && typeof saved === "object" && "requirements_txt" in saved) req.setData(saved);
      else await reload({ quiet: true });
      setText(null);
      toast(value.trim() ? "Requirements saved; the layer builds in the background" : "Requirements cleared; the layer is removed");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const failed = status === "failed";
  const showLog = !!log && (building || failed);
  const pending = r.requirements_hash && r.active_hash && r.requirements_hash !== r.active_hash;

  return (
    <Card data-testid="dependencies-tab">
      <CardHeader>
        <CardTitle>requirements.txt</CardTitle>
        <CardDescription>Python packages installed for every function in this project, one per line as pip reads them (<code>name==1.2</code>, <code>name&gt;=1.0</code>). They are built into a layer off the request path.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <Textarea value={value} onChange={(e) => setText(e.target.value)} rows={8} className="font-mono" placeholder={"requests==2.32.3\nnumpy"} aria-label="requirements.txt" data-testid="requirements-input" />
        <div className="flex flex-wrap items-center gap-2 text-sm">
          <span className="flex items-center gap-1" data-testid="deps-status" data-status={status ?? "none"}>
            {building && <Spinner />}
            <StatusBadge status={status === "none" || !status ? "no layer" : status} />
          </span>
          <span className="text-muted-foreground" data-testid="deps-summary">{buildSummary(r)}</span>
          <Button className="ml-auto" onClick={() => void save()} disabled={busy || (!failed && (text === null || text === (r.requirements_txt ?? "")))} data-testid="save-requirements">{busy ? <><Spinner /> Saving…</> : failed && (text === null || text === (r.requirements_txt ?? "")) ? "Build again" : "Save"}</Button>
        </div>
        <ErrorAlert error={error} title="Could not save requirements" />
        <dl className="grid grid-cols-1 gap-x-6 gap-y-2 text-sm sm:grid-cols-2" data-testid="deps-facts">
          <div>
            <dt className="text-muted-foreground text-xs">Active layer (what functions use now)</dt>
            <dd className="font-mono text-xs break-all" data-testid="deps-active-hash" title={r.active_hash ?? undefined}>{r.active_hash ? shortHash(r.active_hash) : "none"}</dd>
          </div>
          <div>
            <dt className="text-muted-foreground text-xs">Layer size</dt>
            <dd className="tabular-nums" data-testid="deps-size">{r.layer_size_bytes ? formatBytes(r.layer_size_bytes) : "—"}</dd>
          </div>
          <div>
            <dt className="text-muted-foreground text-xs">Built</dt>
            <dd data-testid="deps-built-at">{r.built_at ? <time dateTime={r.built_at} title={formatDate(r.built_at)}>{timeAgo(r.built_at)}</time> : "—"}</dd>
          </div>
          <div>
            <dt className="text-muted-foreground text-xs">Requirements hash{pending ? " (not active yet)" : ""}</dt>
            <dd className="font-mono text-xs break-all" data-testid="deps-requirements-hash" title={r.requirements_hash ?? undefined}>{r.requirements_hash ? shortHash(r.requirements_hash) : "—"}</dd>
          </div>
        </dl>
        {failed && (
          <Alert variant="destructive" data-testid="deps-failed">
            <AlertTitle>The build failed</AlertTitle>
            <AlertDescription><p>pip's own message is at the end of the log below. Fix the requirements and save again.</p></AlertDescription>
          </Alert>
        )}
        {showLog ? (
          <div className="grid gap-1">
            <div className="text-xs font-medium">{building ? "Build log (live)" : "Build log"}</div>
            <pre ref={logRef} tabIndex={0} role="log" aria-live={building ? "polite" : "off"} aria-label="Build log" data-testid="deps-log" className="bg-muted max-h-72 overflow-auto rounded p-2 font-mono text-xs whitespace-pre-wrap break-words">{log}</pre>
          </div>
        ) : log ? (
          <details><summary className="cursor-pointer text-sm">Build log</summary><pre tabIndex={0} aria-label="Build log" data-testid="deps-log" className="bg-muted mt-2 max-h-72 overflow-auto rounded p-2 font-mono text-xs whitespace-pre-wrap break-words">{log}</pre></details>
        ) : building ? (
          <p className="text-muted-foreground text-xs" data-testid="deps-log-waiting">The log appears here when pip starts.</p>
        ) : null}
      </CardContent>
    </Card>
  );
}
