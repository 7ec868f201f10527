// Project detail: tabs for functions, routes (with the full gateway URL to copy and a way to call
// them), env vars (secrets write-only), dependencies (components/dependencies-tab.tsx: the layer's
// build status, live log, size and active hash), the project's database (provision, masked URL, snippet, remove), and settings
// (rename, delete with confirmation).
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { Eye, EyeOff, Lock, Pencil, Play, Plus, Trash2 } from "lucide-react";
import { api, ApiError, type EnvVar, type Fn, type Project, type Route } from "@/lib/api";
import { useApi, useGatewayOrigin } from "@/lib/hooks";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import {
  AlertDialog, AlertDialogAction, AlertDialogCancel, AlertDialogContent, AlertDialogDescription,
  AlertDialogFooter, AlertDialogHeader, AlertDialogTitle, AlertDialogTrigger,
} from "@/components/ui/alert-dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/select";
import { Switch } from "@/components/ui/switch";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { Textarea } from "@/components/ui/textarea";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { CopyField, EmptyState, ErrorAlert, ListSkeleton, NotAvailable, PageHeader, PageSkeleton, StatusBadge, useTitle } from "@/components/common";
import { DependenciesTab } from "@/components/dependencies-tab";
import { useToast } from "@/components/toaster";
import { Spinner } from "@/components/ui/skeleton";
import { currentOrigin, curlForRoute, gatewayUrl, ROUTE_METHODS, timeAgo } from "@/lib/utils";

const TABS = ["functions", "routes", "env", "dependencies", "database", "settings"] as const;

export default function ProjectDetail() {
  const { id = "" } = useParams();
  const origin = useGatewayOrigin();
  const [params, setParams] = useSearchParams();
  const tab = TABS.includes(params.get("tab") as (typeof TABS)[number]) ? params.get("tab")! : "functions";
  const project = useApi(() => api.project(id), [id]);
  const functions = useApi(() => api.projectFunctions(id), [id]);
  useTitle(project.data?.name ?? (project.error ? "Project not found" : "Project"));

  if (project.loading && !project.data) return <PageSkeleton rows={5} />;
  if (project.error && !project.data) {
    const missing = project.error instanceof ApiError && project.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Project not found" : "Project"} />
        <ErrorAlert error={project.error} title={missing ? "This project does not exist or was deleted" : "Could not load the project"} onRetry={missing ? undefined : () => void project.reload()}>
          <Button asChild size="sm" variant="outline" className="text-foreground"><Link to="/projects">Back to projects</Link></Button>
        </ErrorAlert>
      </>
    );
  }
  const p = project.data;
  if (!p) return null;

  return (
    <>
      <PageHeader
        title={p.name}
        description={<span className="font-mono text-xs">{gatewayUrl(origin, p.slug, "/")}</span>}
        actions={<Button asChild><Link to={`/functions/new?project=${p.id}`}><Plus /> New function</Link></Button>}
      />
      <Tabs value={tab} onValueChange={(v) => setParams({ tab: v }, { replace: true })}>
        <TabsList>
          <TabsTrigger value="functions">Functions</TabsTrigger>
          <TabsTrigger value="routes">Routes</TabsTrigger>
          <TabsTrigger value="env">Env vars</TabsTrigger>
          <TabsTrigger value="dependencies">Dependencies</TabsTrigger>
          <TabsTrigger value="database">Database</TabsTrigger>
          <TabsTrigger value="settings">Settings</TabsTrigger>
        </TabsList>
        <TabsContent value="functions"><FunctionsTab project={p} fns={functions.data} error={functions.error} onRetry={() => void functions.reload()} /></TabsContent>
        <TabsContent value="routes"><RoutesTab project={p} fns={functions.data ?? []} /></TabsContent>
        <TabsContent value="env"><EnvTab project={p} /></TabsContent>
        <TabsContent value="dependencies"><DependenciesTab project={p} /></TabsContent>
        <TabsContent value="database"><DatabaseTab project={p} /></TabsContent>
        <TabsContent value="settings"><SettingsTab project={p} onSaved={(np) => project.setData(np)} /></TabsContent>
      </Tabs>
    </>
  );
}

function FunctionsTab({ project, fns, error, onRetry }: { project: Project; fns?: Fn[]; error: unknown; onRetry: () => void }) {
  if (error) return <ErrorAlert error={error} title="Could not load functions" onRetry={onRetry} />;
  if (!fns) return <ListSkeleton />;
  if (fns.length === 0)
    return (
      <EmptyState title="No functions in this project">
        <Button asChild size="sm"><Link to={`/functions/new?project=${project.id}`}><Plus /> Create a function</Link></Button>
      </EmptyState>
    );
  return (
    <Card className="py-2">
      <Table>
        <TableHeader><TableRow><TableHead>Name</TableHead><TableHead>Status</TableHead><TableHead>Version</TableHead><TableHead className="hidden sm:table-cell">Updated</TableHead></TableRow></TableHeader>
        <TableBody>
          {fns.map((f) => (
            <TableRow key={f.id}>
              <TableCell><Link className="font-medium hover:underline" to={`/functions/${f.id}`}>{f.name}</Link></TableCell>
              <TableCell><StatusBadge status={f.status} /></TableCell>
              <TableCell>v{f.active_version}</TableCell>
              <TableCell className="text-muted-foreground hidden sm:table-cell">{timeAgo(f.updated_at)}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </Card>
  );
}

// ---------------------------------------------------------------- routes
interface RouteDraft { id?: string; function_id: string; method: string; path: string; description: string }

function RouteDialog({ project, fns, draft, onClose, onSaved }: {
  project: Project; fns: Fn[]; draft: RouteDraft | null; onClose: () => void; onSaved: () => void;
}) {
  const [d, setD] = useState<RouteDraft | null>(draft);
  const origin = useGatewayOrigin();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();
  useEffect(() => { setD(draft); setError(null); }, [draft]);
  if (!d) return null;

  async function save() {
    if (!d) return;
    setBusy(true);
    setError(null);
    try {
      const body = { function_id: d.function_id, method: d.method, path: d.path.trim(), description: d.description };
      if (d.id) await api.updateRoute(project.id, d.id, body);
      else await api.createRoute(project.id, body);
      toast(d.id ? "Route updated" : "Route added");
      onSaved();
      onClose();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog open={!!draft} onOpenChange={(o) => { if (!o) onClose(); }}>
      <DialogContent>
        <form className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); void save(); }}>
          <DialogHeader>
            <DialogTitle>{d.id ? "Edit route" : "Add route"}</DialogTitle>
            <DialogDescription>Paths may hold <code>:name</code> segments and a final <code>*rest</code>.</DialogDescription>
          </DialogHeader>
          <div className="grid gap-3 sm:grid-cols-[8rem_1fr]">
            <div className="grid gap-2">
              <Label htmlFor="route-method">Method</Label>
              <NativeSelect id="route-method" value={d.method} onChange={(e) => setD({ ...d, method: e.target.value })}>
                {ROUTE_METHODS.map((m) => <option key={m} value={m}>{m}</option>)}
              </NativeSelect>
            </div>
            <div className="grid gap-2">
              <Label htmlFor="route-path">Path</Label>
              <Input id="route-path" value={d.path} onChange={(e) => setD({ ...d, path: e.target.value })} placeholder="/users/:id" required />
            </div>
          </div>
          <div className="grid gap-2">
            <Label htmlFor="route-function">Function</Label>
            <NativeSelect id="route-function" value={d.function_id} onChange={(e) => setD({ ...d, function_id: e.target.value })} required>
              <option value="" disabled>Choose a function</option>
              {fns.map((f) => <option key={f.id} value={f.id}>{f.name}</option>)}
            </NativeSelect>
          </div>
          <div className="grid gap-2">
            <Label htmlFor="route-description">Description (optional)</Label>
            <Input id="route-description" value={d.description} onChange={(e) => setD({ ...d, description: e.target.value })} />
          </div>
          <p className="text-muted-foreground break-all font-mono text-xs">{gatewayUrl(origin, project.slug, d.path || "/")}</p>
          <ErrorAlert error={error} title="Could not save the route" />
          <DialogFooter><Button type="submit" disabled={busy || !d.function_id || !d.path.trim()}>{busy ? "Saving…" : "Save route"}</Button></DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

interface TryResult { status: number; body: string; ms: number }

function RouteTry({ url, method }: { url: string; method: string }) {
  const [busy, setBusy] = useState(false);
  const [res, setRes] = useState<TryResult | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [target, setTarget] = useState(url.replace(/\/:([A-Za-z0-9_]+)/g, "/example-$1").replace(/\/\*[A-Za-z0-9_]*$/, ""));
  const m = method === "ANY" ? "GET" : method;

  async function call() {
    setBusy(true);
    setErr(null);
    const t0 = performance.now();
    try {
      const withBody = m === "POST" || m === "PUT" || m === "PATCH";
      const r = await fetch(target, { method: m, headers: withBody ? { "Content-Type": "application/json" } : {}, body: withBody ? "{}" : undefined });
      const text = await r.text();
      setRes({ status: r.status, body: text, ms: Math.round(performance.now() - t0) });
    } catch {
      setErr("The request did not reach the server.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="mt-2 flex flex-col gap-2">
      <div className="flex flex-col gap-2 sm:flex-row">
        <Input aria-label="Request URL" data-testid="route-call-url" value={target} onChange={(e) => setTarget(e.target.value)} className="font-mono text-xs" />
        <Button type="button" size="sm" variant="secondary" onClick={() => void call()} disabled={busy} data-testid="route-call">
          {busy ? <Spinner /> : <Play />} Send {m}
        </Button>
      </div>
      {err && <p className="text-destructive text-sm">{err}</p>}
      {res && (
        <div className="bg-muted rounded-md p-2 text-xs" data-testid="route-response">
          <div className="mb-1 flex gap-2"><Badge variant={res.status < 400 ? "success" : "destructive"}>HTTP {res.status}</Badge><span className="text-muted-foreground">{res.ms} ms</span></div>
          <pre tabIndex={0} className="max-h-48 overflow-auto whitespace-pre-wrap break-all font-mono">{res.body}</pre>
        </div>
      )}
    </div>
  );
}

function RoutesTab({ project, fns }: { project: Project; fns: Fn[] }) {
  const routes = useApi(() => api.routes(project.id), [project.id]);
  const origin = useGatewayOrigin();
  const [draft, setDraft] = useState<RouteDraft | null>(null);
  const [trying, setTrying] = useState<string | null>(null);
  const toast = useToast();
  const fname = (id: string) => fns.find((f) => f.id === id)?.name ?? id;

  async function remove(r: Route) {
    try {
      await api.deleteRoute(project.id, r.id);
      toast("Route deleted");
      void routes.reload();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <p className="text-muted-foreground text-sm">Routes map HTTP requests on this project's gateway to functions.</p>
        <Button onClick={() => setDraft({ function_id: fns[0]?.id ?? "", method: "GET", path: "/", description: "" })} disabled={fns.length === 0}>
          <Plus /> Add route
        </Button>
      </div>
      {fns.length === 0 && <Alert variant="info"><AlertDescription>Create a function in this project first; routes point to functions.</AlertDescription></Alert>}
      {routes.error != null && <ErrorAlert error={routes.error} title="Could not load routes" onRetry={() => void routes.reload()} />}
      {routes.loading && !routes.data && <ListSkeleton />}
      {routes.data && routes.data.length === 0 && <EmptyState title="No routes yet" />}
      {routes.data && routes.data.length > 0 && (
        <div className="flex flex-col gap-3">
          {routes.data.map((r) => {
            const url = gatewayUrl(origin, project.slug, r.path);
            return (
              <Card key={r.id} className="gap-2 py-4" data-testid="route-row">
                <CardContent className="flex flex-col gap-2">
                  <div className="flex flex-wrap items-center gap-2">
                    <Badge variant="outline" className="font-mono">{r.method}</Badge>
                    <span className="font-mono text-sm">{r.path}</span>
                    <span className="text-muted-foreground text-sm">→ <Link className="hover:underline" to={`/functions/${r.function_id}`}>{fname(r.function_id)}</Link></span>
                    <div className="ml-auto flex gap-1">
                      <Button size="sm" variant="ghost" onClick={() => setTrying(trying === r.id ? null : r.id)}><Play /> <span className="hidden sm:inline">Try</span></Button>
                      <Button size="sm" variant="ghost" aria-label="Edit route" onClick={() => setDraft({ id: r.id, function_id: r.function_id, method: r.method, path: r.path, description: r.description ?? "" })}><Pencil /></Button>
                      <ConfirmDelete what={`route ${r.method} ${r.path}`} onConfirm={() => remove(r)} />
                    </div>
                  </div>
                  {r.description && <p className="text-muted-foreground text-sm">{r.description}</p>}
                  <CopyField value={url} testId="route-url" label="Copy URL" />
                  <details className="text-xs"><summary className="text-muted-foreground cursor-pointer">curl example</summary><CopyField value={curlForRoute(url, r.method)} label="Copy" /></details>
                  {/* Try fetches from this page: the console's own origin, which serves the gateway too
                      (the functions' host is another origin the page may not fetch from) */}
                  {trying === r.id && <RouteTry url={gatewayUrl(currentOrigin(), project.slug, r.path)} method={r.method} />}
                </CardContent>
              </Card>
            );
          })}
        </div>
      )}
      <RouteDialog project={project} fns={fns} draft={draft} onClose={() => setDraft(null)} onSaved={() => void routes.reload()} />
    </div>
  );
}

function ConfirmDelete({ what, onConfirm, label }: { what: string; onConfirm: () => void; label?: string }) {
  return (
    <AlertDialog>
      <AlertDialogTrigger asChild>
        <Button size="sm" variant="ghost" aria-label={`Delete ${what}`}><Trash2 className="text-destructive" />{label}</Button>
      </AlertDialogTrigger>
      <AlertDialogContent>
        <AlertDialogHeader>
          <AlertDialogTitle>Delete {what}?</AlertDialogTitle>
          <AlertDialogDescription>This cannot be undone.</AlertDialogDescription>
        </AlertDialogHeader>
        <AlertDialogFooter>
          <AlertDialogCancel>Cancel</AlertDialogCancel>
          <AlertDialogAction onClick={onConfirm}>Delete</AlertDialogAction>
        </AlertDialogFooter>
      </AlertDialogContent>
    </AlertDialog>
  );
}

// ---------------------------------------------------------------- env vars
const MASK = "••••••••";

function EnvValue({ v }: { v: EnvVar }) {
  // A secret is write-only: the server never sends its value back (API.md), so there is
  // nothing to reveal. Say so where the original UI had a Reveal button.
  if (v.is_secret)
    return (
      <div className="flex min-w-0 items-center gap-2">
        <code className="bg-muted min-w-0 truncate rounded px-1.5 py-0.5 font-mono text-xs" data-testid="env-value">{MASK}</code>
        <span className="text-muted-foreground text-xs" data-testid="env-write-only"
              title="Secrets are write-only: the server never sends a secret's value back. Save a new value to change it.">
          write-only
        </span>
      </div>
    );
  return (
    <div className="flex min-w-0 items-center gap-1">
      <code className="bg-muted min-w-0 truncate rounded px-1.5 py-0.5 font-mono text-xs" data-testid="env-value">{v.value}</code>
    </div>
  );
}

function EnvTab({ project }: { project: Project }) {
  const env = useApi(() => api.env(project.id), [project.id]);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [secret, setSecret] = useState(true);
  const [showValue, setShowValue] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const toast = useToast();

  async function save() {
    setBusy(true);
    setError(null);
    try {
      await api.setEnv(project.id, { key: key.trim(), value, is_secret: secret });
      toast(`Saved ${key.trim()}`);
      setKey(""); setValue(""); setShowValue(false);
      void env.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  async function remove(k: string) {
    try {
      await api.deleteEnv(project.id, k);
      toast(`Deleted ${k}`);
      void env.reload();
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  return (
    <div className="flex flex-col gap-4">
      <Card>
        <CardHeader>
          <CardTitle>Add or update a variable</CardTitle>
          <CardDescription>Functions in this project read these from <code>os.environ</code>. Saving an existing key replaces its value.</CardDescription>
        </CardHeader>
        <CardContent>
          <form className="grid gap-3 md:grid-cols-[1fr_1fr_auto_auto] md:items-end" onSubmit={(e) => { e.preventDefault(); void save(); }}>
            <div className="grid gap-2">
              <Label htmlFor="env-key">Key</Label>
              <Input id="env-key" value={key} onChange={(e) => setKey(e.target.value)} placeholder="API_KEY" className="font-mono" required />
            </div>
            <div className="grid gap-2">
              <Label htmlFor="env-value">Value</Label>
              <div className="flex gap-1">
                <Input id="env-value" type={secret && !showValue ? "password" : "text"} autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} className="font-mono" />
                {secret && <Button type="button" size="icon" variant="ghost" aria-label={showValue ? "Hide value" : "Show value"} onClick={() => setShowValue((s) => !s)}>{showValue ? <EyeOff /> : <Eye />}</Button>}
              </div>
            </div>
            <Label className="h-9"><Switch checked={secret} onCheckedChange={setSecret} aria-label="Secret" /> Secret</Label>
            <Button type="submit" disabled={busy || !key.trim()}>{busy ? "Saving…" : "Save"}</Button>
          </form>
          <ErrorAlert error={error} className="mt-3" title="Could not save the variable" />
        </CardContent>
      </Card>
      {env.error != null && <ErrorAlert error={env.error} title="Could not load env vars" onRetry={() => void env.reload()} />}
      {env.loading && !env.data && <ListSkeleton />}
      {env.data && env.data.length === 0 && <EmptyState title="No env vars yet" />}
      {env.data && env.data.length > 0 && (
        <Card className="py-2">
          <Table>
            <TableHeader><TableRow><TableHead>Key</TableHead><TableHead>Value</TableHead><TableHead className="hidden sm:table-cell">Updated</TableHead><TableHead /></TableRow></TableHeader>
            <TableBody>
              {env.data.map((v) => (
                <TableRow key={v.key} data-testid="env-row">
                  <TableCell className="font-mono text-xs">{v.is_secret && <Lock className="mr-1 inline size-3" />}{v.key}</TableCell>
                  <TableCell className="max-w-48 sm:max-w-md"><EnvValue v={v} /></TableCell>
                  <TableCell className="text-muted-foreground hidden sm:table-cell">{timeAgo(v.updated_at)}</TableCell>
                  <TableCell className="text-right">
                    <Button size="sm" variant="ghost" aria-label={`Edit ${v.key}`} onClick={() => { setKey(v.key); setSecret(v.is_secret); setValue(v.is_secret ? "" : v.value); }}><Pencil /></Button>
                    <ConfirmDelete what={v.key} onConfirm={() => void remove(v.key)} />
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
      )}
    </div>
  );
}

// ---------------------------------------------------------------- database
// How a function uses the project's database, by provider (DATABASE_URL is in os.environ)
function databaseSnippet(provider: string | null | undefined): string {
  if (provider === "sqlite") {
    return [
      "import os, sqlite3",
      "",
      "def handler(event, context):",
      "    # DATABASE_URL is sqlite:////opt/database/db.sqlite3",
      '    db = sqlite3.connect(os.environ["DATABASE_URL"][len("sqlite:///"):], timeout=10)',
      '    db.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)")',
      '    db.execute("INSERT INTO notes VALUES (?)", (event.get("body", "hello"),))',
      "    db.commit()",
      '    rows = [r[0] for r in db.execute("SELECT body FROM notes")]',
      "    db.close()",
      '    return {"notes": rows}',
    ].join("\n");
  }
  return [
    "import os, psycopg2",
    "",
    "def handler(event, context):",
    '    conn = psycopg2.connect(os.environ["DATABASE_URL"])',
    "    with conn, conn.cursor() as cur:",
    '        cur.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text)")',
    '        cur.execute("INSERT INTO notes (body) VALUES (%s)", (event.get("body", "hello"),))',
    '        cur.execute("SELECT body FROM notes ORDER BY id")',
    "        rows = [r[0] for r in cur.fetchall()]",
    "    conn.close()",
    '    return {"notes": rows}',
  ].join("\n");
}

const DB_POLL_MS = 1500;

function DatabaseTab({ project }: { project: Project }) {
  const db = useApi(() => api.database(project.id), [project.id]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [confirmOpen, setConfirmOpen] = useState(false);
  const toast = useToast();
  const status = db.data?.status ?? null;
  const pending = status === "provisioning" || status === "deprovisioning";
  const reload = db.reload;

  // Provisioning answers at once: poll until the database is ready (or failed, or gone)
  useEffect(() => {
    if (!pending) return;
    const timer = window.setInterval(() => { void reload({ quiet: true }); }, DB_POLL_MS);
    return () => window.clearInterval(timer);
  }, [pending, reload]);

  if (db.loading && !db.data) return <ListSkeleton />;
  if (db.error && !db.data) return <NotAvailable error={db.error} what="Database" />;
  const d = db.data!;

  async function act(fn: () => Promise<unknown>, done: string) {
    setBusy(true);
    setError(null);
    try { await fn(); await db.reload(); toast(done); } catch (e) { setError(e); } finally { setBusy(false); }
  }

  return (
    <Card data-testid="database-tab">
      <CardHeader>
        <CardTitle>Database</CardTitle>
        <CardDescription>Every function of this project sees its connection string as <code>DATABASE_URL</code> in <code>os.environ</code>.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        {status === "provisioning" && (
          <p className="flex items-center gap-2 text-sm" data-testid="database-provisioning"><Spinner /> Provisioning the database…</p>
        )}
        {status === "deprovisioning" && (
          <p className="flex items-center gap-2 text-sm" data-testid="database-deprovisioning"><Spinner /> Removing the database…</p>
        )}
        {status === "failed" && (
          <Alert variant="destructive" data-testid="database-failed">
            <AlertTitle>The database could not be created</AlertTitle>
            <AlertDescription><p>{d.error || "No reason was given."}</p></AlertDescription>
          </Alert>
        )}
        {d.has_database ? (
          <>
            <p className="flex items-center gap-2 text-sm">
              {d.provider && <>Provider: <Badge variant="outline" data-testid="database-provider">{d.provider}</Badge></>}
              {d.neon_project_id && <>Neon project: <code>{d.neon_project_id}</code></>}
            </p>
            {d.database_url && (
              <div className="grid gap-1">
                <Label>Connection string (password hidden; functions get it in full)</Label>
                <CopyField value={d.database_url} testId="database-url" label="Copy connection string" />
              </div>
            )}
            <div className="grid gap-1">
              <Label>Use it from a function</Label>
              <pre data-testid="database-snippet" className="bg-muted overflow-auto rounded-md p-3 font-mono text-xs">{databaseSnippet(d.provider)}</pre>
            </div>
            <div>
              <AlertDialog open={confirmOpen} onOpenChange={setConfirmOpen}>
                <AlertDialogTrigger asChild>
                  <Button variant="destructive" disabled={busy}>{busy && <Spinner />} Remove database</Button>
                </AlertDialogTrigger>
                <AlertDialogContent>
                  <AlertDialogHeader>
                    <AlertDialogTitle>Remove this project's database?</AlertDialogTitle>
                    <AlertDialogDescription>
                      Its data is deleted for good and functions lose <code>DATABASE_URL</code>. This cannot be undone.
                    </AlertDialogDescription>
                  </AlertDialogHeader>
                  <AlertDialogFooter>
                    <AlertDialogCancel>Cancel</AlertDialogCancel>
                    <AlertDialogAction
                      data-testid="database-deprovision-confirm"
                      onClick={() => { setConfirmOpen(false); void act(() => api.deprovisionDatabase(project.id), "Database removal started"); }}
                    >Remove database</AlertDialogAction>
                  </AlertDialogFooter>
                </AlertDialogContent>
              </AlertDialog>
            </div>
          </>
        ) : !pending && (
          <div className="flex flex-col items-start gap-2">
            <p className="text-muted-foreground text-sm">This project has no database yet.</p>
            <Button disabled={busy} onClick={() => void act(() => api.provisionDatabase(project.id), "Database provisioning started")}>
              {busy && <Spinner />} {status === "failed" ? "Try again" : "Create database"}
            </Button>
          </div>
        )}
        {error != null && <NotAvailable error={error} what="Database" />}
      </CardContent>
    </Card>
  );
}

// ---------------------------------------------------------------- settings
function SettingsTab({ project, onSaved }: { project: Project; onSaved: (p: Project) => void }) {
  const [name, setName] = useState(project.name);
  const [description, setDescription] = useState(project.description ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState("");
  const [deleting, setDeleting] = useState(false);
  const [deleteOpen, setDeleteOpen] = useState(false);
  const navigate = useNavigate();
  const toast = useToast();

  async function save() {
    setBusy(true);
    setError(null);
    try {
      const p = await api.updateProject(project.id, { name: name.trim(), description });
      onSaved(p);
      toast("Project saved");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  async function remove() {
    setDeleting(true);
    try {
      await api.deleteProject(project.id);
      toast(`Project "${project.name}" deleted`);
      navigate("/projects");
    } catch (e) {
      setError(e);
      setDeleteOpen(false);
    } finally {
      setDeleting(false);
    }
  }

  return (
    <div className="flex flex-col gap-4">
      <Card>
        <CardHeader><CardTitle>General</CardTitle></CardHeader>
        <CardContent>
          <form className="flex flex-col gap-3" onSubmit={(e) => { e.preventDefault(); void save(); }}>
            <div className="grid gap-2"><Label htmlFor="settings-name">Name</Label><Input id="settings-name" value={name} onChange={(e) => setName(e.target.value)} required /></div>
            <div className="grid gap-2"><Label htmlFor="settings-description">Description</Label><Textarea id="settings-description" value={description} onChange={(e) => setDescription(e.target.value)} /></div>
            <p className="text-muted-foreground text-sm">Slug: <code>{project.slug}</code> (keeps working for existing gateway URLs unless the new name gives a different slug)</p>
            <ErrorAlert error={error} />
            <div><Button type="submit" disabled={busy || !name.trim()}>{busy ? "Saving…" : "Save changes"}</Button></div>
          </form>
        </CardContent>
      </Card>
      <Card className="border-destructive/40">
        <CardHeader>
          <CardTitle className="text-destructive">Delete project</CardTitle>
          <CardDescription>Deletes its functions, versions, routes, env vars, invocation logs and database.</CardDescription>
        </CardHeader>
        <CardContent>
          <Dialog open={deleteOpen} onOpenChange={(o) => { setDeleteOpen(o); setConfirm(""); }}>
            <Button variant="destructive" onClick={() => setDeleteOpen(true)}><Trash2 /> Delete project</Button>
            <DialogContent>
              <DialogHeader>
                <DialogTitle>Delete “{project.name}”?</DialogTitle>
                <DialogDescription>This cannot be undone. Type the project name to confirm.</DialogDescription>
              </DialogHeader>
              <Input aria-label="Project name" value={confirm} onChange={(e) => setConfirm(e.target.value)} placeholder={project.name} />
              <DialogFooter>
                <Button variant="outline" onClick={() => setDeleteOpen(false)}>Cancel</Button>
                <Button variant="destructive" disabled={confirm !== project.name || deleting} onClick={() => void remove()}>{deleting ? "Deleting…" : "Delete forever"}</Button>
              </DialogFooter>
            </DialogContent>
          </Dialog>
        </CardContent>
      </Card>
    </div>
  );
}

export { ConfirmDelete };
export type { RouteDraft };
