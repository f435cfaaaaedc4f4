"""Build `tests/contract/schemas.json` from Codat's OpenAPI documents (run by hand).

The contract tests validate the sandbox's bodies against JSON Schemas taken from
Codat's published OpenAPI documents. Those documents are large, use `$ref` into
arbitrary places of themselves and OpenAPI's `nullable`, so this one-off script
turns the few schemas the tests need into plain, self-contained JSON Schema
(draft 2020-12) and writes them into the repository. The tests read only the
vendored file; they never read the OpenAPI documents.

Run it from the repository root when the OpenAPI documents change:

    .venv/bin/python tests/contract/build_schemas.py [--spec-dir ../shared/codat]

`--spec-dir` defaults to `../shared/codat` relative to the repository root and
must hold `Codat-Sync-Expenses.json` (the current Sync for Expenses API: companies,
connections, config, syncs, transactions, expense transactions, push operations)
and `Codat-Expenses.json` (the only document that declares the 202 answer of
"Initiate sync", POST /companies/{companyId}/sync/expenses/syncs).

What the conversion does:

* every `$ref` is replaced by the schema it points at; keywords next to a `$ref`
  (OpenAPI 3.1 allows them, e.g. `nullable` or `description`) are kept and win;
* `nullable: true` becomes a JSON Schema type union with "null" (and `null` is
  added to an `enum`); a schema without `type` is wrapped in `anyOf [.., null]`;
* documentation-only keywords (descriptions, examples, `x-*`, `definitions`)
  are dropped, so the file stays small and diffs show real contract changes;
* `additionalProperties` is kept exactly as the spec gives it, with one
  translation: where the spec puts `additionalProperties: false` next to an
  `allOf` and no `properties` of its own (Codat's `Transactions`), JSON Schema
  would forbid *every* property, while the intent is "nothing beyond what the
  `allOf` parts declare" - so that becomes `unevaluatedProperties: false`;
* one deliberate relaxation, recorded in a `$comment` where it applies:
  `PagingInfo.pageSize` says `maximum: 2000` while every list operation accepts
  `pageSize` up to 5000 (components.parameters.pageSize), so a spec-conforming
  server echoing a valid request (pageSize=5000, which the dashboard uses)
  would break its own response schema. The vendored maximum is 5000.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("schemas.json")
CURRENT = "Codat-Sync-Expenses.json"
LEGACY = "Codat-Expenses.json"

# name -> (document, operationId, "request" or a response status)
WANTED: dict[str, tuple[str, str, str]] = {
    "Companies": (CURRENT, "list-companies", "200"),
    "Company": (CURRENT, "get-company", "200"),
    "Connections": (CURRENT, "list-connections", "200"),
    "CompanyConfiguration": (CURRENT, "get-company-configuration", "200"),
    "CompanySyncStatusList": (CURRENT, "list-syncs", "200"),
    "CompanySyncStatus": (CURRENT, "get-sync-by-id", "200"),
    "Transactions": (CURRENT, "list-sync-transactions", "200"),
    "TransactionResponse": (CURRENT, "get-sync-transaction", "200"),
    "PushOperations": (CURRENT, "list-push-operations", "200"),
    "CreateExpenseRequest": (CURRENT, "create-expense-transaction", "request"),
    "CreateExpenseResponse": (CURRENT, "create-expense-transaction", "200"),
    "ErrorMessage": (CURRENT, "list-companies", "401"),
    "PostSync": (LEGACY, "intiate-sync", "request"),  # sic: Codat's operationId
    "SyncInitiated": (LEGACY, "intiate-sync", "202"),
}

# Error answers the tests provoke; each must be documented as ErrorMessage.
ERROR_ANSWERS = [
    ("list-companies", "400"),
    ("list-companies", "401"),
    ("list-companies", "429"),
    ("get-company", "404"),
    ("list-connections", "404"),
    ("get-sync-by-id", "404"),
    ("list-sync-transactions", "404"),
    ("get-last-successful-sync", "404"),
    ("list-push-operations", "400"),
    ("create-expense-transaction", "400"),
]

# Which operations answer with which schema, for the tests' reference.
OPERATIONS: dict[str, dict[str, Any]] = {
    "list-companies": {"method": "GET", "path": "/companies", "200": "Companies"},
    "get-company": {"method": "GET", "path": "/companies/{companyId}", "200": "Company"},
    "list-connections": {
        "method": "GET",
        "path": "/companies/{companyId}/connections",
        "200": "Connections",
    },
    "get-company-configuration": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/config",
        "200": "CompanyConfiguration",
    },
    "list-syncs": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/list/status",
        "200": "CompanySyncStatusList",
    },
    "get-latest-sync": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/latest/status",
        "200": "CompanySyncStatus",
    },
    "get-last-successful-sync": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/lastSuccessful/status",
        "200": "CompanySyncStatus",
    },
    "get-sync-by-id": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/{syncId}/status",
        "200": "CompanySyncStatus",
    },
    "list-sync-transactions": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/{syncId}/transactions",
        "200": "Transactions",
    },
    "get-sync-transaction": {
        "method": "GET",
        "path": "/companies/{companyId}/sync/expenses/syncs/{syncId}/transactions/{transactionId}",
        "200": "TransactionResponse",
    },
    "list-push-operations": {
        "method": "GET",
        "path": "/companies/{companyId}/push",
        "200": "PushOperations",
    },
    "create-expense-transaction": {
        "method": "POST",
        "path": "/companies/{companyId}/sync/expenses/expense-transactions",
        "request": "CreateExpenseRequest",
        "200": "CreateExpenseResponse",
    },
    "initiate-sync": {
        "method": "POST",
        "path": "/companies/{companyId}/sync/expenses/syncs",
        "request": "PostSync",
        "202": "SyncInitiated",
    },
}

PAGE_SIZE_COMMENT = (
    "Relaxed from the spec's maximum 2000: request pageSize may be up to 5000 "
    "(components.parameters.pageSize) and the answer echoes it."
)
UNEVALUATED_COMMENT = (
    "The spec has additionalProperties: false beside allOf (no own properties); "
    "unevaluatedProperties keeps its intent without forbidding the allOf properties."
)

# Keywords whose value is one schema, a name->schema map, or a list of schemas.
_ONE = ("items", "additionalProperties", "propertyNames", "not", "contains", "if", "then", "else")
_MAP = ("properties", "patternProperties", "dependentSchemas")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
# Annotations that carry no constraint.
_DROP = {
    "description",
    "example",
    "examples",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
    "externalDocs",
    "xml",
    "discriminator",
}


def pointer(document: dict, ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node: Any = document
    for part in ref[2:].split("/"):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def deref(document: dict, schema: Any, seen: tuple[str, ...] = ()) -> Any:
    """`schema` with every $ref inlined, nullable translated and annotations dropped."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            raise ValueError(f"recursive $ref {ref}; not supported")
        target = deref(document, pointer(document, ref), (*seen, ref))
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **deref(document, siblings, seen)} if siblings else target
        return merged
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP or key.startswith("x-"):
            continue
        if key in _ONE and isinstance(value, dict):
            out[key] = deref(document, value, seen)
        elif key in _MAP:
            out[key] = {name: deref(document, sub, seen) for name, sub in value.items()}
        elif key in _LIST:
            out[key] = [deref(document, sub, seen) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_json_schema(schema: Any) -> Any:
    """Translate OpenAPI-only keywords (nullable, allOf + additionalProperties)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = to_json_schema(out[key])
    for key in _MAP:
        if key in out:
            out[key] = {name: to_json_schema(sub) for name, sub in out[key].items()}
    for key in _LIST:
        if key in out:
            out[key] = [to_json_schema(sub) for sub in out[key]]
    if out.get("additionalProperties") is False and "allOf" in out and "properties" not in out:
        del out["additionalProperties"]
        out["unevaluatedProperties"] = False
        out["$comment"] = UNEVALUATED_COMMENT
    nullable = out.pop("nullable", False)
    if nullable:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def operation(document: dict, operation_id: str) -> dict:
    for item in document["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


def located(document: dict, operation_id: str, where: str) -> dict:
    op = operation(document, operation_id)
    if where == "request":
        part = op["requestBody"]
    else:
        part = op["responses"][where]
        while "$ref" in part:
            part = pointer(document, part["$ref"])
    return part["content"]["application/json"]["schema"]


def convert(document: dict, operation_id: str, where: str) -> dict:
    return to_json_schema(deref(document, located(document, operation_id, where)))


def relax_page_size(document: dict) -> None:
    page_size = document["components"]["schemas"]["PagingInfo"]["properties"]["pageSize"]
    if page_size.get("maximum") != 2000:
        raise SystemExit(f"PagingInfo.pageSize changed upstream ({page_size}); review the patch")
    page_size["maximum"] = 5000
    page_size["$comment"] = PAGE_SIZE_COMMENT


def build(spec_dir: Path) -> dict[str, Any]:
    documents: dict[str, dict] = {}
    sources: dict[str, dict[str, str]] = {}
    for name in sorted({doc for doc, _, _ in WANTED.values()}):
        raw = (spec_dir / name).read_bytes()
        documents[name] = json.loads(raw)
        sources[name] = {
            "title": documents[name]["info"]["title"],
            "version": str(documents[name]["info"]["version"]),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
    relax_page_size(documents[CURRENT])
    schemas = {}
    for name, (doc, operation_id, where) in WANTED.items():
        document = documents[doc]
        schema = convert(document, operation_id, where)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-source"] = f"{doc} {operation_id} {where}"
        schemas[name] = schema
    # The tests check every error body against the one ErrorMessage schema:
    # make sure each error answer they provoke is documented as exactly that.
    error_message = convert(documents[CURRENT], "list-companies", "401")
    for operation_id, status in ERROR_ANSWERS:
        if convert(documents[CURRENT], operation_id, status) != error_message:
            raise SystemExit(f"{operation_id} {status} is not ErrorMessage; vendor it separately")
    return {
        "$comment": "Generated by tests/contract/build_schemas.py; do not edit by hand.",
        "sources": sources,
        "operations": OPERATIONS,
        "schemas": schemas,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec-dir", type=Path, default=ROOT.parent / "shared" / "codat")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = build(args.spec_dir)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {len(result['schemas'])} schemas to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
