// Function detail: the Monaco editor (save creates a version; Ctrl/Cmd+S saves, Ctrl/Cmd+Enter runs the
// test; unsaved edits survive a remount and in-app navigation asks first), version picker with
// rollback, the test panel (JSON input with saved test events → result, logs, duration, cold/warm),
// invoke URL and a curl built from the test input, settings, the invocation log (filters, live
// updates, more rows, keyboard-openable rows showing the error and traceback of failed calls), delete.
// Where the server has them: the dependency layer the function runs with (header), async retries in
// the settings, the schedules and failed-events cards (components/schedules-card.tsx,
// failed-events-card.tsx), the platform's init and queue time beside each duration, retried
// attempts, and lost calls shown as platform failures rather than the function's errors.
import { lazy, Suspense, useEffect, useRef, useState, type MutableRefObject, type ReactNode } from "react";
import { Link, useBlocker, useNavigate, useParams, useSearchParams } from "react-router";
import { ArrowLeft, BookmarkPlus, ChevronDown, ChevronRight, History, Play, RotateCcw, RotateCw, Save, Square, Trash2 } from "lucide-react";
import { api, ApiError, type Fn, type Invocation, type InvokeResult } from "@/lib/api";
import { getToken } from "@/lib/auth";
import { useApi } from "@/lib/hooks";
import { deleteTestEvent, loadDraft, loadTestEvents, saveTestEvent, storeDraft, type TestEvent } from "@/lib/storage";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
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
import { CopyField, EmptyState, ErrorAlert, ListSkeleton, PageHeader, PageSkeleton, StatusBadge, useTitle } from "@/components/common";
import { Detail } from "@/components/invocation-detail";
import { SchedulesCard } from "@/components/schedules-card";
import { FailedEventsCard } from "@/components/failed-events-card";
import { useToast } from "@/components/toaster";
import {
  cn, currentOrigin, curlExample, firstLine, formatDate, formatDuration, formatMemoryKb, formatTimestamp, invokeUrl,
  isPlatformFailure, platformTimes, prettyJson, shortHash, statusLabel, timeAgo,
} from "@/lib/utils";

const CodeEditor = lazy(() => import("@/components/code-editor"));

function EditorFallback({ height }: { height: number }) {
  return <Skeleton style={{ height }} className="w-full" />;
}

/** What init and queue mean, for the title of where they are shown. */
const PLATFORM_TIMES_HINT = "init: starting the function's environment (a cold start), part of the duration; queue: time in the platform before a worker took the call.";
const DEFAULT_INPUT = '{\n  "name": "Clowdy"\n}';
const IS_MAC = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
const MOD = IS_MAC ? "⌘" : "Ctrl";

function Kbd({ children }: { children: ReactNode }) {
  return <kbd className="bg-muted text-foreground rounded border px-1 py-px font-mono text-[11px]">{children}</kbd>;
}

// Keyed by the function's id: moving from one function to another starts from a clean page state.
export default function FunctionDetail() {
  const { id = "" } = useParams();
  return <FunctionPage key={id} id={id} />;
}

function FunctionPage({ id }: { id: string }) {
  const [params] = useSearchParams();
  const fnState = useApi(() => api.fn(id), [id]);
  const projectId = fnState.data?.project_id ?? "";
  const project = useApi(() => (projectId ? api.project(projectId) : Promise.resolve(null)), [projectId]);
  const versions = useApi(() => api.versions(id), [id]);
  const [code, setCode] = useState<string | null>(null);
  const [restored, setRestored] = useState<{ stale: boolean } | null>(null);
  const [saving, setSaving] = useState(false);
  const savingRef = useRef(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [picked, setPicked] = useState<number | null>(null);
  const [wholeVersion, setWholeVersion] = useState<{ version: number; code?: string; error?: unknown } | null>(null);
  const [rollingBack, setRollingBack] = useState(false);
  const [testInput, setTestInput] = useState(DEFAULT_INPUT);
  const [invokedAt, setInvokedAt] = useState(0); // bumped after a test run, to refresh the log
  const runRef = useRef<(() => void) | null>(null);
  const saveRef = useRef<() => void>(() => {});
  const leaving = useRef(false); // set when the page itself navigates away (after a delete)
  const proceeding = useRef(false); // the user chose to discard and leave
  const toast = useToast();
  const navigate = useNavigate();
  const fn = fnState.data;
  useTitle(fn?.name ?? (fnState.error ? "Function not found" : "Function"));

  // The first time the function arrives: take up an unsaved draft left by a remount (the assistant's
  // refresh, a reload) instead of the saved code, and say so.
  useEffect(() => {
    if (!fn || code !== null) return;
    const draft = loadDraft(fn.id);
    if (draft && draft.code !== fn.code) {
      setCode(draft.code);
      setRestored({ stale: draft.base !== fn.code });
    } else {
      setCode(fn.code);
    }
  }, [fn, code]);
  const unsaved = !!fn && code !== null && code !== fn.code;
  useEffect(() => {
    if (fn && code !== null) storeDraft(fn.id, { code, base: fn.code });
  }, [fn, code]);
  useEffect(() => {
    if (!unsaved) return;
    const warn = (e: BeforeUnloadEvent) => { e.preventDefault(); };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [unsaved]);
  // In-app navigation (sidebar, links, back button) asks first while the code has unsaved edits.
  const blocker = useBlocker(({ currentLocation, nextLocation }) =>
    unsaved && !leaving.current && currentLocation.pathname !== nextLocation.pathname);
  // Ctrl/Cmd+S anywhere on the page saves the code (the editors handle it themselves when focused).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "s") {
        e.preventDefault();
        saveRef.current();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // A version whose code the list cut (a long list keeps a prefix of older versions) is fetched whole
  const [wholeTry, setWholeTry] = useState(0);
  const cutVersion = picked !== null && picked !== fnState.data?.active_version
    && versions.data?.find((v) => v.version === picked)?.list_truncated?.includes("code") ? picked : null;
  useEffect(() => {
    if (cutVersion === null) return;
    let live = true;
    setWholeVersion(null);
    api.version(id, cutVersion)
      .then((v) => { if (live) setWholeVersion({ version: v.version, code: v.code }); })
      .catch((error: unknown) => { if (live) setWholeVersion({ version: cutVersion, error }); });
    return () => { live = false; };
  }, [id, cutVersion, wholeTry]);

  if (fnState.loading && !fn) return <PageSkeleton rows={8} />;
  if (fnState.error && !fn) {
    const missing = fnState.error instanceof ApiError && fnState.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Function not found" : "Function"} />
        <ErrorAlert error={fnState.error} title={missing ? "This function does not exist or was deleted" : "Could not load the function"} onRetry={missing ? undefined : () => void fnState.reload()}>
          <Button asChild size="sm" variant="outline" className="text-foreground"><Link to="/functions"><ArrowLeft /> Back to functions</Link></Button>
        </ErrorAlert>
      </>
    );
  }
  if (!fn) return null;

  const current = code ?? fn.code;
  const dirty = current !== fn.code;

  async function save() {
    if (!fn || !dirty || savingRef.current) return;
    savingRef.current = true;
    setSaving(true);
    setSaveError(null);
    try {
      const updated = await api.updateFunction(fn.id, { code: current });
      fnState.setData(updated);
      setCode(updated.code);
      setPicked(null);
      setRestored(null);
      toast(`Saved as version ${updated.active_version}`);
      void versions.reload();
    } catch (e) {
      setSaveError(e);
    } finally {
      savingRef.current = false;
      setSaving(false);
    }
  }
  saveRef.current = () => void save();

  async function rollback(v: number) {
    if (!fn) return;
    setRollingBack(true);
    setSaveError(null);
    try {
      const updated = await api.rollback(fn.id, v);
      fnState.setData(updated);
      setCode(updated.code);
      setPicked(null);
      setRestored(null);
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
      storeDraft(fn.id, null);
      leaving.current = true;
      toast(`Function "${fn.name}" deleted`);
      navigate(fn.project_id ? `/projects/${fn.project_id}` : "/functions");
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  function discard() {
    if (!fn) return;
    setCode(fn.code);
    setRestored(null);
    storeDraft(fn.id, null);
  }

  const pickedVersion = picked !== null ? versions.data?.find((v) => v.version === picked) : undefined;
  // A long list holds only a prefix of older versions' code: show the whole one once fetched
  const pickedCode = !pickedVersion ? undefined
    : !pickedVersion.list_truncated?.includes("code") ? pickedVersion.code
    : wholeVersion?.version === pickedVersion.version ? wholeVersion.code : undefined;
  const pickedError = pickedVersion && wholeVersion?.version === pickedVersion.version ? wholeVersion.error : undefined;

  return (
    <>
      <PageHeader
        title={<span className="flex items-center gap-2">{fn.name} <Badge variant="outline" data-testid="active-version">v{fn.active_version}</Badge> <StatusBadge status={fn.status} /></span>}
        description={<>{fn.description || "Python function"}{fn.project_id && <> · in <Link className="underline" to={`/projects/${fn.project_id}`}>{project.data?.name ?? "its project"}</Link></>}<LayerNote fn={fn} /></>}
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

      {/* Cancel, Escape and a click outside all close the dialog: they stay; only "Discard" goes on. */}
      <AlertDialog open={blocker.state === "blocked"} onOpenChange={(open) => { if (!open && blocker.state === "blocked" && !proceeding.current) blocker.reset(); }}>
        <AlertDialogContent data-testid="unsaved-dialog">
          <AlertDialogHeader>
            <AlertDialogTitle>Leave without saving?</AlertDialogTitle>
            <AlertDialogDescription>The code of “{fn.name}” has changes that are not saved. Leaving the page discards them.</AlertDialogDescription>
          </AlertDialogHeader>
          <AlertDialogFooter>
            <AlertDialogCancel>Stay on this page</AlertDialogCancel>
            <AlertDialogAction onClick={() => { proceeding.current = true; storeDraft(fn.id, null); blocker.proceed?.(); }}>Discard changes</AlertDialogAction>
          </AlertDialogFooter>
        </AlertDialogContent>
      </AlertDialog>

      <div className="grid grid-cols-1 gap-6 xl:grid-cols-[minmax(0,1fr)_26rem]">
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
              <Button onClick={() => void save()} disabled={!dirty || saving} data-testid="save-code" title={`Save (${MOD}+S)`}>
                {saving ? <Spinner /> : <Save />} {saving ? "Saving…" : "Save"}
              </Button>
            </div>
          </CardHeader>
          <CardContent className="flex flex-col gap-2">
            {restored && dirty && (
              <Alert data-testid="draft-restored">
                <History />
                <AlertTitle>Your unsaved changes were kept</AlertTitle>
                <AlertDescription>
                  <p>The page reloaded while the code had unsaved edits; they are back in the editor.{restored.stale ? ` The saved code changed meanwhile (now version ${fn.active_version}).` : ""}</p>
                  <div className="mt-2"><Button size="sm" variant="outline" className="text-foreground" onClick={discard}>Discard my changes</Button></div>
                </AlertDescription>
              </Alert>
            )}
            {pickedVersion && picked !== fn.active_version ? (
              <>
                <p className="text-muted-foreground flex items-center gap-1 text-sm"><History className="size-4" /> Viewing version {pickedVersion.version} from {formatDate(pickedVersion.created_at)} (read-only)</p>
                {pickedError ? <ErrorAlert error={pickedError} title={`Could not load version ${pickedVersion.version}`} onRetry={() => setWholeTry((n) => n + 1)} />
                  : pickedCode === undefined ? <EditorFallback height={420} /> : <Suspense fallback={<EditorFallback height={420} />}>
                  <CodeEditor key={`v${pickedVersion.version}`} value={pickedCode} onChange={() => {}} language="python" readOnly height={420} ariaLabel={`Code of version ${pickedVersion.version} (read-only)`} />
                </Suspense>}
              </>
            ) : (
              <Suspense fallback={<EditorFallback height={420} />}>
                <CodeEditor value={current} onChange={setCode} language="python" height={420} testId="code-editor" ariaLabel="Function code" onSave={() => saveRef.current()} onRun={() => runRef.current?.()} />
              </Suspense>
            )}
            <p className="text-muted-foreground text-xs" data-testid="code-status">
              {dirty ? "Unsaved changes — Save creates a new version." : `Version ${fn.active_version} is live.`} Define <code>handler(input)</code> or <code>handler(event, context)</code>; <code>print()</code> goes to the logs.
            </p>
            <p className="text-muted-foreground text-xs" data-testid="editor-keys">
              <Kbd>{MOD}+S</Kbd> saves · <Kbd>{MOD}+Enter</Kbd> runs the test · <Kbd>Tab</Kbd> indents; to leave the editor with the keyboard, press <Kbd>{IS_MAC ? "Ctrl+Shift+M" : "Ctrl+M"}</Kbd> so that <Kbd>Tab</Kbd> moves the focus on.</p>
            <ErrorAlert error={saveError} title="Could not save" />
          </CardContent>
        </Card>

        <TestPanel fn={fn} dirty={dirty} input={testInput} setInput={setTestInput} runRef={runRef} onSaveCode={() => saveRef.current()} onInvoked={() => setInvokedAt(Date.now())} />
      </div>

      <div className="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-2">
        <InvokeInfo fn={fn} input={testInput} />
        <SettingsCard fn={fn} onSaved={(f) => fnState.setData(f)} />
      </div>

      <div className="mt-6 grid grid-cols-1 gap-6 empty:hidden lg:grid-cols-2">
        <SchedulesCard functionId={fn.id} />
        <FailedEventsCard functionId={fn.id} refreshKey={invokedAt} onRedriven={() => setInvokedAt(Date.now())} />
      </div>

      <InvocationLog functionId={fn.id} invokedAt={invokedAt} openId={params.get("invocation")} />
    </>
  );
}

/** Which dependency layer the function runs with (servers with layers send layer_hash, null when
 *  its project has no packages). */
function LayerNote({ fn }: { fn: Fn }) {
  if (fn.layer_hash === undefined) return null;
  const deps = fn.project_id ? `/projects/${fn.project_id}?tab=dependencies` : null;
  return (
    <> · <span data-testid="fn-layer" data-layer={fn.layer_hash ?? ""}>
      {fn.layer_hash
        ? <>runs with layer {deps ? <Link className="underline" to={deps}><code title={fn.layer_hash}>{shortHash(fn.layer_hash)}</code></Link> : <code title={fn.layer_hash}>{shortHash(fn.layer_hash)}</code>}</>
        : "no dependency layer"}
    </span></>
  );
}

function TestPanel({ fn, dirty, input, setInput, runRef, onSaveCode, onInvoked }: {
  fn: Fn; dirty: boolean; input: string; setInput: (v: string) => void;
  runRef: MutableRefObject<(() => void) | null>; onSaveCode: () => void; onInvoked: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [elapsed, setElapsed] = useState(0);
  const [result, setResult] = useState<InvokeResult | null>(null);
  const [logs, setLogs] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [events, setEvents] = useState<TestEvent[]>(() => loadTestEvents(fn.id));
  const [eventName, setEventName] = useState("");
  const [naming, setNaming] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const toast = useToast();

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
    if (parseError || busy) return;
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
  runRef.current = () => void run();

  function saveEvent() {
    const name = eventName.trim();
    if (!name) return;
    const list = saveTestEvent(fn.id, { name, json: input });
    if (!list) { toast("The browser refused to store the event (storage full or disabled).", "error"); return; }
    setEvents(list);
    setNaming(false);
    toast(`Test event "${name}" saved`);
  }

  function pickEvent(name: string) {
    const e = events.find((x) => x.name === name);
    if (!e) return;
    setInput(e.json);
    setEventName(e.name);
  }

  const chosen = events.find((e) => e.name === eventName && e.json === input);
  const statusText = result ? (result.success ? "success" : result.timeout ? "timed out" : "error") : "";

  return (
    <Card className="min-w-0 gap-3" data-testid="test-panel">
      <CardHeader>
        <CardTitle>Test</CardTitle>
        <CardDescription>Runs the live version (v{fn.active_version}){dirty ? " — save first to test your edits" : ""}.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <div className="flex flex-wrap items-end gap-2">
          <div className="grid min-w-0 flex-1 gap-1.5">
            <Label htmlFor="saved-events">Saved test events</Label>
            <NativeSelect id="saved-events" data-testid="saved-events" value={chosen?.name ?? ""} onChange={(e) => pickEvent(e.target.value)} disabled={events.length === 0}>
              <option value="">{events.length === 0 ? "None saved yet" : "Choose an event…"}</option>
              {events.map((e) => <option key={e.name} value={e.name}>{e.name}</option>)}
            </NativeSelect>
          </div>
          {!naming && <Button type="button" variant="outline" onClick={() => { setNaming(true); if (!chosen) setEventName(""); }} disabled={!!parseError} data-testid="save-event"><BookmarkPlus /> Save event</Button>}
          {chosen && !naming && (
            <Button type="button" variant="outline" size="icon" aria-label={`Delete saved event ${chosen.name}`} onClick={() => { setEvents(deleteTestEvent(fn.id, chosen.name)); setEventName(""); }}><Trash2 /></Button>
          )}
        </div>
        {naming && (
          <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); saveEvent(); }}>
            <div className="grid min-w-0 flex-1 gap-1.5">
              <Label htmlFor="event-name">Event name</Label>
              <Input id="event-name" autoFocus value={eventName} maxLength={80} onChange={(e) => setEventName(e.target.value)} placeholder="e.g. two numbers" />
            </div>
            <Button type="submit" disabled={!eventName.trim()} data-testid="save-event-confirm">Save</Button>
            <Button type="button" variant="ghost" onClick={() => setNaming(false)}>Cancel</Button>
          </form>
        )}
        <p className="text-muted-foreground -mt-1 text-xs">Saved events are kept in this browser only.</p>
        <Label>Input (JSON)</Label>
        <Suspense fallback={<EditorFallback height={140} />}>
          <CodeEditor value={input} onChange={setInput} language="json" height={140} testId="test-input" ariaLabel="Test input JSON" onSave={onSaveCode} onRun={() => void run()} />
        </Suspense>
        {parseError && <p className="text-destructive text-xs">Input is not valid JSON: {parseError}</p>}
        <div className="flex gap-2">
          <Button onClick={() => void run()} disabled={busy || !!parseError} data-testid="run-test" title={`Run (${MOD}+Enter)`}>
            {busy ? <Spinner /> : <Play />} {busy ? `Running… ${elapsed}s` : "Run"}
          </Button>
          {busy && <Button variant="outline" onClick={() => abort.current?.abort()}><Square /> Stop waiting</Button>}
        </div>
        <ErrorAlert error={error} title="Invocation failed" />
        {result && (
          <div className="flex flex-col gap-2" data-testid="test-result">
            <div className="flex flex-wrap items-center gap-2 text-sm">
              <Badge variant={result.success ? "success" : result.timeout ? "warning" : "destructive"} data-testid="test-status">{statusText}</Badge>
              <span data-testid="test-duration">{formatDuration(result.duration_ms)}</span>
              {platformTimes(result) && <span className="text-muted-foreground text-xs" data-testid="test-timings" title={PLATFORM_TIMES_HINT}>{platformTimes(result)}</span>}
              {result.cold_start !== undefined && <Badge variant="outline" data-testid="test-start">{result.cold_start ? "cold start" : "warm"}</Badge>}
            </div>
            <Label>{result.success ? "Output" : "Error"}</Label>
            <pre tabIndex={0} data-testid="test-output" className={cn("bg-muted max-h-64 overflow-auto rounded-md p-2 font-mono text-xs whitespace-pre-wrap break-words", !result.success && "text-destructive")}>
              {result.success ? prettyJson(result.output ?? null) : String(result.error ?? "Unknown error")}
            </pre>
            <Label>Logs</Label>
            <pre tabIndex={0} data-testid="test-logs" className="bg-muted max-h-48 overflow-auto rounded-md p-2 font-mono text-xs whitespace-pre-wrap break-words">{logs ? logs : <span className="text-muted-foreground">(no output)</span>}</pre>
          </div>
        )}
      </CardContent>
    </Card>
  );
}

function InvokeInfo({ fn, input }: { fn: Fn; input: string }) {
  const origin = currentOrigin();
  let body: unknown = {};
  let fromTest = true;
  try { body = input.trim() ? JSON.parse(input) : {}; } catch { fromTest = false; }
  return (
    <Card>
      <CardHeader><CardTitle>Invoke</CardTitle><CardDescription>Call this function over HTTP.</CardDescription></CardHeader>
      <CardContent className="flex flex-col gap-3">
        <CopyField value={invokeUrl(origin, fn.id)} testId="invoke-url" label="Copy URL" />
        <Label>curl</Label>
        <CopyField value={curlExample(origin, fn.id, body, getToken())} testId="curl-example" label="Copy curl" wrap="words" />
        <p className="text-muted-foreground text-xs">{fromTest ? "Built from the test input above." : "The test input is not valid JSON, so this sends {}."}</p>
      </CardContent>
    </Card>
  );
}

function SettingsCard({ fn, onSaved }: { fn: Fn; onSaved: (f: Fn) => void }) {
  const [enabled, setEnabled] = useState(fn.status !== "disabled");
  const [network, setNetwork] = useState(fn.network_enabled);
  const [timeout, setTimeoutS] = useState(String(fn.timeout_seconds));
  const [memory, setMemory] = useState(String(fn.memory_mb));
  // Async retries: only on servers that send max_retries
  const hasRetries = typeof fn.max_retries === "number";
  const [retries, setRetries] = useState(String(fn.max_retries ?? ""));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  const changed = enabled !== (fn.status !== "disabled") || network !== fn.network_enabled || Number(timeout) !== fn.timeout_seconds || Number(memory) !== fn.memory_mb
    || (hasRetries && Number(retries) !== fn.max_retries);

  async function save() {
    setBusy(true);
    setError(null);
    try {
      const body: Parameters<typeof api.updateFunction>[1] = { status: enabled ? "active" : "disabled", network_enabled: network, timeout_seconds: Number(timeout), memory_mb: Number(memory) };
      if (hasRetries && Number(retries) !== fn.max_retries) body.max_retries = retries.trim() === "" ? NaN : Number(retries);
      const f = await api.updateFunction(fn.id, body);
      onSaved(f);
      setEnabled(f.status !== "disabled"); setNetwork(f.network_enabled); setTimeoutS(String(f.timeout_seconds)); setMemory(String(f.memory_mb));
      if (typeof f.max_retries === "number") setRetries(String(f.max_retries));
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
            {hasRetries && (
              <div className="col-span-2 grid gap-2">
                <Label htmlFor="fn-retries">Async retries</Label>
                <Input id="fn-retries" type="number" min={0} max={10} value={retries} onChange={(e) => setRetries(e.target.value)} aria-describedby="fn-retries-hint" className="w-28" />
                <p id="fn-retries-hint" className="text-muted-foreground text-xs">How many times a failed async or scheduled call is tried again (0 to 10), with growing waits; then it is kept as a failed event.</p>
              </div>
            )}
          </div>
          <ErrorAlert error={error} title="Could not save settings" />
          <div><Button type="submit" disabled={busy || !changed}>{busy ? "Saving…" : "Save settings"}</Button></div>
        </form>
      </CardContent>
    </Card>
  );
}

const PAGE = 50;
const MAX_ROWS = 500; // the server's largest ?limit=
const POLL_MS = 5000;
const KNOWN_SOURCES = ["direct", "gateway", "agent"];

/** The invocation log: filters by status and source, live updates, more rows on demand.
 *  The server's list takes only ?limit= (newest first, up to 500): "Load more" asks for a longer
 *  list, and the status and source filters apply in the browser to the rows loaded. */
function InvocationLog({ functionId, invokedAt, openId }: { functionId: string; invokedAt: number; openId: string | null }) {
  const [limit, setLimit] = useState(PAGE);
  const [status, setStatus] = useState("all");
  const [source, setSource] = useState("all");
  const [live, setLive] = useState(true);
  const list = useApi(() => api.invocations(functionId, limit), [functionId, limit]);
  const { reload } = list;

  useEffect(() => { if (invokedAt) void reload({ quiet: true }); }, [invokedAt, reload]);
  useEffect(() => {
    if (!live) return;
    const h = setInterval(() => { if (document.visibilityState === "visible") void reload({ quiet: true }); }, POLL_MS);
    return () => clearInterval(h);
  }, [live, reload]);

  const rows = list.data;
  const sources = [...new Set([...KNOWN_SOURCES, ...(rows ?? []).map((r) => r.source ?? "").filter(Boolean)])];
  const shown = rows?.filter((r) => (status === "all" || r.status === status) && (source === "all" || (r.source ?? "") === source));
  const more = !!rows && rows.length >= limit && limit < MAX_ROWS;

  return (
    <Card className="mt-6" data-testid="invocation-log">
      <CardHeader className="flex flex-col gap-3 sm:flex-row sm:items-start sm:justify-between">
        <div>
          <CardTitle>Invocations</CardTitle>
          <CardDescription>Newest first; open a row for its input, output, error and logs.</CardDescription>
        </div>
        <div className="flex flex-wrap items-end gap-2">
          <div className="grid gap-1">
            <Label htmlFor="log-status" className="text-xs">Status</Label>
            <NativeSelect id="log-status" data-testid="log-status" value={status} onChange={(e) => setStatus(e.target.value)} className="w-32">
              <option value="all">All</option>
              <option value="success">Success</option>
              <option value="error">Error</option>
              <option value="timeout">Timed out</option>
              <option value="lost">Lost (platform)</option>
              {(rows ?? []).some((r) => r.status === "queued" || r.status === "running") && <>
                <option value="queued">Queued</option>
                <option value="running">Running</option>
              </>}
            </NativeSelect>
          </div>
          <div className="grid gap-1">
            <Label htmlFor="log-source" className="text-xs">Source</Label>
            <NativeSelect id="log-source" data-testid="log-source" value={source} onChange={(e) => setSource(e.target.value)} className="w-32">
              <option value="all">All</option>
              {sources.map((s) => <option key={s} value={s}>{s}</option>)}
            </NativeSelect>
          </div>
          <Label className="h-9 gap-2 font-normal">
            <Switch checked={live} onCheckedChange={setLive} aria-label="Live updates" data-testid="log-live" /> Live
          </Label>
          <Button size="sm" variant="outline" className="h-9" onClick={() => void reload()} disabled={list.loading}>{list.loading ? <Spinner /> : <RotateCw />} Refresh</Button>
        </div>
      </CardHeader>
      <CardContent className="px-2 sm:px-5">
        {list.error != null && !rows ? (
          <ErrorAlert error={list.error} title="Could not load invocations" onRetry={() => void reload()} />
        ) : !rows || !shown ? (
          <ListSkeleton rows={4} />
        ) : rows.length === 0 ? (
          <EmptyState title="No invocations yet">Run the function from the test panel.</EmptyState>
        ) : (
          <>
            {shown.length === 0 ? (
              <EmptyState title="No invocation matches the filters">
                <Button size="sm" variant="outline" onClick={() => { setStatus("all"); setSource("all"); }}>Clear filters</Button>
              </EmptyState>
            ) : (
              <InvocationTable rows={shown} openId={openId} />
            )}
            <div className="text-muted-foreground mt-3 flex flex-wrap items-center justify-between gap-2 px-2 text-xs">
              <span data-testid="log-count">
                {shown.length === rows.length ? `${rows.length} invocation${rows.length === 1 ? "" : "s"}` : `${shown.length} of ${rows.length} loaded invocations match`}
                {live ? " · updates every 5 s" : ""}
              </span>
              {more ? (
                <Button size="sm" variant="outline" onClick={() => setLimit((n) => Math.min(MAX_ROWS, n + PAGE))} disabled={list.loading} data-testid="log-more">
                  {list.loading ? <Spinner /> : null} Load {Math.min(PAGE, MAX_ROWS - limit)} more
                </Button>
              ) : rows.length >= MAX_ROWS ? <span>The newest {MAX_ROWS} are shown (the most the server lists).</span> : null}
            </div>
          </>
        )}
      </CardContent>
    </Card>
  );
}

export function InvocationTable({ rows, openId }: { rows: Invocation[]; openId: string | null }) {
  const [open, setOpen] = useState<string | null>(openId);
  return (
    <Table data-testid="invocation-table">
      <TableHeader>
        <TableRow>
          <TableHead className="w-8"><span className="sr-only">Details</span></TableHead>
          <TableHead>Status</TableHead>
          <TableHead>Time</TableHead>
          <TableHead className="text-right">Duration</TableHead>
          <TableHead className="hidden sm:table-cell">Start</TableHead>
          <TableHead className="hidden md:table-cell text-right">Memory</TableHead>
          <TableHead className="hidden md:table-cell">Source</TableHead>
          <TableHead className="hidden lg:table-cell">Message</TableHead>
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

/** An async call not finished yet: no duration, no output, no failure to show. */
function unfinished(r: Invocation): boolean {
  return r.status === "queued" || r.status === "running";
}

function failureText(r: Invocation): string {
  if (unfinished(r)) return "";
  return r.error || (r.status !== "success" ? r.output ?? "" : "") || (isPlatformFailure(r.status) ? "The worker running this call was lost; the call may have run." : "");
}

/** Which try of an async call this record is, when it is a retry: "attempt 2". */
function attemptText(r: Invocation): string {
  return typeof r.attempt === "number" && r.attempt > 1 ? `attempt ${r.attempt}` : "";
}

function InvocationRow({ r: listed, open, onToggle }: { r: Invocation; open: boolean; onToggle: () => void }) {
  // The list cuts long fields (list_truncated): an opened row fetches its record whole
  const [whole, setWhole] = useState<Invocation | null>(null);
  const cut = (listed.list_truncated ?? []).length > 0;
  useEffect(() => {
    if (!open || !cut || whole) return;
    let live = true;
    api.invocation(listed.function_id, listed.id).then((w) => { if (live) setWhole(w); }).catch(() => undefined);
    return () => { live = false; };
  }, [open, cut, whole, listed.function_id, listed.id]);
  const r = whole ?? listed;
  const detailsId = `inv-${r.id}`;
  const failure = failureText(r);
  const stamp = formatTimestamp(r.created_at);
  const [day, time] = stamp.includes(" ") ? stamp.split(" ") : ["", stamp];
  return (
    <>
      <TableRow className="cursor-pointer" onClick={onToggle} data-testid="invocation-row" data-status={r.status} data-source={r.source ?? ""}>
        <TableCell className="w-8 px-1">
          <Button
            variant="ghost" size="icon" className="size-7"
            aria-expanded={open} aria-controls={open ? detailsId : undefined}
            aria-label={`${open ? "Hide" : "Show"} details of the ${statusLabel(r.status)} invocation at ${stamp}`}
            onClick={(e) => { e.stopPropagation(); onToggle(); }}
            data-testid="invocation-toggle"
          >
            {open ? <ChevronDown /> : <ChevronRight />}
          </Button>
        </TableCell>
        <TableCell><StatusBadge status={r.status} /></TableCell>
        <TableCell className="whitespace-normal tabular-nums" title={timeAgo(r.created_at)}>
          <time dateTime={r.created_at}><span className="block sm:inline">{day}</span> <span>{time}</span></time>
        </TableCell>
        <TableCell className="text-right tabular-nums" title={platformTimes(r) ? `${platformTimes(r)}. ${PLATFORM_TIMES_HINT}` : undefined}>{unfinished(r) ? "—" : formatDuration(r.duration_ms, r.duration_us)}</TableCell>
        <TableCell className="hidden sm:table-cell">{r.cold_start === undefined ? "—" : r.cold_start ? <Badge variant="outline">cold</Badge> : <span className="text-muted-foreground">warm</span>}</TableCell>
        <TableCell className="hidden md:table-cell text-right tabular-nums">{formatMemoryKb(r.peak_memory_kb)}</TableCell>
        <TableCell className="hidden md:table-cell">{r.source ?? "—"}{r.http_method ? <span className="text-muted-foreground"> {r.http_method} {r.http_path ?? ""}</span> : null}{attemptText(r) ? <span className="text-muted-foreground" data-testid="invocation-attempt"> · {attemptText(r)}</span> : null}</TableCell>
        <TableCell className={cn("hidden max-w-72 truncate lg:table-cell", failure && "text-destructive")} title={failure || undefined}>{failure ? firstLine(failure) : ""}</TableCell>
      </TableRow>
      {open && (
        <TableRow className="hover:bg-transparent">
          <TableCell colSpan={8} className="whitespace-normal" id={detailsId}>
            <div className="flex flex-col gap-3" data-testid="invocation-details">
              {isPlatformFailure(r.status) && (
                <p className="text-sm" data-testid="platform-failure"><span className="font-medium">Platform failure, not the function's error:</span> the worker host running this call went away. The outcome is unknown: the function may have run, so check for its effects before calling it again.</p>
              )}
              {failure && <Detail label={r.status === "timeout" ? "Timed out" : isPlatformFailure(r.status) ? "Platform error" : "Error"} text={failure} tone="error" testId="invocation-error" cut={!r.error && r.output_truncated ? "output" : false} />}
              <div className="grid grid-cols-1 gap-3 md:grid-cols-3">
                <Detail label="Input" text={prettyJson(r.input)} cut={r.input_truncated} />
                <Detail label="Output" text={r.status === "success" ? prettyJson(r.output) : ""} empty={r.status === "success" ? "(empty)" : unfinished(r) ? "(none yet: the call has not finished)" : "(none: the call failed)"} cut={r.status === "success" && r.output_truncated} />
                <Detail label="Logs" text={r.logs ?? ""} cut={r.logs_truncated} />
              </div>
            </div>
            <p className="text-muted-foreground mt-2 text-xs break-words" data-testid="invocation-summary">
              {statusLabel(r.status)} · {unfinished(r) ? "not finished" : formatDuration(r.duration_ms, r.duration_us)}
              {platformTimes(r) ? <span data-testid="invocation-timings" title={PLATFORM_TIMES_HINT}> ({platformTimes(r)})</span> : null} · {r.cold_start ? "cold start" : "warm"}
              {r.peak_memory_kb ? ` · peak memory ${formatMemoryKb(r.peak_memory_kb)}` : ""}
              {r.version ? ` · version ${r.version}` : ""}
              {attemptText(r) ? ` · ${attemptText(r)}` : ""}{r.parent_invocation_id && r.parent_invocation_id !== r.id ? ` of ${r.parent_invocation_id}` : ""} · {stamp} ({timeAgo(r.created_at)}) · id {r.id}
            </p>
          </TableCell>
        </TableRow>
      )}
    </>
  );
}
