import { Link } from "react-router";
import { Button } from "@/components/ui/button";
import { EmptyState, PageHeader, useTitle } from "@/components/common";

export default function NotFound() {
  useTitle("Page not found");
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState title="This page does not exist">
        <div className="flex flex-wrap justify-center gap-2">
          <Button asChild size="sm"><Link to="/">Back to the dashboard</Link></Button>
          <Button asChild size="sm" variant="outline"><Link to="/functions">Functions</Link></Button>
        </div>
      </EmptyState>
    </>
  );
}
