import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useGatewayOrigin } from "./hooks";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function Shown() {
  return <span>{useGatewayOrigin()}</span>;
}

afterEach(() => { vi.unstubAllGlobals(); });

describe("useGatewayOrigin", () => {
  it("shows the page's origin until /api/config names the functions' host, then that host at the page's port", async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ auth_mode: "local", gateway_host: "fn.example.com" }), { status: 200 }));
    vi.stubGlobal("fetch", fetchMock);
    const host = document.createElement("div");
    document.body.appendChild(host);
    const root = createRoot(host);
    act(() => root.render(<Shown />));
    expect(host.textContent).toBe(window.location.origin);
    await act(async () => { await new Promise((r) => setTimeout(r, 0)); });
    const port = window.location.port ? `:${window.location.port}` : "";
    expect(host.textContent).toBe(`${window.location.protocol}//fn.example.com${port}`);
    expect(fetchMock).toHaveBeenCalledWith("/api/config", expect.anything());
    act(() => root.unmount());
  });
});
