// One field of an opened invocation (input, output, error, logs) and, when the server kept only the
// start of it (input_truncated / output_truncated / logs_truncated: the record stores the first
// --record-max-bytes of each field), a note that says so in words, so a cut JSON or a log that stops
// mid-line is not mistaken for what the function really got or wrote.
import { useId } from "react";
import { cn } from "@/lib/utils";

/** The note for a field the record keeps only the start of. The server does not send the cap
 *  (--record-max-bytes, 64 KiB unless set), so the note does not claim a number. */
export function storedCutNote(field: string): string {
  return `Stored cut: the record keeps only the first part of the ${field}.`;
}

/** A labelled field; `cut` names the field the record cut (true: the label's), and the note
 *  under it also describes the field for screen readers. */
export function Detail({ label, text, empty = "(empty)", tone, testId, cut }: {
  label: string; text: string; empty?: string; tone?: "error"; testId?: string; cut?: boolean | string;
}) {
  const noteId = useId();
  const field = typeof cut === "string" ? cut : label.toLowerCase();
  return (
    <div className="min-w-0">
      <div className="mb-1 text-xs font-medium">{label}</div>
      <pre tabIndex={0} data-testid={testId} aria-describedby={cut ? noteId : undefined} className={cn("bg-muted max-h-72 overflow-auto rounded p-2 font-mono text-xs whitespace-pre-wrap break-words", tone === "error" && "text-destructive")}>{text || <span className="text-muted-foreground">{empty}</span>}</pre>
      {cut ? <p id={noteId} className="text-muted-foreground mt-1 text-xs" data-testid="stored-cut">{storedCutNote(field)}</p> : null}
    </div>
  );
}
