// Routes of the UI. Every page renders inside the Layout; a render error shows a readable message
// with a way back instead of a blank page.
import { lazy, Suspense, type ReactNode } from "react";
import { createBrowserRouter, RouterProvider, useRouteError, Link } from "react-router";
import { Layout } from "@/components/layout";
import { AuthGate } from "@/components/auth-gate";
import { Toaster } from "@/components/toaster";
import { ErrorAlert } from "@/components/common";
import { Button } from "@/components/ui/button";
import { PageSkeleton } from "@/components/common";
import NotFound from "@/pages/not-found";

// Pages load on demand: the chart library and Monaco stay out of the first download.
const Dashboard = lazy(() => import("@/pages/dashboard"));
const Projects = lazy(() => import("@/pages/projects"));
const ProjectDetail = lazy(() => import("@/pages/project-detail"));
const Functions = lazy(() => import("@/pages/functions"));
const FunctionNew = lazy(() => import("@/pages/function-new"));
const FunctionDetail = lazy(() => import("@/pages/function-detail"));

function page(el: ReactNode) {
  return <Suspense fallback={<PageSkeleton />}>{el}</Suspense>;
}

function RouteError() {
  const error = useRouteError();
  return (
    <div className="mx-auto flex max-w-xl flex-col gap-4 p-6">
      <ErrorAlert error={error instanceof Error ? error : new Error("This page failed to load.")} title="This page hit an error" />
      <div><Button asChild variant="outline"><Link to="/">Back to the dashboard</Link></Button></div>
    </div>
  );
}

const router = createBrowserRouter([
  {
    element: <Layout />,
    errorElement: <RouteError />,
    children: [
      { index: true, element: page(<Dashboard />), errorElement: <RouteError /> },
      { path: "projects", element: page(<Projects />), errorElement: <RouteError /> },
      { path: "projects/:id", element: page(<ProjectDetail />), errorElement: <RouteError /> },
      { path: "functions", element: page(<Functions />), errorElement: <RouteError /> },
      { path: "functions/new", element: page(<FunctionNew />), errorElement: <RouteError /> },
      { path: "functions/:id", element: page(<FunctionDetail />), errorElement: <RouteError /> },
      { path: "*", element: <NotFound /> },
    ],
  },
]);

export default function App() {
  return (
    <Toaster>
      <AuthGate>
        <RouterProvider router={router} />
      </AuthGate>
    </Toaster>
  );
}
