// AuthGate: asks the server for its auth mode once; in jwt/token mode without a stored token it
// shows a sign-in form that stores the token (see lib/auth.ts). Local mode passes straight through.
import { useEffect, useState, type ReactNode } from "react";
import { Cloud, KeyRound } from "lucide-react";
import { fetchConfig, getToken, onTokenChange, setToken, type ServerConfig } from "@/lib/auth";
import { checkToken } from "@/lib/api";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ErrorAlert, Loading } from "@/components/common";

export function AuthGate({ children }: { children: ReactNode }) {
  const [config, setConfig] = useState<ServerConfig | null>(null);
  const [token, setTok] = useState<string | null>(getToken());

  useEffect(() => { void fetchConfig().then(setConfig); }, []);
  useEffect(() => onTokenChange(() => setTok(getToken())), []);

  if (!config) return <div className="flex min-h-dvh items-center justify-center"><Loading label="Connecting to Clowdy…" /></div>;
  if (config.auth_mode === "local" || token) return <>{children}</>;
  return <SignIn config={config} />;
}

function SignIn({ config }: { config: ServerConfig }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      await checkToken(value.trim());
      setToken(value.trim()); // AuthGate now renders the app
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  }

  return (
    <div className="flex min-h-dvh items-center justify-center p-4">
      <Card className="w-full max-w-md">
        <CardHeader>
          <div className="mb-2 flex items-center gap-2 text-lg font-semibold"><Cloud className="text-primary size-6" /> Clowdy</div>
          <CardTitle>Sign in</CardTitle>
          <CardDescription>
            This server requires credentials. Paste an API token{config.clerk_publishable_key ? " or your session JWT" : ""} to continue.
          </CardDescription>
        </CardHeader>
        <CardContent>
          <form className="flex flex-col gap-3" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
            <Label htmlFor="token">Token</Label>
            <Input id="token" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} placeholder="clw_…" />
            <ErrorAlert error={error} title="Sign-in failed" />
            <Button type="submit" disabled={busy || !value.trim()}><KeyRound /> {busy ? "Checking…" : "Sign in"}</Button>
          </form>
        </CardContent>
      </Card>
    </div>
  );
}
