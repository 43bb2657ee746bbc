"""Shopify's calculated query cost, the way Shopify documents it.

- scalar and enum fields: 0; each object: 1;
- a connection: 2 + (`first` or `last`) × the cost of one node's selection (requested), or 2 + the sum over the
  nodes actually returned (actual);
- a mutation: 10 per root field.

`requested` is computed from the document before execution (the bucket must hold that much); `actual` is
computed over the returned data, and the difference is refunded, as Shopify does.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values

MUTATION_COST = 10


def _is_connection(named) -> bool:
    fields = getattr(named, "fields", None) or {}
    return named.name.endswith("Connection") and "pageInfo" in fields and ("edges" in fields or "nodes" in fields)


class _Coster:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any], estimate: bool):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.estimate = estimate

    def _collect(self, selection_set: SelectionSetNode | None, parent, out: list, seen: set[str]) -> list:
        if selection_set is None:
            return out
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                out.append((sel, parent))
            elif isinstance(sel, InlineFragmentNode):
                t = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                self._collect(sel.selection_set, t or parent, out, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    continue
                t = self.schema.get_type(frag.type_condition.name.value) or parent
                self._collect(frag.selection_set, t, out, seen | {name})
        return out

    def selection(self, selection_set: SelectionSetNode | None, parent, data) -> int:
        total = 0
        for node, ptype in self._collect(selection_set, parent, [], set()):
            name = node.name.value
            if name.startswith("__"):
                continue
            fdef = (getattr(ptype, "fields", None) or {}).get(name)
            if fdef is None:
                continue
            key = node.alias.value if node.alias else name
            value = data.get(key) if isinstance(data, dict) else None
            total += self.field(node, fdef, value)
        return total

    def field(self, node: FieldNode, fdef, value) -> int:
        named = get_named_type(fdef.type)
        if is_leaf_type(named):
            return 0
        if _is_connection(named):
            return self.connection(node, fdef, named, value)
        if self.estimate:
            return 1 + self.selection(node.selection_set, named, None)
        if value is None:
            return 0
        if isinstance(value, list):
            return sum(1 + self.selection(node.selection_set, named, v) for v in value)
        return 1 + self.selection(node.selection_set, named, value)

    def connection(self, node: FieldNode, fdef, conn_type, value) -> int:
        # The ways one item can be reached: edges { node { … } } and nodes { … } (each possibly aliased).
        paths = []  # (key, node_field_key or None, node selection, node type)
        for sub, ptype in self._collect(node.selection_set, conn_type, [], set()):
            sub_name = sub.name.value
            sub_key = sub.alias.value if sub.alias else sub_name
            sub_def = (getattr(ptype, "fields", None) or {}).get(sub_name)
            if sub_def is None:
                continue
            if sub_name == "nodes":
                paths.append((sub_key, None, sub.selection_set, get_named_type(sub_def.type)))
            elif sub_name == "edges":
                edge_type = get_named_type(sub_def.type)
                for inner, itype in self._collect(sub.selection_set, edge_type, [], set()):
                    if inner.name.value == "node":
                        inner_def = itype.fields["node"]
                        inner_key = inner.alias.value if inner.alias else "node"
                        paths.append((sub_key, inner_key, inner.selection_set, get_named_type(inner_def.type)))
        if self.estimate:
            args = get_argument_values(fdef, node, self.variables)
            size = args.get("first") or args.get("last") or 0
            per_item = max((1 + self.selection(sel, t, None) for _, _, sel, t in paths), default=0)
            return 2 + max(0, int(size)) * per_item
        if not isinstance(value, dict):
            return 0
        count = max((len(value.get(key) or []) for key, _, _, _ in paths), default=0)
        total = 2
        for i in range(count):
            best = 0
            for key, inner_key, sel, t in paths:
                items = value.get(key) or []
                if i >= len(items) or items[i] is None:
                    continue
                item = items[i][inner_key] if inner_key is not None else items[i]
                if item is not None:
                    best = max(best, 1 + self.selection(sel, t, item))
            total += best
        return total


def query_cost(schema: GraphQLSchema, document, operation: OperationDefinitionNode, variables: dict[str, Any],
               data: dict[str, Any] | None = None, estimate: bool = True) -> int:
    """Requested cost (estimate=True) or actual cost over `data` (estimate=False) of one operation."""
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(
            1 for sel in operation.selection_set.selections
            if isinstance(sel, FieldNode) and not sel.name.value.startswith("__")
        )
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.query_type
    return _Coster(schema, fragments, variables, estimate).selection(operation.selection_set, root,
                                                                     None if estimate else data)
