"""Generate `docs/http-reference.md` from the four services' OpenAPI documents.

`make docs` (= `python -m shared.http_reference --write`); a test checks the file is current.
Only the documents are read (roles from `x-roles`, errors from the declared responses), so the
reference says exactly what the apps serve.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from shared.errors import PROBLEM_JSON
from shared.openapi import ERROR_RESPONSES

SERVICES = (("filing", 8001), ("confirmation", 8002), ("payments", 8003), ("notify", 8004))
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "http-reference.md"
METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    for combo in ("anyOf", "oneOf"):
        if combo in schema:
            return " | ".join(_type(s) for s in schema[combo])
    if "allOf" in schema:
        return " & ".join(_type(s) for s in schema["allOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        out.append(
            f"**{op['summary']}**" + (f" — {op['description']}" if op.get("description") else "")
        )
        out.append("")
    roles = op.get("x-roles")
    out.append("Roles: " + (", ".join(f"`{r}`" for r in roles) if roles else "public"))
    out.append("")
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required |", "| --- | --- | --- | --- |"]
        for p in params:
            out.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                f"{'yes' if p.get('required') else 'no'} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            out.append(f"Body (`{media}`): {_type(content.get('schema', {}))}")
        out.append("")
    out += ["| status | content | meaning |", "| --- | --- | --- |"]
    errors = []
    for status, response in sorted(op.get("responses", {}).items()):
        contents = response.get("content", {})
        if list(contents) == [PROBLEM_JSON] and int(status) in ERROR_RESPONSES:
            errors.append(status)
            continue
        what = ", ".join(f"`{media}` {_type(c.get('schema', {}))}" for media, c in contents.items())
        out.append(
            f"| {status} | {_cell(what or '—')} | {_cell(response.get('description', ''))} |"
        )
    out.append("")
    return out


def _schemas(doc: dict[str, Any]) -> list[str]:
    out = ["### Schemas", ""]
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        out.append(f"#### {name}")
        out.append("")
        props = schema.get("properties")
        if not props:
            out += [f"{_type(schema)}", ""]
            continue
        required = set(schema.get("required", []))
        out += ["| field | type | required |", "| --- | --- | --- |"]
        for field, sub in props.items():
            out.append(
                f"| `{field}` | {_cell(_type(sub))} | {'yes' if field in required else 'no'} |"
            )
        out.append("")
    return out


def render() -> str:
    lines = [
        "# HTTP reference",
        "",
        "Generated from the services' OpenAPI documents by `make docs` — do not edit by hand.",
        "Every service also serves its document at `/openapi.json` and Swagger UI at `/docs`.",
        "Errors are `application/problem+json` (`type`, `title`, `status`, `detail`, `code`,",
        "`errors`); `x-roles` lists the token roles an operation admits.",
        "",
        "| error status | when |",
        "| --- | --- |",
        *(f"| {status} | {_cell(text)} |" for status, text in sorted(ERROR_RESPONSES.items())),
        "",
    ]
    for service, port in SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app()
        doc = app.openapi()
        lines += [f"## {doc['info']['title']}", "", f"`{service}`, port {port}.", ""]
        for path, item in sorted(doc.get("paths", {}).items()):
            for method in METHODS:
                if method in item:
                    lines += _operation(path, method, item[method])
        lines += _schemas(doc)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.http_reference")
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT.name}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
