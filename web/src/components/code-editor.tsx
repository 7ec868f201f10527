// CodeEditor: a controlled Monaco editor (python or json). Loaded lazily so Monaco's chunk is only
// fetched on pages that edit code. The model value follows `value` when it changes from outside
// (e.g. after a rollback), without disturbing the cursor while the user types.
//
// Shortcuts are this editor's own: Monaco's addCommand binds a key for every editor on the page and
// the last editor mounted wins, so a page with a code editor and a test-input editor lost Ctrl+S to
// the second one. A keydown handler on each editor instance keeps Ctrl/Cmd+S and Ctrl/Cmd+Enter
// with the editor that has the focus (and stops the browser's "save page" dialog).
import { useEffect, useRef } from "react";
import { monaco } from "@/lib/monaco";
import { cn } from "@/lib/utils";

export interface CodeEditorProps {
  value: string;
  onChange: (v: string) => void;
  language: "python" | "json";
  height?: number | string;
  readOnly?: boolean;
  className?: string;
  testId?: string;
  ariaLabel?: string;
  onSave?: () => void;
  /** Ctrl/Cmd+Enter */
  onRun?: () => void;
}

export default function CodeEditor({ value, onChange, language, height = 360, readOnly, className, testId, ariaLabel, onSave, onRun }: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const onChangeRef = useRef(onChange);
  const onSaveRef = useRef(onSave);
  onChangeRef.current = onChange;
  onSaveRef.current = onSave;
  const onRunRef = useRef(onRun);
  onRunRef.current = onRun;

  useEffect(() => {
    if (!host.current) return;
    const ed = monaco.editor.create(host.current, {
      value,
      language,
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      tabSize: 4,
      insertSpaces: true,
      scrollBeyondLastLine: false,
      readOnly,
      ariaLabel,
      wordWrap: language === "json" ? "on" : "off",
      lineNumbers: language === "json" ? "off" : "on",
      fixedOverflowWidgets: true,
      padding: { top: 8 },
      overviewRulerLanes: 0,
      overviewRulerBorder: false,
      hideCursorInOverviewRuler: true,
    });
    editor.current = ed;
    const sub = ed.onDidChangeModelContent(() => onChangeRef.current(ed.getValue()));
    const keys = ed.onKeyDown((e) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
      if (e.keyCode === monaco.KeyCode.KeyS) {
        e.preventDefault();
        e.stopPropagation();
        onSaveRef.current?.();
      } else if (e.keyCode === monaco.KeyCode.Enter && onRunRef.current) {
        e.preventDefault();
        e.stopPropagation();
        onRunRef.current();
      }
    });
    return () => {
      keys.dispose();
      sub.dispose();
      ed.getModel()?.dispose();
      ed.dispose();
      editor.current = null;
    };
    // Created once per mount; value/readOnly changes are applied below.
  }, [language]);

  useEffect(() => {
    const ed = editor.current;
    if (ed && ed.getValue() !== value) ed.setValue(value);
  }, [value]);

  useEffect(() => {
    editor.current?.updateOptions({ readOnly });
  }, [readOnly]);

  return (
    <div
      ref={host}
      data-testid={testId}
      className={cn("w-full overflow-hidden rounded-md border", className)}
      style={{ height }}
    />
  );
}
