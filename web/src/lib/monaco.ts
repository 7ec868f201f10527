// Monaco, bundled from the npm package (never a CDN): the editor core with its standard editing
// features, the Python tokenizer and the JSON language service. Workers come from Vite's ?worker
// imports so they are served from our own origin like every other asset.
import "monaco-editor/esm/vs/editor/editor.all.js";
import * as monaco from "monaco-editor/esm/vs/editor/editor.api";
import "monaco-editor/esm/vs/basic-languages/python/python.contribution";
import "monaco-editor/esm/vs/language/json/monaco.contribution";
import EditorWorker from "monaco-editor/esm/vs/editor/editor.worker?worker";
import JsonWorker from "monaco-editor/esm/vs/language/json/json.worker?worker";

self.MonacoEnvironment = {
  getWorker(_id: string, label: string) {
    if (label === "json") return new JsonWorker();
    return new EditorWorker();
  },
};

monaco.languages.json.jsonDefaults.setDiagnosticsOptions({ validate: true, allowComments: false, enableSchemaRequest: false });

// The editors follow the system's light or dark setting, like the rest of the UI.
if (typeof window !== "undefined" && window.matchMedia) {
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => monaco.editor.setTheme(dark.matches ? "vs-dark" : "vs");
  apply();
  dark.addEventListener?.("change", apply);
}

export { monaco };
