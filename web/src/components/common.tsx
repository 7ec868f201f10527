// Shared building blocks for pages: error display, loading, copy button, page header, status badge.
import { useState, type ReactNode } from "react";
import { AlertCircle, Check, Copy } from "lucide-react";
import { ApiError } from "@/lib/api";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Spinner } from "@/components/ui/skeleton";
import { cn } from "@/lib/utils";

export function errorMessage(e: unknown): string {
  if (!e) return "";
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Shows an API error as its detail sentence; 422 field messages as a list. */
export function ErrorAlert({ error, title, className }: { error: unknown; title?: string; className?: string }) {
  if (!error) return null;
  const fields = error instanceof ApiError ? error.fields : [];
  return (
    <Alert variant="destructive" className={className} data-testid="error">
      <AlertCircle />
      <AlertTitle>{title ?? "Something went wrong"}</AlertTitle>
      <AlertDescription>
        {fields.length > 0 ? (
          <ul className="list-disc pl-4">
            {fields.map((f, i) => (
              <li key={i}>{f.field ? <><span className="font-medium">{f.field}</span>: {f.message}</> : f.message}</li>
            ))}
          </ul>
        ) : (
          <p>{errorMessage(error)}</p>
        )}
      </AlertDescription>
    </Alert>
  );
}

export function Loading({ label = "Loading…", className }: { label?: string; className?: string }) {
  return (
    <div className={cn("text-muted-foreground flex items-center gap-2 py-6 text-sm", className)} role="status">
      <Spinner /> {label}
    </div>
  );
}

async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall back below */ }
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  ta.remove();
  return ok;
}

export function CopyButton({ text, label = "Copy", className }: { text: string; label?: string; className?: string }) {
  const [done, setDone] = useState(false);
  return (
    <Button
      type="button"
      variant="outline"
      size="sm"
      className={className}
      aria-label={label}
      onClick={async () => {
        await copyText(text);
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? <Check /> : <Copy />}
      <span className="hidden sm:inline">{done ? "Copied" : label}</span>
    </Button>
  );
}

/** A monospace value with a copy button, wrapping on small screens. */
export function CopyField({ value, testId, label }: { value: string; testId?: string; label?: string }) {
  return (
    <div className="flex items-start gap-2">
      <code data-testid={testId} className="bg-muted min-w-0 flex-1 break-all rounded-md px-2 py-1.5 font-mono text-xs">{value}</code>
      <CopyButton text={value} label={label} />
    </div>
  );
}

export function PageHeader({ title, description, actions }: { title: ReactNode; description?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-6 flex flex-col gap-3 sm:flex-row sm:items-start sm:justify-between">
      <div className="min-w-0">
        <h1 className="truncate text-2xl font-semibold tracking-tight">{title}</h1>
        {description && <p className="text-muted-foreground mt-1 text-sm">{description}</p>}
      </div>
      {actions && <div className="flex shrink-0 flex-wrap gap-2">{actions}</div>}
    </div>
  );
}

export function StatusBadge({ status }: { status?: string | null }) {
  const s = status ?? "unknown";
  const variant = s === "success" || s === "active" || s === "ready" ? "success"
    : s === "error" || s === "failed" ? "destructive"
    : s === "timeout" || s === "building" || s === "pending" ? "warning" : "secondary";
  return <Badge variant={variant}>{s}</Badge>;
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="text-muted-foreground flex flex-col items-center gap-2 rounded-lg border border-dashed px-4 py-10 text-center text-sm">
      <p className="text-foreground font-medium">{title}</p>
      {children}
    </div>
  );
}
