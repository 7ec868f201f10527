// useApi: load data from the API with loading / error state and a reload function.
// reload({ quiet: true }) refreshes in the background (polling): no loading flag, and a failure keeps
// the data already shown instead of replacing it by an error.
import { useCallback, useEffect, useRef, useState } from "react";
import { fetchConfig, type ServerConfig } from "./auth";
import { currentOrigin, gatewayOrigin } from "./utils";

export interface ApiState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: (opts?: { quiet?: boolean }) => Promise<void>;
  setData: (d: T | undefined) => void;
}

export function useApi<T>(load: () => Promise<T>, deps: unknown[]): ApiState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const run = useCallback(load, deps);

  const reload = useCallback(async (opts?: { quiet?: boolean }) => {
    const quiet = !!opts?.quiet;
    const mine = ++seq.current;
    if (!quiet) setLoading(true);
    try {
      const d = await run();
      if (mine === seq.current) { setData(d); setError(null); }
    } catch (e) {
      if (mine === seq.current && !quiet) setError(e);
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  }, [run]);

  useEffect(() => { void reload(); }, [reload]);
  return { data, error, loading, reload, setData };
}

// The server's configuration does not change while it runs: one request serves every page.
let configOnce: Promise<ServerConfig> | null = null;

/** The origin to show gateway URLs on: the functions' own host when the server has one
 *  (/api/config gateway_host), else the page's origin (also while /api/config is on its way). */
export function useGatewayOrigin(): string {
  const [host, setHost] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    void (configOnce ??= fetchConfig()).then((c) => {
      if (live) setHost(typeof c.gateway_host === "string" && c.gateway_host ? c.gateway_host : null);
    });
    return () => { live = false; };
  }, []);
  return gatewayOrigin(currentOrigin(), host);
}
