import { act } from "react";
import { createRoot } from "react-dom/client";
import { describe, expect, it, vi } from "vitest";
import { errorFromBody } from "@/lib/api";
import { CopyField, ErrorAlert, StatusBadge } from "./common";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function render(el: React.ReactElement): HTMLElement {
  const host = document.createElement("div");
  document.body.appendChild(host);
  act(() => createRoot(host).render(el));
  return host;
}

describe("StatusBadge", () => {
  it("labels a timeout as timed out and keeps the raw status for tests and styling", () => {
    const host = render(<StatusBadge status="timeout" />);
    expect(host.textContent).toBe("timed out");
    expect(host.querySelector("[data-status]")?.getAttribute("data-status")).toBe("timeout");
  });
});

describe("ErrorAlert retry", () => {
  it("offers Retry when the load can be tried again, and calls it", () => {
    const retry = vi.fn();
    const host = render(<ErrorAlert error={errorFromBody(503, null)} onRetry={retry} />);
    const button = host.querySelector<HTMLButtonElement>('[data-testid="retry"]');
    expect(button?.textContent).toContain("Retry");
    act(() => button!.click());
    expect(retry).toHaveBeenCalledTimes(1);
    expect(render(<ErrorAlert error={errorFromBody(404, { detail: "Function not found" })} />).querySelector('[data-testid="retry"]')).toBeNull();
  });
});

describe("CopyField", () => {
  it("wraps a command between words and keeps its line breaks", () => {
    const host = render(<CopyField value={"curl -X POST 'x' \\\n  -d '{}'"} testId="c" wrap="words" />);
    const code = host.querySelector('[data-testid="c"]')!;
    expect(code.className).toContain("whitespace-pre-wrap");
    expect(code.className).toContain("break-words");
    expect(code.className).not.toContain("break-all");
  });
});
