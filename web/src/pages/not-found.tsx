import { Link } from "react-router";
import { Button } from "@/components/ui/button";
import { EmptyState } from "@/components/common";

export default function NotFound() {
  return (
    <EmptyState title="This page does not exist">
      <Button asChild size="sm"><Link to="/">Back to the dashboard</Link></Button>
    </EmptyState>
  );
}
