import { act } from "react";
import { createRoot } from "react-dom/client";
import { describe, expect, it } from "vitest";
import { Detail, storedCutNote } from "./invocation-detail";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function render(el: React.ReactElement): HTMLElement {
  const host = document.createElement("div");
  document.body.appendChild(host);
  act(() => createRoot(host).render(el));
  return host;
}

describe("Detail's stored-cut note", () => {
  it("says in words that the record kept only the start, and ties the note to the field", () => {
    const host = render(<Detail label="Logs" text="line 1\nline 2" cut />);
    const note = host.querySelector("[data-testid=stored-cut]");
    expect(note?.textContent).toBe("Stored cut: the record keeps only the first part of the logs.");
    expect(host.querySelector("pre")?.getAttribute("aria-describedby")).toBe(note?.id);
  });

  it("names another field when asked (a failure's message taken from the cut output)", () => {
    const host = render(<Detail label="Error" text="boom" tone="error" cut="output" />);
    expect(host.querySelector("[data-testid=stored-cut]")?.textContent).toBe(storedCutNote("output"));
  });

  it("shows no note for a whole field", () => {
    for (const cut of [undefined, false]) {
      const host = render(<Detail label="Input" text='{"a":1}' cut={cut} />);
      expect(host.querySelector("[data-testid=stored-cut]")).toBeNull();
      expect(host.querySelector("pre")?.hasAttribute("aria-describedby")).toBe(false);
      expect(host.textContent).not.toContain("Stored cut");
    }
  });
});
