// App shell: a sidebar on wide screens, a top bar with a slide-out menu on phones, the chat panel
// toggled from either, and the routed page in the middle.
import { useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router";
import { Bot, Cloud, FolderKanban, LayoutDashboard, LogOut, Menu, SquareFunction, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import { ChatPanel } from "@/components/chat-panel";
import { getToken, setToken } from "@/lib/auth";
import { cn } from "@/lib/utils";

const NAV = [
  { to: "/", label: "Dashboard", icon: LayoutDashboard, end: true },
  { to: "/projects", label: "Projects", icon: FolderKanban, end: false },
  { to: "/functions", label: "Functions", icon: SquareFunction, end: false },
];

function NavItems({ onNavigate }: { onNavigate?: () => void }) {
  return (
    <nav className="flex flex-col gap-1" aria-label="Main">
      {NAV.map(({ to, label, icon: Icon, end }) => (
        <NavLink
          key={to}
          to={to}
          end={end}
          onClick={onNavigate}
          className={({ isActive }) =>
            cn(
              "flex items-center gap-2 rounded-md px-3 py-2 text-sm font-medium transition-colors",
              isActive ? "bg-primary/10 text-primary" : "text-muted-foreground hover:bg-accent hover:text-foreground",
            )
          }
        >
          <Icon className="size-4" /> {label}
        </NavLink>
      ))}
    </nav>
  );
}

function Brand() {
  return (
    <div className="flex items-center gap-2 px-3 text-lg font-semibold">
      <Cloud className="text-primary size-6" /> Clowdy
    </div>
  );
}

export function Layout() {
  const [menuOpen, setMenuOpen] = useState(false);
  const [chatOpen, setChatOpen] = useState(false);
  const [refresh, setRefresh] = useState(0); // bumped when the assistant acted, to reload the page
  const location = useLocation();
  const signedIn = !!getToken();

  return (
    <div className="flex min-h-dvh">
      {/* Sticky and one screen tall: the assistant button stays in view on long pages. */}
      <aside className="bg-muted/30 sticky top-0 hidden h-dvh w-56 shrink-0 flex-col gap-6 self-start overflow-y-auto border-r py-5 md:flex">
        <Brand />
        <div className="px-2"><NavItems /></div>
        <div className="mt-auto flex flex-col gap-2 px-2">
          <Button variant="outline" onClick={() => setChatOpen((o) => !o)} data-testid="chat-toggle">
            <Bot /> AI assistant
          </Button>
          {signedIn && (
            <Button variant="ghost" size="sm" onClick={() => { setToken(null); window.location.reload(); }}>
              <LogOut /> Sign out
            </Button>
          )}
        </div>
      </aside>

      {menuOpen && (
        <div className="fixed inset-0 z-40 md:hidden" role="dialog" aria-label="Menu">
          <div className="absolute inset-0 bg-black/40" onClick={() => setMenuOpen(false)} />
          <div className="bg-background absolute inset-y-0 left-0 flex w-64 flex-col gap-6 py-5 shadow-xl">
            <div className="flex items-center justify-between pr-3">
              <Brand />
              <Button variant="ghost" size="icon" aria-label="Close menu" onClick={() => setMenuOpen(false)}><X /></Button>
            </div>
            <div className="px-2"><NavItems onNavigate={() => setMenuOpen(false)} /></div>
          </div>
        </div>
      )}

      <div className="flex min-w-0 flex-1 flex-col">
        <header className="bg-background/90 sticky top-0 z-30 flex h-14 items-center gap-2 border-b px-3 backdrop-blur md:hidden">
          <Button variant="ghost" size="icon" aria-label="Open menu" onClick={() => setMenuOpen(true)}><Menu /></Button>
          <Brand />
          <Button variant="ghost" size="icon" className="ml-auto" aria-label="AI assistant" onClick={() => setChatOpen((o) => !o)}><Bot /></Button>
        </header>
        <main key={`${location.pathname.split("/")[1]}-${refresh}`} className="mx-auto w-full max-w-6xl flex-1 px-4 py-6 md:px-8">
          <Outlet />
        </main>
      </div>

      <ChatPanel open={chatOpen} onClose={() => setChatOpen(false)} onActed={() => setRefresh((n) => n + 1)} />
    </div>
  );
}
