// Function detail: the Monaco editor (save creates a version), version picker with rollback, the
// test panel (JSON input → result, logs, duration, cold/warm), invoke URL and curl example, network
// toggle and limits, the invocation log with expandable rows, and delete.
import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ChevronDown, ChevronRight, History, Play, RotateCcw, Save, Square, Trash2 } from "lucide-react";
import { api, type Fn, type Invocation, type InvokeResult } from "@/lib/api";
import { getToken } from "@/lib/auth";
import { useApi } from "@/lib/hooks";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import {
  AlertDialog, AlertDialogAction, AlertDialogCancel, AlertDialogContent, AlertDialogDescription,
  AlertDialogFooter, AlertDialogHeader, AlertDialogTitle, AlertDialogTrigger,
} from "@/components/ui/alert-dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/select";
import { Skeleton, Spinner } from "@/components/ui/skeleton";
import { Switch } from "@/components/ui/switch";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { CopyField, EmptyState, ErrorAlert, Loading, PageHeader, StatusBadge } from "@/components/common";
import { useToast } from "@/components/toaster";
import { currentOrigin, curlExample, formatDate, formatMs, invokeUrl, prettyJson, timeAgo } from "@/lib/utils";

const CodeEditor = lazy(() => import("@/components/code-editor"));

function EditorFallback({ height }: { height: number }) {
  return <Skeleton style={{ height }} className="w-full" />;
}

export default function FunctionDetail() {
  const { id = "" } = useParams();
  const fnState = useApi(() => api.fn(id), [id]);
  const projectId = fnState.data?.project_id ?? "";
  const project = useApi(() => (projectId ? api.project(projectId) : Promise.resolve(null)), [projectId]);
  const versions = useApi(() => api.versions(id), [id]);
  const invocations = useApi(() => api.invocations(id, 50), [id]);
  const [code, setCode] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [picked, setPicked] = useState<number | null>(null);
  const [rollingBack, setRollingBack] = useState(false);
  const toast = useToast();
  const navigate = useNavigate();
  const fn = fnState.data;

  useEffect(() => { if (fn && code === null) setCode(fn.code); }, [fn, code]);
  const unsaved = !!fn && code !== null && code !== fn.code;
  useEffect(() => {
    if (!unsaved) return;
    const warn = (e: BeforeUnloadEvent) => { e.preventDefault(); };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [unsaved]);

  if (fnState.loading && !fn) return <Loading />;
  if (fnState.error && !fn) return <ErrorAlert error={fnState.error} title="Could not load the function" />;
  if (!fn) return null;

  const current = code ?? fn.code;
  const dirty = current !== fn.code;

  async function save() {
    if (!fn || !dirty || saving) return;
    setSaving(true);
    setSaveError(null);
    try {
      const updated = await api.updateFunction(fn.id, { code: current });
      fnState.setData(updated);
      setCode(updated.code);
      setPicked(null);
      toast(`Saved as version ${updated.active_version}`);
      void versions.reload();
    } catch (e) {
      setSaveError(e);
    } finally {
      setSaving(false);
    }
  }

  async function rollback(v: number) {
    if (!fn) return;
    setRollingBack(true);
    setSaveError(null);
    try {
      const updated = await api.rollback(fn.id, v);
      fnState.setData(updated);
      setCode(updated.code);
      setPicked(null);
      toast(`Version ${v} is active again`);
      void versions.reload();
    } catch (e) {
      setSaveError(e);
    } finally {
      setRollingBack(false);
    }
  }

  async function remove() {
    if (!fn) return;
    try {
      await api.deleteFunction(fn.id);
      toast(`Function "${fn.name}" deleted`);
      navigate(fn.project_id ? `/projects/${fn.project_id}` : "/functions");
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  const pickedVersion = picked !== null ? versions.data?.find((v) => v.version === picked) : undefined;

  return (
    <>
      <PageHeader
        title={<span className="flex items-center gap-2">{fn.name} <Badge variant="outline" data-testid="active-version">v{fn.active_version}</Badge> <StatusBadge status={fn.status} /></span>}
        description={<>{fn.description || "Python function"}{fn.project_id && <> · in <Link className="underline" to={`/projects/${fn.project_id}`}>{project.data?.name ?? "its project"}</Link></>}</>}
        actions={
          <AlertDialog>
            <AlertDialogTrigger asChild><Button variant="outline"><Trash2 className="text-destructive" /> Delete</Button></AlertDialogTrigger>
            <AlertDialogContent>
              <AlertDialogHeader>
                <AlertDialogTitle>Delete “{fn.name}”?</AlertDialogTitle>
                <AlertDialogDescription>Its versions, routes and invocation logs go too. This cannot be undone.</AlertDialogDescription>
              </AlertDialogHeader>
              <AlertDialogFooter><AlertDialogCancel>Cancel</AlertDialogCancel><AlertDialogAction onClick={() => void remove()}>Delete</AlertDialogAction></AlertDialogFooter>
            </AlertDialogContent>
          </AlertDialog>
        }
      />

      <div className="grid gap-6 xl:grid-cols-[minmax(0,1fr)_26rem]">
        <Card className="min-w-0 gap-3">
          <CardHeader className="flex flex-col gap-3 sm:flex-row sm:items-center sm:justify-between">
            <CardTitle>Code</CardTitle>
            <div className="flex flex-wrap items-center gap-2">
              <div className="w-40">
                <NativeSelect aria-label="Version" data-testid="version-picker" value={picked ?? fn.active_version} onChange={(e) => setPicked(Number(e.target.value))}>
                  {(versions.data ?? [{ version: fn.active_version, created_at: fn.updated_at }]).map((v) => (
                    <option key={v.version} value={v.version}>v{v.version}{v.version === fn.active_version ? " (active)" : ""}</option>
                  ))}
                </NativeSelect>
              </div>
              {picked !== null && picked !== fn.active_version && (
                <Button variant="secondary" onClick={() => void rollback(picked)} disabled={rollingBack} data-testid="rollback">
                  {rollingBack ? <Spinner /> : <RotateCcw />} Roll back to v{picked}
                </Button>
              )}
              <Button onClick={() => void save()} disabled={!dirty || saving} data-testid="save-code">
                {saving ? <Spinner /> : <Save />} {saving ? "Saving…" : "Save"}
              </Button>
            </div>
          </CardHeader>
          <CardContent className="flex flex-col gap-2">
            {pickedVersion && picked !== fn.active_version ? (
              <>
                <p className="text-muted-foreground flex items-center gap-1 text-sm"><History className="size-4" /> Viewing version {pickedVersion.version} from {formatDate(pickedVersion.created_at)} (read-only)</p>
                <Suspense fallback={<EditorFallback height={420} />}>
                  <CodeEditor key={`v${pickedVersion.version}`} value={pickedVersion.code} onChange={() => {}} language="python" readOnly height={420} />
                </Suspense>
              </>
            ) : (
              <Suspense fallback={<EditorFallback height={420} />}>
                <CodeEditor value={current} onChange={setCode} language="python" height={420} testId="code-editor" ariaLabel="Function code" onSave={() => void save()} />
              </Suspense>
            )}
            <p className="text-muted-foreground text-xs">
              {dirty ? "Unsaved changes — Save creates a new version." : `Version ${fn.active_version} is live.`} Define <code>handler(input)</code> or <code>handler(event, context)</code>; <code>print()</code> goes to the logs.
            </p>
            <ErrorAlert error={saveError} title="Could not save" />
          </CardContent>
        </Card>

        <TestPanel fn={fn} dirty={dirty} onInvoked={() => void invocations.reload()} />
      </div>

      <div className="mt-6 grid gap-6 lg:grid-cols-2">
        <InvokeInfo fn={fn} />
        <SettingsCard fn={fn} onSaved={(f) => fnState.setData(f)} />
      </div>

      <Card className="mt-6">
        <CardHeader className="flex flex-row items-center justify-between">
          <div><CardTitle>Invocations</CardTitle><CardDescription>The 50 most recent; click a row for input, output and logs.</CardDescription></div>
          <Button size="sm" variant="outline" onClick={() => void invocations.reload()} disabled={invocations.loading}>{invocations.loading ? <Spinner /> : null} Refresh</Button>
        </CardHeader>
        <CardContent className="px-2 sm:px-5">
          <InvocationTable error={invocations.error} rows={invocations.data} />
        </CardContent>
      </Card>
    </>
  );
}

function TestPanel({ fn, dirty, onInvoked }: { fn: Fn; dirty: boolean; onInvoked: () => void }) {
  const [input, setInput] = useState('{\n  "name": "Clowdy"\n}');
  const [busy, setBusy] = useState(false);
  const [elapsed, setElapsed] = useState(0);
  const [result, setResult] = useState<InvokeResult | null>(null);
  const [logs, setLogs] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    if (!busy) return;
    const t0 = Date.now();
    const h = setInterval(() => setElapsed(Math.floor((Date.now() - t0) / 1000)), 250);
    return () => clearInterval(h);
  }, [busy]);

  let parsed: unknown;
  let parseError: string | null = null;
  try { parsed = input.trim() ? JSON.parse(input) : {}; } catch (e) { parseError = e instanceof Error ? e.message : "Invalid JSON"; }

  async function run() {
    if (parseError) return;
    setBusy(true);
    setElapsed(0);
    setError(null);
    setResult(null);
    setLogs(null);
    const ctl = new AbortController();
    abort.current = ctl;
    try {
      const r = await api.invoke(fn.id, parsed, ctl.signal);
      setResult(r);
      if (typeof r.logs === "string") setLogs(r.logs);
      else if (r.invocation_id) {
        // The invocation record is written in batches: poll briefly for it to fetch its logs.
        for (let attempt = 0; attempt < 12; attempt++) {
          const list = await api.invocations(fn.id, 20).catch(() => [] as Invocation[]);
          const inv = list.find((i) => i.id === r.invocation_id);
          if (inv) { setLogs(typeof inv.logs === "string" ? inv.logs : ""); break; }
          await new Promise((res) => setTimeout(res, 250));
        }
      }
      onInvoked();
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "AbortError")) setError(e);
    } finally {
      setBusy(false);
      abort.current = null;
    }
  }

  return (
    <Card className="min-w-0 gap-3" data-testid="test-panel">
      <CardHeader>
        <CardTitle>Test</CardTitle>
        <CardDescription>Runs the live version (v{fn.active_version}){dirty ? " — save first to test your edits" : ""}.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <Label>Input (JSON)</Label>
        <Suspense fallback={<EditorFallback height={140} />}>
          <CodeEditor value={input} onChange={setInput} language="json" height={140} testId="test-input" ariaLabel="Test input JSON" />
        </Suspense>
        {parseError && <p className="text-destructive text-xs">Input is not valid JSON: {parseError}</p>}
        <div className="flex gap-2">
          <Button onClick={() => void run()} disabled={busy || !!parseError} data-testid="run-test">
            {busy ? <Spinner /> : <Play />} {busy ? `Running… ${elapsed}s` : "Run"}
          </Button>
          {busy && <Button variant="outline" onClick={() => abort.current?.abort()}><Square /> Stop waiting</Button>}
        </div>
        <ErrorAlert error={error} title="Invocation failed" />
        {result && (
          <div className="flex flex-col gap-2" data-testid="test-result">
            <div className="flex flex-wrap items-center gap-2 text-sm">
              <Badge variant={result.success ? "success" : "destructive"} data-testid="test-status">{result.success ? "success" : "error"}</Badge>
              <span data-testid="test-duration">{formatMs(result.duration_ms)}</span>
              {result.cold_start !== undefined && <Badge variant="outline" data-testid="test-start">{result.cold_start ? "cold start" : "warm"}</Badge>}
            </div>
            <Label>{result.success ? "Output" : "Error"}</Label>
            <pre data-testid="test-output" className="bg-muted max-h-64 overflow-auto rounded-md p-2 font-mono text-xs whitespace-pre-wrap break-all">
              {result.success ? prettyJson(result.output ?? null) : String(result.error ?? "Unknown error")}
            </pre>
            <Label>Logs</Label>
            <pre data-testid="test-logs" className="bg-muted max-h-48 overflow-auto rounded-md p-2 font-mono text-xs whitespace-pre-wrap break-all">{logs ? logs : <span className="text-muted-foreground">(no output)</span>}</pre>
          </div>
        )}
      </CardContent>
    </Card>
  );
}

function InvokeInfo({ fn }: { fn: Fn }) {
  const origin = currentOrigin();
  return (
    <Card>
      <CardHeader><CardTitle>Invoke</CardTitle><CardDescription>Call this function over HTTP.</CardDescription></CardHeader>
      <CardContent className="flex flex-col gap-3">
        <CopyField value={invokeUrl(origin, fn.id)} testId="invoke-url" label="Copy URL" />
        <Label>curl</Label>
        <CopyField value={curlExample(origin, fn.id, { name: "Clowdy" }, getToken())} testId="curl-example" label="Copy curl" />
      </CardContent>
    </Card>
  );
}

function SettingsCard({ fn, onSaved }: { fn: Fn; onSaved: (f: Fn) => void }) {
  const [enabled, setEnabled] = useState(fn.status !== "disabled");
  const [network, setNetwork] = useState(fn.network_enabled);
  const [timeout, setTimeoutS] = useState(String(fn.timeout_seconds));
  const [memory, setMemory] = useState(String(fn.memory_mb));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  const changed = enabled !== (fn.status !== "disabled") || network !== fn.network_enabled || Number(timeout) !== fn.timeout_seconds || Number(memory) !== fn.memory_mb;

  async function save() {
    setBusy(true);
    setError(null);
    try {
      const f = await api.updateFunction(fn.id, { status: enabled ? "active" : "disabled", network_enabled: network, timeout_seconds: Number(timeout), memory_mb: Number(memory) });
      onSaved(f);
      setEnabled(f.status !== "disabled"); setNetwork(f.network_enabled); setTimeoutS(String(f.timeout_seconds)); setMemory(String(f.memory_mb));
      toast("Settings saved");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card>
      <CardHeader><CardTitle>Settings</CardTitle><CardDescription>Limits and network apply from the next cold start.</CardDescription></CardHeader>
      <CardContent>
        <form noValidate className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); void save(); }}>
          <Label className="justify-between font-normal">
            <span><span className="font-medium">Enabled</span><br /><span className="text-muted-foreground text-xs">A disabled function keeps its code and routes; calls to it answer 503.</span></span>
            <Switch checked={enabled} onCheckedChange={setEnabled} aria-label="Enabled" data-testid="enabled-toggle" />
          </Label>
          <Label className="justify-between font-normal">
            <span><span className="font-medium">Outbound network</span><br /><span className="text-muted-foreground text-xs">Off by default; the host's own services stay unreachable.</span></span>
            <Switch checked={network} onCheckedChange={setNetwork} aria-label="Outbound network" data-testid="network-toggle" />
          </Label>
          <div className="grid grid-cols-2 gap-3">
            <div className="grid gap-2">
              <Label htmlFor="fn-timeout">Timeout (s)</Label>
              <Input id="fn-timeout" type="number" min={1} max={900} value={timeout} onChange={(e) => setTimeoutS(e.target.value)} />
            </div>
            <div className="grid gap-2">
              <Label htmlFor="fn-memory">Memory (MB)</Label>
              <Input id="fn-memory" type="number" min={64} max={2048} step={64} value={memory} onChange={(e) => setMemory(e.target.value)} />
            </div>
          </div>
          <ErrorAlert error={error} title="Could not save settings" />
          <div><Button type="submit" disabled={busy || !changed}>{busy ? "Saving…" : "Save settings"}</Button></div>
        </form>
      </CardContent>
    </Card>
  );
}

function InvocationTable({ rows, error }: { rows?: Invocation[]; error: unknown }) {
  const [open, setOpen] = useState<string | null>(null);
  if (error) return <ErrorAlert error={error} title="Could not load invocations" />;
  if (!rows) return <Loading />;
  if (rows.length === 0) return <EmptyState title="No invocations yet">Run the function from the test panel.</EmptyState>;
  return (
    <Table data-testid="invocation-table">
      <TableHeader>
        <TableRow>
          <TableHead className="w-6" />
          <TableHead>Status</TableHead>
          <TableHead>Duration</TableHead>
          <TableHead className="hidden sm:table-cell">Source</TableHead>
          <TableHead className="hidden md:table-cell">Start</TableHead>
          <TableHead>Time</TableHead>
        </TableRow>
      </TableHeader>
      <TableBody>
        {rows.map((r) => (
          <InvocationRow key={r.id} r={r} open={open === r.id} onToggle={() => setOpen(open === r.id ? null : r.id)} />
        ))}
      </TableBody>
    </Table>
  );
}

function InvocationRow({ r, open, onToggle }: { r: Invocation; open: boolean; onToggle: () => void }) {
  return (
    <>
      <TableRow className="cursor-pointer" onClick={onToggle} data-testid="invocation-row" aria-expanded={open}>
        <TableCell>{open ? <ChevronDown className="size-4" /> : <ChevronRight className="size-4" />}</TableCell>
        <TableCell><StatusBadge status={r.status} /></TableCell>
        <TableCell>{formatMs(r.duration_ms)}</TableCell>
        <TableCell className="hidden sm:table-cell">{r.source ?? "—"}{r.http_method ? ` ${r.http_method} ${r.http_path ?? ""}` : ""}</TableCell>
        <TableCell className="hidden md:table-cell">{r.cold_start === undefined ? "—" : r.cold_start ? "cold" : "warm"}</TableCell>
        <TableCell className="text-muted-foreground" title={formatDate(r.created_at)}>{timeAgo(r.created_at)}</TableCell>
      </TableRow>
      {open && (
        <TableRow className="hover:bg-transparent">
          <TableCell colSpan={6} className="whitespace-normal">
            <div className="grid gap-3 md:grid-cols-3" data-testid="invocation-details">
              <Detail label="Input" text={prettyJson(r.input)} />
              <Detail label="Output" text={prettyJson(r.output)} />
              <Detail label="Logs" text={r.logs ?? ""} />
            </div>
            <p className="text-muted-foreground mt-2 text-xs">id {r.id}{r.version ? ` · version ${r.version}` : ""} · {formatDate(r.created_at)}</p>
          </TableCell>
        </TableRow>
      )}
    </>
  );
}

function Detail({ label, text }: { label: string; text: string }) {
  return (
    <div className="min-w-0">
      <div className="mb-1 text-xs font-medium">{label}</div>
      <pre className="bg-muted max-h-56 overflow-auto rounded p-2 font-mono text-xs whitespace-pre-wrap break-all">{text || <span className="text-muted-foreground">(empty)</span>}</pre>
    </div>
  );
}
