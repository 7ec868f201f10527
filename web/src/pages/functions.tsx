// Functions: every function with its project, status, version and last invocation. The list shows as
// soon as the functions and projects arrive; each row's last invocation fills in after, so one slow
// function never holds the page back.
import { Link } from "react-router";
import { Plus } from "lucide-react";
import { api, type Invocation, type Project } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { EmptyState, ErrorAlert, ListSkeleton, PageHeader, StatusBadge, useTitle } from "@/components/common";
import { formatDuration, formatTimestamp, timeAgo } from "@/lib/utils";

async function loadList() {
  const [fns, projects] = await Promise.all([api.functions(), api.projects().catch(() => [] as Project[])]);
  return { fns, projects };
}

export default function Functions() {
  useTitle("Functions");
  const { data, error, loading, reload } = useApi(loadList, []);
  const ids = (data?.fns ?? []).map((f) => f.id).join(",");
  const lasts = useApi(async () => {
    const fns = data?.fns ?? [];
    const l = await Promise.all(fns.map((f) => api.invocations(f.id, 1).then((x) => x[0]).catch(() => undefined)));
    return new Map<string, Invocation | undefined>(fns.map((f, i) => [f.id, l[i]]));
  }, [ids]);
  return (
    <>
      <PageHeader title="Functions" description="Python handlers, each with its own sandbox and limits." actions={<Button asChild><Link to="/functions/new"><Plus /> New function</Link></Button>} />
      {error != null && <ErrorAlert error={error} title="Could not load functions" onRetry={() => void reload()} />}
      {loading && !data && <Card className="px-4 py-2"><ListSkeleton rows={5} /></Card>}
      {data && data.fns.length === 0 && <EmptyState title="No functions yet"><Button asChild size="sm"><Link to="/functions/new"><Plus /> Create a function</Link></Button></EmptyState>}
      {data && data.fns.length > 0 && (
        <Card className="py-2">
          <Table>
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead className="hidden md:table-cell">Project</TableHead>
                <TableHead>Status</TableHead>
                <TableHead className="hidden sm:table-cell">Version</TableHead>
                <TableHead>Last invocation</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {data.fns.map((fn) => {
                const project = data.projects.find((p) => p.id === fn.project_id);
                const last = lasts.data?.get(fn.id);
                return (
                  <TableRow key={fn.id} data-testid="function-row">
                    <TableCell className="max-w-32 truncate sm:max-w-60"><Link to={`/functions/${fn.id}`} className="font-medium hover:underline">{fn.name}</Link></TableCell>
                    <TableCell className="text-muted-foreground hidden md:table-cell">{project ? <Link to={`/projects/${project.id}`} className="hover:underline">{project.name}</Link> : "—"}</TableCell>
                    <TableCell><StatusBadge status={fn.status} /></TableCell>
                    <TableCell className="hidden sm:table-cell">v{fn.active_version}</TableCell>
                    <TableCell className="text-muted-foreground whitespace-normal">
                      {!lasts.data?.has(fn.id) ? <Skeleton className="h-5 w-24" /> : last ? (
                        <span className="flex flex-wrap items-center gap-x-2 gap-y-1">
                          <StatusBadge status={last.status} />
                          <time dateTime={last.created_at} title={formatTimestamp(last.created_at)}>{timeAgo(last.created_at)}</time>
                          <span className="hidden sm:inline">· {formatDuration(last.duration_ms, last.duration_us)}</span>
                        </span>
                      ) : "never"}
                    </TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        </Card>
      )}
    </>
  );
}
