// Create a function: name, project, starter template; it opens in the editor once created.
import { useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { api } from "@/lib/api";
import { useApi } from "@/lib/hooks";
import { TEMPLATES } from "@/lib/templates";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect } from "@/components/ui/select";
import { Textarea } from "@/components/ui/textarea";
import { ErrorAlert, PageHeader, useTitle } from "@/components/common";
import { useToast } from "@/components/toaster";

export default function FunctionNew() {
  const [params] = useSearchParams();
  useTitle("New function");
  const projects = useApi(api.projects, []);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [projectId, setProjectId] = useState(params.get("project") ?? "");
  const [template, setTemplate] = useState(TEMPLATES[0].id);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const navigate = useNavigate();
  const toast = useToast();

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      const code = TEMPLATES.find((t) => t.id === template)?.code ?? TEMPLATES[0].code;
      const fn = await api.createFunction({ name: name.trim(), description: description.trim() || undefined, code, runtime: "python", project_id: projectId || undefined });
      toast(`Function "${fn.name}" created`);
      navigate(`/functions/${fn.id}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <PageHeader title="New function" description="Start from a template; you can edit the code right after." />
      <Card className="max-w-xl">
        <CardContent>
          <form className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
            <div className="grid gap-2">
              <Label htmlFor="fn-name">Name</Label>
              <Input id="fn-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="hello" required autoFocus />
            </div>
            <div className="grid gap-2">
              <Label htmlFor="fn-project">Project</Label>
              <NativeSelect id="fn-project" value={projectId} onChange={(e) => setProjectId(e.target.value)}>
                <option value="">No project</option>
                {(projects.data ?? []).map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
              </NativeSelect>
              {projects.error != null && <ErrorAlert error={projects.error} title="Could not load projects" onRetry={() => void projects.reload()} />}
            </div>
            <div className="grid gap-2">
              <Label htmlFor="fn-template">Template</Label>
              <NativeSelect id="fn-template" value={template} onChange={(e) => setTemplate(e.target.value)}>
                {TEMPLATES.map((t) => <option key={t.id} value={t.id}>{t.label}</option>)}
              </NativeSelect>
              <pre tabIndex={0} className="bg-muted max-h-48 overflow-auto rounded-md p-3 text-xs">{TEMPLATES.find((t) => t.id === template)?.code}</pre>
            </div>
            <div className="grid gap-2">
              <Label htmlFor="fn-description">Description (optional)</Label>
              <Textarea id="fn-description" value={description} onChange={(e) => setDescription(e.target.value)} />
            </div>
            <ErrorAlert error={error} title="Could not create the function" />
            <div><Button type="submit" disabled={busy || !name.trim()}>{busy ? "Creating…" : "Create function"}</Button></div>
          </form>
        </CardContent>
      </Card>
    </>
  );
}
