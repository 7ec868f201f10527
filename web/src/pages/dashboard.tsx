// Dashboard: stats cards from /api/stats, a chart of invocations per day and latency, recent
// projects and recent failing invocations. When the server's stats do not carry per-day numbers
// (only the four required fields), they are computed from the functions' recent invocations.
import { Link } from "react-router";
import { Activity, CheckCircle2, Gauge, SquareFunction } from "lucide-react";
import { Bar, CartesianGrid, ComposedChart, Legend, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, type Fn, type Invocation, type Project, type Stats } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { EmptyState, ErrorAlert, Loading, PageHeader, StatusBadge } from "@/components/common";
import { formatMs, timeAgo } from "@/lib/utils";

export interface DayPoint { day: string; invocations: number; errors: number; avg_ms: number }

/** Buckets invocations per UTC day over the last `days` days (oldest first). */
export function perDay(invs: Invocation[], days = 14, now = new Date()): DayPoint[] {
  const out: DayPoint[] = [];
  const index = new Map<string, { n: number; e: number; ms: number }>();
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - i));
    const key = d.toISOString().slice(0, 10);
    index.set(key, { n: 0, e: 0, ms: 0 });
  }
  for (const inv of invs) {
    const key = String(inv.created_at ?? "").slice(0, 10);
    const b = index.get(key);
    if (!b) continue;
    b.n += 1;
    if (inv.status !== "success") b.e += 1;
    b.ms += Number(inv.duration_ms) || 0;
  }
  for (const [day, b] of index) out.push({ day: day.slice(5), invocations: b.n, errors: b.e, avg_ms: b.n ? Math.round(b.ms / b.n) : 0 });
  return out;
}

function fromStats(s: Stats): DayPoint[] | null {
  if (!Array.isArray(s.invocations_per_day) || s.invocations_per_day.length === 0) return null;
  return s.invocations_per_day.map((p) => ({
    day: String(p.date ?? p.day ?? "").slice(5),
    invocations: Number(p.count ?? p.invocations ?? 0),
    errors: Number(p.errors ?? 0),
    avg_ms: Number(p.avg_duration_ms ?? 0),
  }));
}

interface Overview { stats: Stats; projects: Project[]; functions: Fn[]; invocations: (Invocation & { fname: string })[] }

async function loadOverview(): Promise<Overview> {
  const [stats, projects, functions] = await Promise.all([api.stats(), api.projects(), api.functions()]);
  const some = functions.slice(0, 25);
  const lists = await Promise.all(some.map((f) => api.invocations(f.id, 200).then((l) => l.map((i) => ({ ...i, fname: f.name }))).catch(() => [])));
  const invocations = lists.flat().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  return { stats, projects, functions, invocations };
}

function StatCard({ title, value, icon: Icon, hint }: { title: string; value: string; icon: typeof Activity; hint?: string }) {
  return (
    <Card className="gap-2">
      <CardHeader className="flex flex-row items-center justify-between">
        <CardDescription>{title}</CardDescription>
        <Icon className="text-muted-foreground size-4" />
      </CardHeader>
      <CardContent>
        <div className="text-2xl font-semibold" data-testid={`stat-${title.toLowerCase().replace(/\s+/g, "-")}`}>{value}</div>
        {hint && <p className="text-muted-foreground text-xs">{hint}</p>}
      </CardContent>
    </Card>
  );
}

export default function Dashboard() {
  const { data, error, loading } = useApi(loadOverview, []);
  if (loading && !data) return <><PageHeader title="Dashboard" /><Loading /></>;
  if (error && !data) return <><PageHeader title="Dashboard" /><ErrorAlert error={error} title="Could not load the dashboard" /></>;
  if (!data) return null;
  const { stats, projects, functions, invocations } = data;
  const chart = fromStats(stats) ?? perDay(invocations);
  const failures = (Array.isArray(stats.recent_failures) ? stats.recent_failures.map((i) => ({ ...i, fname: functions.find((f) => f.id === i.function_id)?.name ?? i.function_id }))
    : invocations.filter((i) => i.status !== "success")).slice(0, 8);

  return (
    <>
      <PageHeader title="Dashboard" description="How your functions are doing." />
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <StatCard title="Functions" value={String(stats.total_functions ?? 0)} icon={SquareFunction} hint={`${projects.length} project${projects.length === 1 ? "" : "s"}`} />
        <StatCard title="Invocations" value={String(stats.total_invocations ?? 0)} icon={Activity} />
        <StatCard title="Success rate" value={`${Math.round(Number(stats.success_rate ?? 0))}%`} icon={CheckCircle2} />
        <StatCard title="Avg duration" value={formatMs(Number(stats.avg_duration_ms ?? 0))} icon={Gauge} />
      </div>

      <Card className="mt-6">
        <CardHeader>
          <CardTitle>Invocations per day</CardTitle>
          <CardDescription>Last {chart.length} days, with average latency</CardDescription>
        </CardHeader>
        <CardContent className="h-64 px-2 sm:px-5">
          {chart.every((p) => p.invocations === 0) ? (
            <EmptyState title="No invocations yet">Invoke a function from its test panel to see activity here.</EmptyState>
          ) : (
            <ResponsiveContainer width="100%" height="100%">
              <ComposedChart data={chart} margin={{ left: -10, right: 0 }}>
                <CartesianGrid strokeDasharray="3 3" vertical={false} />
                <XAxis dataKey="day" fontSize={11} />
                <YAxis yAxisId="n" allowDecimals={false} fontSize={11} />
                <YAxis yAxisId="ms" orientation="right" fontSize={11} unit="ms" />
                <Tooltip />
                <Legend />
                <Bar yAxisId="n" dataKey="invocations" name="Invocations" fill="var(--color-primary)" radius={[3, 3, 0, 0]} />
                <Bar yAxisId="n" dataKey="errors" name="Errors" fill="var(--color-destructive)" radius={[3, 3, 0, 0]} />
                <Line yAxisId="ms" type="monotone" dataKey="avg_ms" name="Avg latency (ms)" stroke="var(--color-warning)" strokeWidth={2} dot={false} />
              </ComposedChart>
            </ResponsiveContainer>
          )}
        </CardContent>
      </Card>

      <div className="mt-6 grid gap-6 lg:grid-cols-2">
        <Card>
          <CardHeader><CardTitle>Recent projects</CardTitle></CardHeader>
          <CardContent>
            {projects.length === 0 ? (
              <EmptyState title="No projects yet"><Link className="text-primary underline" to="/projects">Create your first project</Link></EmptyState>
            ) : (
              <ul className="divide-y">
                {projects.slice(0, 5).map((p) => (
                  <li key={p.id} className="flex items-center justify-between gap-2 py-2">
                    <Link to={`/projects/${p.id}`} className="truncate font-medium hover:underline">{p.name}</Link>
                    <span className="text-muted-foreground shrink-0 text-xs">{p.function_count ?? 0} function{p.function_count === 1 ? "" : "s"} · {timeAgo(p.created_at)}</span>
                  </li>
                ))}
              </ul>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader><CardTitle>Recent failures</CardTitle></CardHeader>
          <CardContent>
            {failures.length === 0 ? (
              <EmptyState title="No failing invocations" />
            ) : (
              <ul className="divide-y">
                {failures.map((i) => (
                  <li key={i.id} className="flex items-center justify-between gap-2 py-2 text-sm">
                    <Link to={`/functions/${i.function_id}`} className="truncate hover:underline">{i.fname}</Link>
                    <span className="flex shrink-0 items-center gap-2"><StatusBadge status={i.status} /><span className="text-muted-foreground text-xs">{timeAgo(i.created_at)}</span></span>
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
