import { act } from "react";
import { createRoot } from "react-dom/client";
import { describe, expect, it } from "vitest";
import { ApiError, errorFromBody } from "@/lib/api";
import { ErrorAlert } from "./common";
import { chatUnavailableText } from "./chat-panel";

// React's act() needs this flag outside a test framework integration.
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function render(el: React.ReactElement): HTMLElement {
  const host = document.createElement("div");
  document.body.appendChild(host);
  act(() => createRoot(host).render(el));
  return host;
}

describe("ErrorAlert", () => {
  it("shows the detail sentence", () => {
    const host = render(<ErrorAlert error={errorFromBody(404, { detail: "Function not found" })} title="Could not load" />);
    expect(host.textContent).toContain("Could not load");
    expect(host.textContent).toContain("Function not found");
  });

  it("lists 422 field messages", () => {
    const e = errorFromBody(422, { detail: [{ loc: ["body", "name"], msg: "Field required", type: "missing" }, { loc: ["body", "memory_mb"], msg: "too small", type: "x" }] });
    const host = render(<ErrorAlert error={e} />);
    const items = [...host.querySelectorAll("li")].map((li) => li.textContent);
    expect(items).toEqual(["name: Field required", "memory_mb: too small"]);
  });

  it("renders nothing without an error and survives non-Error values", () => {
    expect(render(<ErrorAlert error={null} />).textContent).toBe("");
    expect(render(<ErrorAlert error={"plain text"} />).textContent).toContain("plain text");
  });
});

describe("chatUnavailableText", () => {
  it("explains 501 and 503, leaves other errors alone", () => {
    expect(chatUnavailableText(new ApiError(501, "The assistant is not configured"))).toMatch(/not set up on this server/);
    expect(chatUnavailableText(new ApiError(503, "LLM provider unreachable"))).toMatch(/unavailable right now \(LLM provider unreachable\)/);
    expect(chatUnavailableText(new ApiError(400, "bad"))).toBeNull();
    expect(chatUnavailableText(new Error("x"))).toBeNull();
  });
});
