// Shared building blocks for pages: error display (with Retry), loading skeletons, copy button, page
// header, status badge, and the document title of each page.
import { useEffect, useState, type ReactNode } from "react";
import { AlertCircle, Check, Copy, RotateCw } from "lucide-react";
import { ApiError } from "@/lib/api";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Skeleton, Spinner } from "@/components/ui/skeleton";
import { cn, statusLabel } from "@/lib/utils";

export function errorMessage(e: unknown): string {
  if (!e) return "";
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Shows an API error as its detail sentence; 422 field messages as a list; a Retry button when the
 *  failed thing was a load that can be tried again. */
export function ErrorAlert({ error, title, className, onRetry, children }: { error: unknown; title?: string; className?: string; onRetry?: () => void; children?: ReactNode }) {
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
        {(onRetry || children) && (
          <div className="mt-2 flex flex-wrap gap-2">
            {onRetry && <Button type="button" size="sm" variant="outline" className="text-foreground" onClick={onRetry} data-testid="retry"><RotateCw /> Retry</Button>}
            {children}
          </div>
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

/** A page-shaped placeholder while the first load runs, so the page never shows blank. */
export function PageSkeleton({ rows = 3, cards = 0 }: { rows?: number; cards?: number }) {
  return (
    <div className="flex flex-col gap-6" role="status" aria-label="Loading" data-testid="page-skeleton">
      <div className="flex flex-col gap-2">
        <Skeleton className="h-8 w-56 max-w-full" />
        <Skeleton className="h-4 w-80 max-w-full" />
      </div>
      {cards > 0 && (
        <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
          {Array.from({ length: cards }, (_, i) => <Skeleton key={i} className="h-24" />)}
        </div>
      )}
      <div className="flex flex-col gap-3 rounded-xl border p-5">
        {Array.from({ length: rows }, (_, i) => <Skeleton key={i} className="h-6 w-full" />)}
      </div>
    </div>
  );
}

/** Rows of a table-like list still loading. */
export function ListSkeleton({ rows = 4 }: { rows?: number }) {
  return (
    <div className="flex flex-col gap-2 py-2" role="status" aria-label="Loading">
      {Array.from({ length: rows }, (_, i) => <Skeleton key={i} className="h-8 w-full" />)}
    </div>
  );
}

/** Sets the browser tab's title for the page: "Functions · Clowdy". */
export function useTitle(title?: string | null) {
  useEffect(() => {
    document.title = title ? `${title} · Clowdy` : "Clowdy";
  }, [title]);
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

/** A monospace value with a copy button. A URL may break anywhere; a command (`wrap="words"`) keeps its
 *  line breaks and wraps between words so that it stays readable. */
export function CopyField({ value, testId, label, wrap = "anywhere" }: { value: string; testId?: string; label?: string; wrap?: "anywhere" | "words" }) {
  return (
    <div className="flex items-start gap-2">
      <code data-testid={testId} className={cn("bg-muted min-w-0 flex-1 rounded-md px-2 py-1.5 font-mono text-xs", wrap === "words" ? "whitespace-pre-wrap break-words" : "break-all")}>{value}</code>
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

export function StatusBadge({ status, label }: { status?: string | null; label?: string }) {
  const s = status ?? "unknown";
  // A lost call is the platform's failure, not the function's: outlined, unlike a function's error.
  const variant = s === "success" || s === "active" || s === "ready" ? "success"
    : s === "error" || s === "failed" ? "destructive"
    : s === "timeout" || s === "building" || s === "pending" || s === "queued" || s === "running" || s === "draining" ? "warning"
    : s === "lost" ? "outline" : "secondary";
  return <Badge variant={variant} data-status={s} className={s === "lost" ? "border-destructive text-destructive" : undefined}>{label ?? statusLabel(s)}</Badge>;
}

/** True for an answer that means "this server has no such feature" (an older server, or one built
 *  without it): 404, 405 or 501 on an endpoint of a resource that exists. */
export function isUnsupported(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501);
}

/** A feature's tab on a server that lacks it: the server's sentence (501) or a plain one; any other
 *  error as an error. */
export function NotAvailable({ error, what }: { error: unknown; what: string }) {
  if (isUnsupported(error)) {
    const e = error as ApiError;
    return (
      <Alert variant="info" data-testid="not-available">
        <AlertTitle>{what} — not available yet</AlertTitle>
        <AlertDescription><p>{e.status === 501 ? e.message : "This server does not support it yet."}</p></AlertDescription>
      </Alert>
    );
  }
  return <ErrorAlert error={error} title={`Could not load ${what.toLowerCase()}`} />;
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="text-muted-foreground flex flex-col items-center gap-2 rounded-lg border border-dashed px-4 py-10 text-center text-sm">
      <p className="text-foreground font-medium">{title}</p>
      {children}
    </div>
  );
}
