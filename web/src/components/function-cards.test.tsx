import { afterEach, describe, expect, it, vi } from "vitest";
import type { FailedEvent, Schedule } from "@/lib/api";
import { allByTestId, byTestId, cleanup, click, flush, mockApi, render, typeInto, until } from "@/test/mock-api";
import { SchedulesCard, timeUntil } from "./schedules-card";
import { FailedEventsCard, inputPreview } from "./failed-events-card";

afterEach(() => { cleanup(); vi.unstubAllGlobals(); });

const S = "/api/functions/f1/schedules";
const F = "/api/functions/f1/failed-events";

describe("SchedulesCard", () => {
  it("lists, adds and deletes schedules; a bad expression shows the server's 422 sentence", async () => {
    const soon = new Date(Date.now() + 5 * 60000).toISOString();
    let list: Schedule[] = [];
    const { calls } = mockApi({
      [`GET ${S}`]: () => [200, list],
      [`POST ${S}`]: (c) => {
        const expr = (c.body as { expression: string }).expression;
        if (expr === "every tuesday") return [422, { detail: "expression: not a rate() or a 5-field cron expression" }];
        const s = { id: "s1", function_id: "f1", expression: expr, next_run_at: soon, last_run_at: null, created_at: "", enabled: true };
        list = [s];
        return [201, s];
      },
      [`DELETE ${S}/s1`]: () => { list = []; return [204, null]; },
    });
    const { host } = render(<SchedulesCard functionId="f1" />);
    await until(() => !!byTestId(host, "schedules-empty"));
    const input = byTestId(host, "schedule-expression") as HTMLInputElement;
    typeInto(input, "every tuesday");
    click(byTestId(host, "schedule-add"));
    await until(() => !!byTestId(host, "error"), "the 422");
    expect(byTestId(host, "error")!.textContent).toContain("not a rate() or a 5-field cron expression");
    typeInto(input, "rate(5 minutes)");
    click(byTestId(host, "schedule-add"));
    await until(() => allByTestId(host, "schedule-row").length === 1, "the new row");
    expect(byTestId(host, "error")).toBeNull();
    expect(byTestId(host, "schedule-row-expression")!.textContent).toBe("rate(5 minutes)");
    expect(byTestId(host, "schedule-next")!.textContent).toMatch(/next in 5 min · last never/);
    expect(input.value).toBe("");
    click(host.querySelector('[aria-label="Delete schedule rate(5 minutes)"]'));
    await until(() => !!byTestId(host, "schedules-empty"), "the row to go");
    expect(calls.filter((c) => c.method === "DELETE").map((c) => c.path)).toEqual([`${S}/s1`]);
  });

  it("shows no card on a server without schedules", async () => {
    mockApi({});
    const { host } = render(<SchedulesCard functionId="f1" />);
    await flush(20);
    await flush(20);
    expect(byTestId(host, "schedules-card")).toBeNull();
    expect(host.textContent).toBe("");
  });
});

describe("FailedEventsCard", () => {
  const ev = (id: string): FailedEvent => ({ id, invocation_id: `inv-${id}`, input: '{"n": 7}', error: "Traceback (most recent call last):\n  ...\nValueError: boom", attempts: 3, failed_at: "2026-11-30T10:00:00Z" });

  it("lists failed events with their error and attempts; re-drive and delete take them off and say so", async () => {
    let list = [ev("e1"), ev("e2")];
    const redriven = vi.fn();
    const { calls } = mockApi({
      [`GET ${F}`]: () => [200, list],
      [`POST ${F}/e1/redrive`]: () => { list = list.filter((e) => e.id !== "e1"); return [202, { invocation_id: "new" }]; },
      [`DELETE ${F}/e2`]: () => { list = list.filter((e) => e.id !== "e2"); return [204, null]; },
    });
    const { host } = render(<FailedEventsCard functionId="f1" onRedriven={redriven} />);
    await until(() => allByTestId(host, "failed-event").length === 2);
    expect(byTestId(host, "failed-event-error")!.textContent).toBe("ValueError: boom");
    expect(byTestId(host, "failed-event-attempts")!.textContent).toBe("3 attempts");
    expect(host.textContent).toContain('{"n":7}');
    click(allByTestId(host, "failed-event-redrive")[0]);
    await until(() => allByTestId(host, "failed-event").length === 1, "the re-driven event to go");
    expect(redriven).toHaveBeenCalledTimes(1);
    click(byTestId(host, "failed-event-delete"));
    await until(() => !!byTestId(host, "failed-events-empty"), "the list to empty");
    expect(calls.filter((c) => c.method !== "GET").map((c) => `${c.method} ${c.path}`)).toEqual([`POST ${F}/e1/redrive`, `DELETE ${F}/e2`]);
  });

  it("keeps the event and shows why when the re-drive is refused", async () => {
    mockApi({ [`GET ${F}`]: [200, [ev("e1")]], [`POST ${F}/e1/redrive`]: [409, { detail: "The function was deleted" }] });
    const { host } = render(<FailedEventsCard functionId="f1" />);
    await until(() => allByTestId(host, "failed-event").length === 1);
    click(byTestId(host, "failed-event-redrive"));
    await until(() => !!byTestId(host, "error"));
    expect(byTestId(host, "error")!.textContent).toContain("The function was deleted");
    expect(allByTestId(host, "failed-event")).toHaveLength(1);
  });

  it("polls, so an event whose last retry failed appears without a reload", async () => {
    let list: FailedEvent[] = [];
    mockApi({ [`GET ${F}`]: () => [200, list] });
    const { host } = render(<FailedEventsCard functionId="f1" pollMs={20} />);
    await until(() => !!byTestId(host, "failed-events-empty"));
    list = [ev("e9")];
    await until(() => allByTestId(host, "failed-event").length === 1, "the polled event");
  });

  it("shows no card on a server without async calls", async () => {
    mockApi({ [`GET ${F}`]: [501, { detail: "not here" }] });
    const { host } = render(<FailedEventsCard functionId="f1" />);
    await flush(20);
    await flush(20);
    expect(host.textContent).toBe("");
  });
});

describe("timeUntil and inputPreview", () => {
  it("read as a person would", () => {
    const now = Date.parse("2026-11-30T10:00:00Z");
    expect(timeUntil("2026-11-30T10:00:30Z", now)).toBe("in 30 s");
    expect(timeUntil("2026-11-30T12:00:00Z", now)).toBe("in 2 h");
    expect(timeUntil("2026-11-30T09:59:00Z", now)).toBe("due now");
    expect(timeUntil(null, now)).toBe("—");
    expect(inputPreview('{"a": 1}')).toBe('{"a":1}');
    expect(inputPreview({ b: [1, 2] })).toBe('{"b":[1,2]}');
    expect(inputPreview(null)).toBe("(no input)");
    expect(inputPreview("x".repeat(200)).length).toBe(80);
  });
});
