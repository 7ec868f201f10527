// Projects: the list and a dialog to create one; a new project opens its detail page.
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { FolderPlus } from "lucide-react";
import { api } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { EmptyState, ErrorAlert, PageHeader, useTitle } from "@/components/common";
import { Skeleton } from "@/components/ui/skeleton";
import { useToast } from "@/components/toaster";
import { timeAgo } from "@/lib/utils";

function CreateProject() {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const navigate = useNavigate();
  const toast = useToast();

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      const p = await api.createProject({ name: name.trim(), description: description.trim() || undefined });
      toast(`Project "${p.name}" created`);
      setOpen(false);
      navigate(`/projects/${p.id}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog open={open} onOpenChange={(o) => { setOpen(o); if (o) { setName(""); setDescription(""); setError(null); } }}>
      <DialogTrigger asChild><Button><FolderPlus /> New project</Button></DialogTrigger>
      <DialogContent>
        <form className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
          <DialogHeader>
            <DialogTitle>New project</DialogTitle>
            <DialogDescription>A project groups functions, their routes, env vars and database.</DialogDescription>
          </DialogHeader>
          <div className="grid gap-2">
            <Label htmlFor="project-name">Name</Label>
            <Input id="project-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="My API" autoFocus required maxLength={100} />
          </div>
          <div className="grid gap-2">
            <Label htmlFor="project-description">Description (optional)</Label>
            <Textarea id="project-description" value={description} onChange={(e) => setDescription(e.target.value)} />
          </div>
          <ErrorAlert error={error} title="Could not create the project" />
          <DialogFooter>
            <Button type="submit" disabled={busy || !name.trim()}>{busy ? "Creating…" : "Create project"}</Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

export default function Projects() {
  useTitle("Projects");
  const { data, error, loading, reload } = useApi(api.projects, []);
  return (
    <>
      <PageHeader title="Projects" description="Each project gets its own gateway URL, env vars and database." actions={<CreateProject />} />
      {error != null && <ErrorAlert error={error} title="Could not load projects" onRetry={() => void reload()} />}
      {loading && !data && (
        <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3" role="status" aria-label="Loading">
          {[0, 1, 2].map((i) => <Skeleton key={i} className="h-32" />)}
        </div>
      )}
      {data && data.length === 0 && <EmptyState title="No projects yet">Create one to start deploying functions.</EmptyState>}
      {data && data.length > 0 && (
        <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
          {data.map((p) => (
            <Link key={p.id} to={`/projects/${p.id}`} className="group" data-testid="project-card">
              <Card className="group-hover:border-primary/50 h-full transition-colors">
                <CardHeader>
                  <CardTitle className="truncate">{p.name}</CardTitle>
                  <CardDescription className="truncate font-mono text-xs">/api/gateway/{p.slug}</CardDescription>
                </CardHeader>
                <CardContent className="text-muted-foreground flex flex-col gap-1 text-sm">
                  {p.description && <p className="line-clamp-2">{p.description}</p>}
                  <p>{p.function_count ?? 0} function{p.function_count === 1 ? "" : "s"} · created {timeAgo(p.created_at)}</p>
                </CardContent>
              </Card>
            </Link>
          ))}
        </div>
      )}
    </>
  );
}
