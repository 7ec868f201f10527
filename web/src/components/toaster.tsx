// A tiny toast system: toast("Saved") from anywhere; messages fade after a few seconds or on their
// close button. They sit where no input is: over the sidebar's empty middle on wide screens (above
// the assistant button), over the top bar on phones, never over the forms at the bottom of a page.
import { createContext, useCallback, useContext, useState, type ReactNode } from "react";
import { CheckCircle2, AlertCircle, X } from "lucide-react";
import { cn } from "@/lib/utils";

interface Toast { id: number; text: string; kind: "success" | "error" }
type ToastFn = (text: string, kind?: "success" | "error") => void;

const ToastContext = createContext<ToastFn>(() => {});

export function Toaster({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback<ToastFn>((text, kind = "success") => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t, { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 7000 : 3500);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div className="pointer-events-none fixed inset-x-2 top-2 z-[100] flex flex-col items-stretch gap-2 md:inset-x-auto md:top-auto md:bottom-32 md:left-2 md:w-52" aria-live="polite" data-testid="toasts">
        {toasts.map((t) => (
          <div
            key={t.id}
            role="status"
            data-testid="toast"
            className={cn(
              "pointer-events-auto flex items-start gap-2 rounded-lg border bg-background px-3 py-2.5 text-sm shadow-lg",
              t.kind === "error" && "border-destructive/40 text-destructive",
            )}
          >
            {t.kind === "error" ? <AlertCircle className="mt-0.5 size-4 shrink-0" /> : <CheckCircle2 className="mt-0.5 size-4 shrink-0 text-success" />}
            <span className="min-w-0 flex-1 break-words">{t.text}</span>
            <button type="button" aria-label="Dismiss" className="text-muted-foreground hover:text-foreground -mr-1 shrink-0 rounded" onClick={() => setToasts((x) => x.filter((y) => y.id !== t.id))}><X className="size-4" /></button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastFn {
  return useContext(ToastContext);
}
