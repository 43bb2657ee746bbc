"""What `bulkOperationRunMutation` checks and how it runs, line by line (sandbox.shopify_bulk keeps the operations).

- The mutation (a GraphQL document as text) must parse and validate against the published schema and hold one
  operation, a mutation, with one top-level field → else `INVALID_MUTATION` (field `["mutation"]`). Shopify runs
  any Admin mutation in bulk since 2026; the sandbox runs the mutations its resolvers model (`RUNNABLE`) and
  refuses others with `INVALID_MUTATION` in its own words.
- The variables file (the staged upload) is JSONL: one JSON object a line, the variables of one execution. A
  line that is not a JSON object (or a file with no line) → `INVALID_STAGED_UPLOAD_FILE` naming the line.
- Each line runs as its own execution of the mutation with that line's variables — coerced to the declared
  variable types, so a line of the wrong shape gets a result line with `errors` and changes nothing — and yields
  one result line: the execution's response (`data` with the mutation's payload, userErrors included, and/or
  `errors`) plus `"__lineNumber"` (0-based, the line's position in the input file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.language import DocumentNode

# The mutations the sandbox's resolvers implement (sandbox.shopify_resolvers).
RUNNABLE = frozenset({"inventorySetQuantities", "productVariantsBulkUpdate"})


def check_mutation(schema: GraphQLSchema, text: str) -> tuple[DocumentNode | None, str | None]:
    """(the parsed document, None) when the sandbox can run `text` in bulk, else (None, why not)."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return None, f"Invalid mutation: {exc.message}"
    errors = validate(schema, document)
    if errors:
        return None, f"Invalid mutation: {errors[0].message}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "mutation":
        return None, "Invalid mutation: a bulk mutation document must hold exactly one mutation operation."
    fields = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1 or len(operations[0].selection_set.selections) != 1:
        return None, "Invalid mutation: a bulk mutation runs exactly one mutation field."
    name = fields[0].name.value
    if name not in RUNNABLE:
        return None, (f"Invalid mutation: the ichigen sandbox runs {', '.join(sorted(RUNNABLE))} in bulk, "
                      f"not {name}.")
    return document, None


def read_variables(body: bytes) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The variables of each line of a staged JSONL file, or (None, why the file is invalid)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "The JSONL file is not UTF-8 text."
    lines = text.splitlines()
    if not lines:
        return None, "The JSONL file has no lines."
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines):
        try:
            value = json.loads(line)
        except ValueError as exc:
            return None, f"Line {number} of the JSONL file is not valid JSON ({exc.msg})."
        if not isinstance(value, dict):
            return None, f"Line {number} of the JSONL file is not a JSON object of variables."
        out.append(value)
    return out, None


def run_lines(schema: GraphQLSchema, document: DocumentNode, lines: list[dict[str, Any]],
              root: Callable[[], dict[str, Any]], field_resolver: Callable[..., Any],
              type_resolver: Callable[..., Any],
              error: Callable[[GraphQLError, str | None], dict[str, Any]]) -> Iterator[str]:
    """Execute the mutation once per line, lazily: each line runs when its result JSONL line is asked for, so a
    caller takes the world's lock around each step (other requests go between lines) and may stop half-way.
    `error(exc, code)` renders a GraphQL error as the shop does (code None: the error's own)."""
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    for number, variables in enumerate(lines):
        line: dict[str, Any] = {}
        coerced = get_variable_values(schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):  # this line's variables do not fit the declared types: nothing runs
            line["errors"] = [error(e, "INVALID_VARIABLE") for e in coerced]
        else:
            result = execute(schema, document, root_value=root(), variable_values=variables,
                             field_resolver=field_resolver, type_resolver=type_resolver)
            if result.errors:
                line["errors"] = [error(e, None) for e in result.errors]
            if result.data is not None:
                line["data"] = result.data
        line["__lineNumber"] = number
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":"))
