// Functions: every function with its project, status, version and last invocation.
import { Link } from "react-router";
import { Plus } from "lucide-react";
import { api, type Fn, type Invocation, type Project } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { EmptyState, ErrorAlert, Loading, PageHeader, StatusBadge } from "@/components/common";
import { formatMs, timeAgo } from "@/lib/utils";

interface Row { fn: Fn; project?: Project; last?: Invocation }

async function load(): Promise<Row[]> {
  const [fns, projects] = await Promise.all([api.functions(), api.projects().catch(() => [] as Project[])]);
  const lasts = await Promise.all(fns.map((f) => api.invocations(f.id, 1).then((l) => l[0]).catch(() => undefined)));
  return fns.map((fn, i) => ({ fn, project: projects.find((p) => p.id === fn.project_id), last: lasts[i] }));
}

export default function Functions() {
  const { data, error, loading } = useApi(load, []);
  return (
    <>
      <PageHeader title="Functions" description="Python handlers, each with its own sandbox and limits." actions={<Button asChild><Link to="/functions/new"><Plus /> New function</Link></Button>} />
      {error != null && <ErrorAlert error={error} title="Could not load functions" />}
      {loading && !data && <Loading />}
      {data && data.length === 0 && <EmptyState title="No functions yet"><Button asChild size="sm"><Link to="/functions/new"><Plus /> Create a function</Link></Button></EmptyState>}
      {data && data.length > 0 && (
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
              {data.map(({ fn, project, last }) => (
                <TableRow key={fn.id} data-testid="function-row">
                  <TableCell className="max-w-40 truncate"><Link to={`/functions/${fn.id}`} className="font-medium hover:underline">{fn.name}</Link></TableCell>
                  <TableCell className="text-muted-foreground hidden md:table-cell">{project ? <Link to={`/projects/${project.id}`} className="hover:underline">{project.name}</Link> : "—"}</TableCell>
                  <TableCell><StatusBadge status={fn.status} /></TableCell>
                  <TableCell className="hidden sm:table-cell">v{fn.active_version}</TableCell>
                  <TableCell className="text-muted-foreground">
                    {last ? <span className="flex items-center gap-2"><StatusBadge status={last.status} /> {timeAgo(last.created_at)} · {formatMs(last.duration_ms)}</span> : "never"}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </Card>
      )}
    </>
  );
}
