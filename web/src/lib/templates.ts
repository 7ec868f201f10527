// Starter code offered when creating a function.
export interface Template { id: string; label: string; code: string }

export const TEMPLATES: Template[] = [
  {
    id: "hello",
    label: "Hello world",
    code: `def handler(input):
    name = input.get("name", "world") if isinstance(input, dict) else "world"
    return {"message": f"Hello, {name}!"}
`,
  },
  {
    id: "http",
    label: "HTTP endpoint (gateway)",
    code: `import json


def handler(event, context):
    # event: {method, path, params, query, headers, body}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"method": event.get("method"), "params": event.get("params"), "query": event.get("query")}),
    }
`,
  },
  {
    id: "env",
    label: "Read an env var",
    code: `import os


def handler(input):
    value = os.environ.get("GREETING", "not set")
    print("GREETING is", value)  # goes to the invocation's logs
    return {"greeting": value}
`,
  },
  { id: "blank", label: "Blank", code: "def handler(input):\n    return input\n" },
];
