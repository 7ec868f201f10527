import { beforeEach, describe, expect, it } from "vitest";
import { deleteTestEvent, loadDraft, loadTestEvents, saveTestEvent, storeDraft } from "./storage";

beforeEach(() => { localStorage.clear(); sessionStorage.clear(); });

describe("saved test events", () => {
  it("are kept per function, sorted by name, replaced by name and deleted", () => {
    saveTestEvent("f1", { name: "zeta", json: '{"z":1}' });
    saveTestEvent("f1", { name: " alpha ", json: '{"a":1}' });
    saveTestEvent("f2", { name: "other", json: "{}" });
    expect(loadTestEvents("f1").map((e) => e.name)).toEqual(["alpha", "zeta"]);
    saveTestEvent("f1", { name: "alpha", json: '{"a":2}' });
    expect(loadTestEvents("f1")).toEqual([{ name: "alpha", json: '{"a":2}' }, { name: "zeta", json: '{"z":1}' }]);
    expect(deleteTestEvent("f1", "zeta")).toEqual([{ name: "alpha", json: '{"a":2}' }]);
    expect(loadTestEvents("f2")).toHaveLength(1);
  });
  it("refuse an empty name and survive junk in storage", () => {
    expect(saveTestEvent("f1", { name: "  ", json: "{}" })).toBeNull();
    localStorage.setItem("clowdy.testEvents.f3", "not json");
    expect(loadTestEvents("f3")).toEqual([]);
    localStorage.setItem("clowdy.testEvents.f3", JSON.stringify([{ name: 1 }, { name: "ok", json: "{}" }]));
    expect(loadTestEvents("f3")).toEqual([{ name: "ok", json: "{}" }]);
  });
});

describe("drafts", () => {
  it("keep unsaved code until it matches the saved code", () => {
    storeDraft("f1", { code: "edited", base: "saved" });
    expect(loadDraft("f1")).toEqual({ code: "edited", base: "saved" });
    storeDraft("f1", { code: "saved", base: "saved" });
    expect(loadDraft("f1")).toBeNull();
  });
});
