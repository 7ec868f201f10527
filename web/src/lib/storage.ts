// What the console keeps in the browser rather than on the server:
// - saved test events per function (name + JSON text), in localStorage, like the Lambda console's
//   "saved test events"; the server has no place for them yet, so they live on this browser only;
// - the unsaved draft of a function's code, in sessionStorage, so that a remount of the page (the
//   assistant's refresh, an accidental reload) brings the edits back instead of losing them.
// Storage can be full, disabled or hold junk written by an older build: every read checks its shape
// and every write may fail without breaking the page.

export interface TestEvent { name: string; json: string }

const EVENTS_PREFIX = "clowdy.testEvents.";
const DRAFT_PREFIX = "clowdy.draft.";
export const MAX_EVENTS = 50;

function read(store: Storage | undefined, key: string): unknown {
  try {
    const text = store?.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function write(store: Storage | undefined, key: string, value: unknown): boolean {
  try {
    if (!store) return false;
    if (value === null) store.removeItem(key);
    else store.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

function local(): Storage | undefined { return typeof localStorage === "undefined" ? undefined : localStorage; }
function session(): Storage | undefined { return typeof sessionStorage === "undefined" ? undefined : sessionStorage; }

/** The saved test events of a function, sorted by name. */
export function loadTestEvents(functionId: string): TestEvent[] {
  const v = read(local(), EVENTS_PREFIX + functionId);
  if (!Array.isArray(v)) return [];
  return v
    .filter((e): e is TestEvent => !!e && typeof e === "object" && typeof e.name === "string" && typeof e.json === "string")
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Saves (or replaces, by name) a test event; returns the new list, or null when storage refused. */
export function saveTestEvent(functionId: string, event: TestEvent): TestEvent[] | null {
  const name = event.name.trim();
  if (!name) return null;
  const rest = loadTestEvents(functionId).filter((e) => e.name !== name);
  if (rest.length >= MAX_EVENTS) return null;
  const list = [...rest, { name, json: event.json }].sort((a, b) => a.name.localeCompare(b.name));
  return write(local(), EVENTS_PREFIX + functionId, list) ? list : null;
}

export function deleteTestEvent(functionId: string, name: string): TestEvent[] {
  const list = loadTestEvents(functionId).filter((e) => e.name !== name);
  write(local(), EVENTS_PREFIX + functionId, list.length ? list : null);
  return list;
}

export interface Draft { code: string; base: string }

/** The unsaved code of a function and the saved code it started from, or null. */
export function loadDraft(functionId: string): Draft | null {
  const v = read(session(), DRAFT_PREFIX + functionId) as Draft | null;
  return v && typeof v.code === "string" && typeof v.base === "string" ? v : null;
}

/** Keeps a draft while it differs from the saved code; drops it once they agree. */
export function storeDraft(functionId: string, draft: Draft | null): void {
  write(session(), DRAFT_PREFIX + functionId, draft && draft.code !== draft.base ? draft : null);
}
