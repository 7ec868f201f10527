// Dashboard: what /api/stats says, shown as soon as that one request answers: totals, success rate,
// p50/p95 and cold-start rate (platform failures apart from errors when the server counts them),
// invocations and errors per day, the cluster's workers (components/cluster-card.tsx, on servers
// with /api/cluster), and the per-function breakdown. Recent
// projects and recent failures load on their own afterwards (failures only for the functions the
// stats say have errors, 20 rows each), so no per-function request holds the page back.
//
// The chart draws a latency line only when the server sends a per-day latency (p50, else the
// average); the current server sends counts and errors per day only, so the chart has bars alone
// and the latency is in the cards above it.
import { Link } from "react-router";
import { Activity, AlertTriangle, CheckCircle2, Gauge, Snowflake, SquareFunction, Timer, TrendingUp } from "lucide-react";
import { Bar, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, type FunctionStats, type Invocation, type Stats } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { ClusterCard } from "@/components/cluster-card";
import { EmptyState, ErrorAlert, ListSkeleton, PageHeader, PageSkeleton, StatusBadge, useTitle } from "@/components/common";
import { firstLine, formatDuration, formatRate, formatTimestamp, timeAgo } from "@/lib/utils";

export interface DayPoint { day: string; invocations: number; errors: number; latency_ms?: number }

/** The chart's points from /api/stats (oldest first); latency only where the server sent one. */
export function chartPoints(s: Stats): { points: DayPoint[]; latency: "p50" | "avg" | null } {
  const days = Array.isArray(s.invocations_per_day) ? s.invocations_per_day : [];
  const latency = days.some((p) => typeof p.p50_duration_ms === "number") ? "p50"
    : days.some((p) => typeof p.avg_duration_ms === "number") ? "avg" : null;
  const points = days.map((p) => {
    const point: DayPoint = {
      day: String(p.date ?? p.day ?? "").slice(5),
      invocations: Number(p.count ?? p.invocations ?? 0) || 0,
      errors: Number(p.errors ?? 0) || 0,
    };
    const ms = latency === "p50" ? p.p50_duration_ms : latency === "avg" ? p.avg_duration_ms : undefined;
    // A day without calls has no latency: leave a gap rather than draw a fake 0.
    if (typeof ms === "number" && point.invocations > 0) point.latency_ms = ms;
    return point;
  });
  return { points, latency };
}

/** Calls lost to the platform (a worker went away), which servers that tell them apart count apart
 *  from the functions' own errors; null from a server that does not. */
export function platformFailures(s: Stats): number | null {
  for (const v of [s.platform_errors, s.lost]) if (typeof v === "number" && isFinite(v)) return v;
  return null;
}

/** A latency from the stats; none yet when nothing ran. */
function latencyText(ms: unknown, total: number): string {
  return total > 0 && typeof ms === "number" ? formatDuration(ms) : "—";
}

type Failure = Invocation & { fname: string };

/** The latest failures, from the functions that have errors (at most 5 functions, 20 rows each); an
 *  async call still queued or running has not failed. */
async function loadFailures(stats: Stats): Promise<Failure[]> {
  if (Array.isArray(stats.recent_failures))
    return stats.recent_failures.map((i) => ({ ...i, fname: stats.functions?.find((f) => f.function_id === i.function_id)?.name ?? i.function_id }));
  const failing = (stats.functions ?? []).filter((f) => f.errors > 0).sort((a, b) => b.errors - a.errors).slice(0, 5);
  const lists = await Promise.all(failing.map((f) => api.invocations(f.function_id, 20)
    .then((l) => l.filter((i) => !["success", "queued", "running"].includes(i.status)).map((i) => ({ ...i, fname: f.name })))
    .catch(() => [] as Failure[])));
  return lists.flat().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))).slice(0, 8);
}

function StatCard({ title, value, icon: Icon, hint, id }: { title: string; value: string; icon: typeof Activity; hint?: string; id: string }) {
  return (
    <Card className="gap-2">
      <CardHeader className="flex flex-row items-center justify-between">
        <CardDescription>{title}</CardDescription>
        <Icon className="text-muted-foreground size-4" aria-hidden />
      </CardHeader>
      <CardContent>
        <div className="text-2xl font-semibold tabular-nums" data-testid={`stat-${id}`}>{value}</div>
        {hint && <p className="text-muted-foreground text-xs">{hint}</p>}
      </CardContent>
    </Card>
  );
}

export default function Dashboard() {
  useTitle("Dashboard");
  const stats = useApi(api.stats, []);
  const projects = useApi(api.projects, []);
  const s = stats.data;
  const failures = useApi(() => (s ? loadFailures(s) : Promise.resolve(null)), [s]);

  if (stats.loading && !s) return <><PageHeader title="Dashboard" description="How your functions are doing." /><PageSkeleton cards={8} rows={6} /></>;
  if (stats.error && !s) return <><PageHeader title="Dashboard" /><ErrorAlert error={stats.error} title="Could not load the dashboard" onRetry={() => void stats.reload()} /></>;
  if (!s) return null;

  const total = Number(s.total_invocations ?? 0) || 0;
  const errors = (s.functions ?? []).reduce((n, f) => n + (Number(f.errors) || 0), 0);
  const { points, latency } = chartPoints(s);
  const nProjects = typeof s.total_projects === "number" ? s.total_projects : projects.data?.length;
  const platform = platformFailures(s);

  return (
    <>
      <PageHeader title="Dashboard" description="How your functions are doing, over every invocation since each was created." />
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <StatCard id="functions" title="Functions" value={String(s.total_functions ?? 0)} icon={SquareFunction} hint={nProjects === undefined ? undefined : `${nProjects} project${nProjects === 1 ? "" : "s"}`} />
        <StatCard id="invocations" title="Invocations" value={String(total)} icon={Activity} hint={total ? `${errors} failed` : "none yet"} />
        <StatCard id="success-rate" title="Success rate" value={formatRate(s.success_rate, total)} icon={CheckCircle2} hint={total ? "timeouts count as failures" : "no invocations yet"} />
        <StatCard id="cold-starts" title="Cold starts" value={formatRate(s.cold_start_rate, total)} icon={Snowflake} hint="of invocations started a sandbox" />
        <StatCard id="p50" title="Median latency (p50)" value={latencyText(s.p50_duration_ms, total)} icon={Timer} />
        <StatCard id="p95" title="p95 latency" value={latencyText(s.p95_duration_ms, total)} icon={TrendingUp} />
        <StatCard id="avg-duration" title="Average duration" value={latencyText(s.avg_duration_ms, total)} icon={Gauge} />
        <StatCard id="errors" title="Failed invocations" value={String(errors)} icon={AlertTriangle} hint={platform === null ? "errors and timeouts" : `errors and timeouts; ${platform} platform failure${platform === 1 ? "" : "s"} (lost) apart`} />
      </div>

      <Card className="mt-6">
        <CardHeader>
          <CardTitle>Invocations per day</CardTitle>
          <CardDescription>
            Last {points.length} days (UTC){latency === "p50" ? ", with the median latency" : latency === "avg" ? ", with the average latency" : ""}
          </CardDescription>
        </CardHeader>
        <CardContent className="h-64 px-2 sm:px-5" data-testid="per-day-chart">
          {points.every((p) => p.invocations === 0) ? (
            <EmptyState title="No invocations in the last 14 days">Invoke a function from its test panel to see activity here.</EmptyState>
          ) : (
            <ResponsiveContainer width="100%" height="100%">
              <ComposedChart data={points} margin={{ left: -10, right: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                <XAxis dataKey="day" fontSize={11} />
                <YAxis yAxisId="n" allowDecimals={false} fontSize={11} />
                {latency && <YAxis yAxisId="ms" orientation="right" fontSize={11} unit="ms" />}
                <Tooltip />
                <Legend />
                <Bar yAxisId="n" dataKey="invocations" name="Invocations" fill="var(--color-primary)" radius={[3, 3, 0, 0]} />
                <Bar yAxisId="n" dataKey="errors" name="Failed" fill="var(--color-destructive)" radius={[3, 3, 0, 0]} />
                {latency && <Line yAxisId="ms" type="monotone" dataKey="latency_ms" name={latency === "p50" ? "p50 latency (ms)" : "Avg latency (ms)"} stroke="var(--color-warning)" strokeWidth={2} dot={false} connectNulls={false} />}
              </ComposedChart>
            </ResponsiveContainer>
          )}
        </CardContent>
      </Card>

      <ClusterCard />

      <Card className="mt-6">
        <CardHeader>
          <CardTitle>Functions</CardTitle>
          <CardDescription>Invocations, failures and median latency per function.</CardDescription>
        </CardHeader>
        <CardContent className="px-2 sm:px-5">
          <FunctionBreakdown rows={s.functions} />
        </CardContent>
      </Card>

      <div className="mt-6 grid grid-cols-1 gap-6 lg:grid-cols-2">
        <Card>
          <CardHeader><CardTitle>Recent failures</CardTitle></CardHeader>
          <CardContent>
            {failures.error != null && !failures.data ? (
              <ErrorAlert error={failures.error} title="Could not load the failures" onRetry={() => void failures.reload()} />
            ) : !failures.data ? (
              <ListSkeleton rows={3} />
            ) : failures.data.length === 0 ? (
              <EmptyState title="No failing invocations" />
            ) : (
              <ul className="divide-y" data-testid="recent-failures">
                {failures.data.map((i) => (
                  <li key={i.id} className="flex flex-col gap-1 py-2 text-sm" data-testid="failure">
                    <div className="flex items-center justify-between gap-2">
                      <Link to={`/functions/${i.function_id}?invocation=${i.id}`} className="truncate font-medium hover:underline">{i.fname}</Link>
                      <span className="flex shrink-0 items-center gap-2">
                        <StatusBadge status={i.status} />
                        <time className="text-muted-foreground text-xs tabular-nums" dateTime={i.created_at} title={timeAgo(i.created_at)}>{formatTimestamp(i.created_at)}</time>
                      </span>
                    </div>
                    <p className="text-destructive font-mono text-xs break-words" title={i.error ?? i.output ?? undefined}>{firstLine(i.error || i.output) || "The function failed"}</p>
                  </li>
                ))}
              </ul>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader><CardTitle>Recent projects</CardTitle></CardHeader>
          <CardContent>
            {projects.error != null && !projects.data ? (
              <ErrorAlert error={projects.error} title="Could not load projects" onRetry={() => void projects.reload()} />
            ) : !projects.data ? (
              <ListSkeleton rows={3} />
            ) : projects.data.length === 0 ? (
              <EmptyState title="No projects yet"><Link className="text-primary underline" to="/projects">Create your first project</Link></EmptyState>
            ) : (
              <ul className="divide-y">
                {projects.data.slice(0, 5).map((p) => (
                  <li key={p.id} className="flex items-center justify-between gap-2 py-2">
                    <Link to={`/projects/${p.id}`} className="truncate font-medium hover:underline">{p.name}</Link>
                    <span className="text-muted-foreground shrink-0 text-xs">{p.function_count ?? 0} function{p.function_count === 1 ? "" : "s"} · {timeAgo(p.created_at)}</span>
                  </li>
                ))}
              </ul>
            )}
          </CardContent>
        </Card>
      </div>
    </>
  );
}

function FunctionBreakdown({ rows }: { rows?: FunctionStats[] }) {
  if (!rows) return <p className="text-muted-foreground text-sm">This server does not send a per-function breakdown.</p>;
  if (rows.length === 0) return <EmptyState title="No functions yet"><Link className="text-primary underline" to="/functions/new">Create a function</Link></EmptyState>;
  return (
    <Table data-testid="function-stats">
      <TableHeader>
        <TableRow>
          <TableHead>Function</TableHead>
          <TableHead className="text-right">Invocations</TableHead>
          <TableHead className="text-right">Failed</TableHead>
          <TableHead className="hidden text-right sm:table-cell">Error rate</TableHead>
          <TableHead className="text-right">p50</TableHead>
        </TableRow>
      </TableHeader>
      <TableBody>
        {rows.map((f) => (
          <TableRow key={f.function_id} data-testid="function-stats-row">
            <TableCell className="max-w-40 truncate sm:max-w-none"><Link to={`/functions/${f.function_id}`} className="font-medium hover:underline">{f.name}</Link></TableCell>
            <TableCell className="text-right tabular-nums">{f.count}</TableCell>
            <TableCell className={f.errors ? "text-destructive text-right tabular-nums" : "text-right tabular-nums"}>{f.errors}</TableCell>
            <TableCell className="hidden text-right tabular-nums sm:table-cell">{f.count ? `${Math.round((f.errors * 100) / f.count)}%` : "—"}</TableCell>
            <TableCell className="text-right tabular-nums">{f.count && typeof f.p50_duration_ms === "number" ? formatDuration(f.p50_duration_ms) : "—"}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

