// The dashboard's cluster card: the worker hosts from GET /api/cluster, each with its state (ready,
// draining after a planned stop, lost), its capacity and load (memory used of its own budget, cores,
// calls running, warm environments) and how long ago it last answered a heartbeat; the header sums
// the capacity. It refreshes every few seconds while shown. A server without the endpoint
// (404/405/501: an older or a single-process build) gets no card at all.
import { useEffect } from "react";
import { api, type Cluster, type ClusterWorker } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { ErrorAlert, isUnsupported, ListSkeleton, StatusBadge } from "@/components/common";

/** Megabytes as a person reads them: "512 MB", "7.5 GB". */
export function formatMb(mb?: number | null): string {
  if (typeof mb !== "number" || !isFinite(mb) || mb < 0) return "—";
  return mb < 1024 ? `${Math.round(mb)} MB` : `${(mb / 1024).toFixed(1)} GB`;
}

/** How long ago a heartbeat was: "80 ms ago", "3.2 s ago", "4 min ago". The server's
 *  last_heartbeat_ms is read as an age in ms, or as a Unix time in ms when it is one (after 2001). */
export function heartbeatAge(value?: number | null, now: number = Date.now()): string {
  if (typeof value !== "number" || !isFinite(value) || value < 0) return "—";
  const ms = value > 1e12 ? Math.max(0, now - value) : value;
  if (ms < 1000) return `${Math.round(ms)} ms ago`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min ago`;
  return `${Math.round(ms / 3600000)} h ago`;
}

/** The header's one line: "2 workers ready of 3 · 8 cores · 15.5 GB". */
export function clusterSummary(c: Cluster): string {
  const n = c.workers.length;
  const ready = c.workers.filter((w) => w.state === "ready").length;
  const parts = [n === 0 ? "No worker hosts" : `${ready} of ${n} worker${n === 1 ? "" : "s"} ready`];
  const cores = typeof c.cores === "number" ? c.cores : c.workers.reduce((s, w) => s + (w.state !== "lost" ? w.cores ?? 0 : 0), 0);
  const mem = typeof c.memory_mb === "number" ? c.memory_mb : c.workers.reduce((s, w) => s + (w.state !== "lost" ? w.memory_mb ?? 0 : 0), 0);
  if (cores) parts.push(`${cores} core${cores === 1 ? "" : "s"}`);
  if (mem) parts.push(`${formatMb(mem)} memory`);
  return parts.join(" · ");
}

/** What names a worker: its host, its id, or (for users shown no hosts) its place in the list. */
export function workerLabel(w: ClusterWorker, i: number): string {
  return w.host || w.id || `Worker ${(typeof w.index === "number" ? w.index : i) + 1}`;
}

function MemoryUse({ w, label }: { w: ClusterWorker; label: string }) {
  const total = w.memory_mb ?? 0;
  const used = w.memory_used_mb ?? 0;
  if (!total) return <span className="text-muted-foreground">—</span>;
  const pct = Math.max(0, Math.min(100, Math.round((used * 100) / total)));
  return (
    <div className="flex min-w-28 flex-col gap-1">
      <span className="tabular-nums">{formatMb(used)} of {formatMb(total)}</span>
      <div className="bg-muted h-1.5 w-full overflow-hidden rounded" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} aria-label={`Memory in use on ${label}`}>
        <div className="bg-primary h-full" style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

export function ClusterCard({ pollMs = 5000 }: { pollMs?: number }) {
  const cluster = useApi(api.cluster, []);
  const { reload } = cluster;
  const unsupported = !!cluster.error && !cluster.data && isUnsupported(cluster.error);
  useEffect(() => {
    if (unsupported) return;
    const h = setInterval(() => { if (document.visibilityState === "visible") void reload({ quiet: true }); }, pollMs);
    return () => clearInterval(h);
  }, [unsupported, reload, pollMs]);

  if (unsupported) return null;
  const c = cluster.data;
  const workers = Array.isArray(c?.workers) ? c.workers : null;
  return (
    <Card className="mt-6" data-testid="cluster-card">
      <CardHeader>
        <CardTitle>Cluster</CardTitle>
        <CardDescription data-testid="cluster-summary">{c && workers ? clusterSummary({ ...c, workers }) : "Worker hosts and their load."}</CardDescription>
      </CardHeader>
      <CardContent className="px-2 sm:px-5">
        {cluster.error != null && !c ? (
          <ErrorAlert error={cluster.error} title="Could not load the cluster" onRetry={() => void reload()} />
        ) : !c ? (
          <ListSkeleton rows={2} />
        ) : !workers || workers.length === 0 ? (
          <p className="text-muted-foreground px-2 text-sm" data-testid="cluster-empty">No worker hosts are connected: functions run on this server itself.</p>
        ) : (
          <Table data-testid="cluster-workers">
            <TableHeader>
              <TableRow>
                <TableHead>Host</TableHead>
                <TableHead>State</TableHead>
                <TableHead className="hidden sm:table-cell">Memory</TableHead>
                <TableHead className="hidden text-right md:table-cell">Cores</TableHead>
                <TableHead className="text-right">Running</TableHead>
                <TableHead className="hidden text-right md:table-cell">Environments</TableHead>
                <TableHead className="hidden lg:table-cell">Heartbeat</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {workers.map((w, i) => (
                <TableRow key={w.id ?? `#${w.index ?? i}`} data-testid="cluster-worker" data-state={w.state}>
                  <TableCell className="max-w-40 truncate font-mono text-xs sm:max-w-none" title={w.id}>{workerLabel(w, i)}</TableCell>
                  <TableCell>
                    <StatusBadge status={w.state} label={w.state} />
                    {w.why ? <span className="text-muted-foreground mt-0.5 block max-w-56 text-xs whitespace-normal" data-testid="cluster-worker-why">{w.why}</span> : null}
                  </TableCell>
                  <TableCell className="hidden sm:table-cell"><MemoryUse w={w} label={workerLabel(w, i)} /></TableCell>
                  <TableCell className="hidden text-right tabular-nums md:table-cell">{w.cores ?? "—"}</TableCell>
                  <TableCell className="text-right tabular-nums">{w.running ?? "—"}</TableCell>
                  <TableCell className="hidden text-right tabular-nums md:table-cell">{w.environments ?? "—"}</TableCell>
                  <TableCell className="text-muted-foreground hidden tabular-nums lg:table-cell">{heartbeatAge(w.last_heartbeat_ms)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </CardContent>
    </Card>
  );
}
