"""OData `$filter` for the Batch list operations, compiled to a Django `Q` (REFERENCE §8, §12).

The Batch rule: a filter names properties as Batch spells them (`executionInfo/exitCode`),
each property allows only some operators (`eq ne ge gt le lt`, `startswith(prop,'x')`) and
one literal type (String, Int, DateTime `DateTime'2024-01-01T00:00:00Z'`), conditions combine
with `and`, `or`, `not` and parentheses, and anything else is a 400
`InvalidQueryParameterValue` naming `$filter`. Enum values and ids compare
case-insensitively. A comparison never matches a property that has no value (a task without
an exit code matches neither `executionInfo/exitCode eq 0` nor `ne 0`).

`odata_query` lexes and parses (OData v4); this module rewrites the v2/v3 `DateTime'...'`
literals first, repairs a few tokens its lexer splits wrongly, and walks the tree with its own
visitor, since only this module knows the Batch names, operators and types.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)
from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor
from sly.lex import Token

from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, JobSchedule, Pool, Task
from tasks.timefmt import parse_datetime_wire

PARAM = "$filter"

# A filter is one URL parameter; these bounds keep a hostile one from exhausting Python's
# recursion limit in the visitor or SQLite's expression depth (1000) in the query. Chains of
# one operator (`a or b or c ...`) are flattened, so only `not` and mixed and/or nest.
MAX_CONDITIONS = 200
MAX_DEPTH = 64

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# --- property tables ---------------------------------------------------------------------


class Kind(Enum):
    KEY = "key"  # an id: the column holds lower(id), so the literal is lowercased
    FOLDED = "folded"  # case-insensitive text: lower(column) against the lowered literal
    TEXT = "text"  # case-sensitive text
    ENUM = "enum"  # one of `values`, case-insensitive, stored lowercase
    INT = "int"
    DATETIME = "datetime"
    BOOL = "bool"


class Null(Enum):
    NEVER = "never"
    NULL = "null"  # SQL NULL means "no value"
    BLANK = "blank"  # "" means "no value"


EQUALITY = frozenset({"eq", "ne"})
ORDERING = EQUALITY | {"ge", "gt", "le", "lt"}
STRING_OPS = ORDERING | {"startswith"}


@dataclass(frozen=True)
class Prop:
    field: str
    kind: Kind
    ops: frozenset[str]
    null: Null = Null.NEVER
    values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Schema:
    """The filterable properties of one list operation, keyed by their lowercased Batch name."""

    props: Mapping[str, tuple[str, Prop]]
    unsupported: frozenset[str]

    @classmethod
    def of(cls, props: dict[str, Prop], unsupported: Iterable[str] = ()) -> Schema:
        return cls(
            {name.lower(): (name, prop) for name, prop in props.items()},
            frozenset(name.lower() for name in unsupported),
        )


def _time(field: str, null: Null = Null.NEVER) -> Prop:
    return Prop(field, Kind.DATETIME, ORDERING, null)


def _enum(
    field: str,
    values: Iterable[str] | str,
    null: Null = Null.NEVER,
    ops: frozenset[str] = EQUALITY,
) -> Prop:
    """An enum property: `values` are a model's TextChoices values (or, for an enum the
    models do not hold, a space-separated string of them)."""
    return Prop(
        field,
        Kind.ENUM,
        ops,
        null,
        frozenset(values.split() if isinstance(values, str) else values),
    )


ID = Prop("id_key", Kind.KEY, STRING_OPS)

TASK = Schema.of(
    {
        "id": ID,
        "state": _enum("state", Task.State.values),
        "stateTransitionTime": _time("state_transition_time"),
        "creationTime": _time("creation_time"),
        "lastModified": _time("last_modified"),
        "lastModifiedTime": _time("last_modified"),
        "executionInfo/startTime": _time("start_time", Null.NULL),
        "executionInfo/endTime": _time("end_time", Null.NULL),
        "executionInfo/exitCode": Prop("exit_code", Kind.INT, ORDERING, Null.NULL),
        "executionInfo/result": _enum("result", Task.Result.values, Null.BLANK),
    }
)

JOB = Schema.of(
    {
        "id": ID,
        "state": _enum("state", Job.State.values),
        "stateTransitionTime": _time("state_transition_time"),
        "creationTime": _time("creation_time"),
        "lastModified": _time("last_modified"),
        "executionInfo/startTime": _time("start_time"),
        "executionInfo/endTime": _time("end_time", Null.NULL),
        # Pool ids are case-insensitive in Batch, but a job keeps the spelling it was given.
        "executionInfo/poolId": Prop("pool_id", Kind.FOLDED, STRING_OPS),
    }
)

JOB_SCHEDULE = Schema.of(
    {
        "id": ID,
        "state": _enum("state", JobSchedule.State.values),
        "stateTransitionTime": _time("state_transition_time"),
        "creationTime": _time("creation_time"),
        "lastModified": _time("last_modified"),
        "executionInfo/nextRunTime": _time("next_run_time", Null.NULL),
        "executionInfo/endTime": _time("end_time", Null.NULL),
    }
)

POOL = Schema.of(
    {
        "id": ID,
        "state": _enum("state", Pool.State.values),
        "stateTransitionTime": _time("state_transition_time"),
        "creationTime": _time("creation_time"),
        "lastModified": _time("last_modified"),
        "vmSize": Prop("vm_size", Kind.FOLDED, EQUALITY | {"startswith"}),
        "allocationState": _enum(
            "allocation_state", Pool.AllocationState.values, ops=frozenset({"eq"})
        ),
        "allocationStateTransitionTime": _time("allocation_state_transition_time", Null.NULL),
        "enableAutoScale": Prop("enable_auto_scale", Kind.BOOL, EQUALITY),
    },
    unsupported=["enableInterNodeCommunication"],
)

NODE = Schema.of(
    {
        "id": Prop("node_id", Kind.TEXT, STRING_OPS),
        # Batch's states a node here never enters filter to nothing, as valid values.
        "state": _enum(
            "state", [*ComputeNode.State.values, "upgradingos", "deallocated", "deallocating"]
        ),
        "stateTransitionTime": _time("state_transition_time"),
        "lastBootTime": _time("registered"),
        "allocationTime": _time("allocation_time", Null.NULL),
        # startTaskInfo is kept in wire form (a JSON column): its keys are looked up inside it.
        "startTaskInfo/state": Prop(
            "start_task_info__state",
            Kind.ENUM,
            frozenset({"eq"}),
            Null.NULL,
            frozenset({"running", "completed"}),
        ),
        "startTaskInfo/result": Prop(
            "start_task_info__result",
            Kind.ENUM,
            EQUALITY,
            Null.NULL,
            frozenset({"success", "failure"}),
        ),
        "startTaskInfo/exitCode": Prop("start_task_info__exitCode", Kind.INT, ORDERING, Null.NULL),
    },
    unsupported=["startTaskInfo/startTime", "startTaskInfo/endTime"],
)

NODE_COUNTS = Schema.of({"poolId": Prop("id_key", Kind.KEY, frozenset({"eq"}))})

SUPPORTED_IMAGE = Schema.of(
    {
        "osType": _enum("os_type", ["linux", "windows"]),
        "verificationType": _enum("verification_type", ["verified", "unverified"]),
        "nodeAgentSKUId": Prop("node_agent_sku_id", Kind.TEXT, EQUALITY),
    }
)

FILES = Schema.of({"name": Prop("name", Kind.TEXT, frozenset({"startswith"}))})


# --- public interface --------------------------------------------------------------------


def task_filter(text: str) -> Q:
    """`$filter` of List Tasks."""
    return _compile(text, TASK)


def job_filter(text: str) -> Q:
    """`$filter` of List Jobs."""
    return _compile(text, JOB)


def job_schedule_filter(text: str) -> Q:
    """`$filter` of List Job Schedules."""
    return _compile(text, JOB_SCHEDULE)


def pool_filter(text: str) -> Q:
    """`$filter` of List Pools."""
    return _compile(text, POOL)


def node_filter(text: str) -> Q:
    """`$filter` of List Nodes."""
    return _compile(text, NODE)


def node_counts_filter(text: str) -> Q:
    """`$filter` of List Pool Node Counts: `poolId eq 'p'`."""
    return _compile(text, NODE_COUNTS)


def supported_image_filter(text: str) -> Q:
    """`$filter` of List Supported Images (osType, verificationType, nodeAgentSKUId), to
    apply with `matches`: the list is not in the database."""
    return _compile(text, SUPPORTED_IMAGE)


def filter_of(text: str, schema: Schema) -> Q:
    """`$filter` of a list operation whose schema is built beside its view (List Job
    Preparation and Release Task Status: tasks.api.job_prep), with `datetime_property` and
    `enum_property` for its properties. Raises 400 InvalidQueryParameterValue."""
    return _compile(text, schema)


def datetime_property(field: str, null: Null = Null.NEVER) -> Prop:
    """A filterable date-time property (eq ne ge gt le lt) stored in `field`."""
    return Prop(field, Kind.DATETIME, ORDERING, null)


def enum_property(field: str, values: Iterable[str], null: Null = Null.NEVER) -> Prop:
    """A filterable enum property (eq ne) stored in `field`, one of `values` (a model's
    TextChoices' .values)."""
    return Prop(field, Kind.ENUM, EQUALITY, null, frozenset(values))


def matches(q: Q, item: object) -> bool:
    """Whether an object's attributes satisfy a Q this module compiled from equality
    conditions on text and enum properties (supported_image_filter)."""
    results = []
    for child in q.children:
        if isinstance(child, Q):
            results.append(matches(child, item))
            continue
        lookup, value = child
        field, _, how = lookup.partition("__")
        if how not in ("", "exact"):
            raise ValueError(f"matches() compares for equality only, not {lookup}")
        results.append(getattr(item, field) == value)
    result = all(results) if q.connector == Q.AND else any(results)
    return result != q.negated


def file_name_prefix(text: str) -> str:
    """`$filter` of List Task Files: only `startswith(name,'x')`, which gives `'x'`."""
    if not text or not text.strip():
        return ""
    try:
        tree = _parse(text)
        if not (isinstance(tree, ast.Call) and tree.func.full_name() == "startswith"):
            raise Rejected("only startswith(name,'prefix') is supported")
        _, prop, _, literal = _comparison_parts(tree, FILES)
        return _check_string(prop, "name", literal)
    except Rejected as exc:
        raise BatchError.invalid_query(PARAM, text, exc.reason) from None


# --- compile -----------------------------------------------------------------------------


class Rejected(Exception):
    """A filter Batch would refuse; `reason` becomes the error's Reason value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _compile(text: str, schema: Schema) -> Q:
    # A blank $filter restricts nothing, as if it were absent.
    if not text or not text.strip():
        return Q()
    try:
        return _QBuilder(schema).visit(_parse(text))
    except Rejected as exc:
        raise BatchError.invalid_query(PARAM, text, exc.reason) from None


def _parse(text: str) -> ast._Node:
    source = _rewrite_datetimes(text.strip())
    try:
        tokens = _repair_tokens(source, ODataLexer().tokenize(source))
        return ODataParser().parse(tokens)
    except Rejected:
        raise
    except Exception as exc:  # noqa: BLE001
        # The library reports syntax errors with its own exceptions, but some malformed
        # input reaches bugs in it (AttributeError on `f(a=1,b=2,c=3)`): all are a 400.
        raise Rejected(f"the filter is not valid OData: {_describe(source, exc)}") from None


def _describe(source: str, exc: Exception) -> str:
    token = getattr(exc, "token", None)
    if token is not None:
        return f"unexpected input at '{source[token.index : token.index + 20]}'"
    if getattr(exc, "eof", False):
        return "unexpected end of the filter"
    if isinstance(exc, ODataException):
        return str(exc)
    return "syntax error"


# --- DateTime literals -------------------------------------------------------------------

# Batch writes OData v2/v3 literals (`DateTime'...'`); odata_query lexes only the v4 form
# (an unquoted ISO date-time). A quoted string is matched as a whole first, so text inside
# one (`id eq 'DateTime''x'''`) is never rewritten.
_LITERALS = re.compile(r"(?<![\w.])datetime'(?P<dt>[^']*)'|'(?:[^']|'')*'", re.IGNORECASE)


def _rewrite_datetimes(text: str) -> str:
    return _LITERALS.sub(_v4_datetime, text)


def _v4_datetime(match: re.Match[str]) -> str:
    raw = match.group("dt")
    if raw is None:
        return match.group(0)
    value = _datetime(raw)
    # Six fractional digits: Python keeps microseconds, the 7th digit of .NET is dropped.
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _datetime(raw: str) -> datetime:
    try:
        value = parse_datetime_wire(raw)
    except (ValueError, OverflowError):
        raise Rejected(f"'{raw}' is not a valid DateTime") from None
    return value.astimezone(UTC)


# --- token repairs -----------------------------------------------------------------------

# odata_query's lexer takes these keywords without requiring a word boundary, so
# `allocationState` lexes as ALL + `ocationState` and `nullable` as NULL + `able`.
_KEYWORD_PREFIXES = {"ALL", "ANY", "NULL", "BOOLEAN"}
_FUNCTIONS = {name.lower(): name for name in ODATA_FUNCTIONS}


def _repair_tokens(source: str, tokens: Iterable[Token]) -> Iterator[Token]:
    """Rejoin identifiers split at a keyword, accept `not(` (OData wants a space there, but it
    is a common spelling), and match function names case-insensitively, like property names."""
    pending: Token | None = None
    for token in tokens:
        if pending is None:
            pending = token
            continue
        if _splits_identifier(source, pending, token):
            pending = _joined_identifier(source, pending, token)
            continue
        if token.type == "(" and pending.type == "ODATA_IDENTIFIER":
            pending = _call_head(pending)
        yield pending
        pending = token
    if pending is not None:
        yield pending


def _splits_identifier(source: str, first: Token, second: Token) -> bool:
    if first.type not in _KEYWORD_PREFIXES or second.type != "ODATA_IDENTIFIER":
        return False
    # Nothing but word characters between them: one word the lexer cut in two.
    return re.fullmatch(r"\w+", source[first.index : second.index]) is not None


def _joined_identifier(source: str, first: Token, second: Token) -> Token:
    name = source[first.index : second.index] + second.value.full_name()
    *namespace, last = name.split(".")
    return _token("ODATA_IDENTIFIER", ast.Identifier(last, tuple(namespace)), first)


def _call_head(token: Token) -> Token:
    ident: ast.Identifier = token.value
    if ident.namespace:
        return token
    if ident.name.lower() == "not":
        return _token("NOT", ast.Not(), token)
    canonical = _FUNCTIONS.get(ident.name.lower())
    if canonical is None or canonical == ident.name:
        return token
    return _token("ODATA_IDENTIFIER", ast.Identifier(canonical), token)


def _token(kind: str, value: Any, like: Token) -> Token:
    token = Token()
    token.type = kind
    token.value = value
    token.lineno = like.lineno
    token.index = like.index
    return token


# --- AST to Q ----------------------------------------------------------------------------

_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_COMPARATORS = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.In: "in",
}
_LOOKUP_NAMES = {
    "eq": "exact",
    "gt": "gt",
    "ge": "gte",
    "lt": "lt",
    "le": "lte",
    "startswith": "startswith",
}
_LOOKUP_CLASSES = {
    "eq": Exact,
    "gt": GreaterThan,
    "ge": GreaterThanOrEqual,
    "lt": LessThan,
    "le": LessThanOrEqual,
    "startswith": StartsWith,
}


class _QBuilder(NodeVisitor):
    """Turns a parsed filter into a Q, refusing whatever the schema does not allow."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.depth = 0
        self.conditions = 0

    def visit(self, node: ast._Node) -> Q:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Rejected("the filter is nested too deeply")
        try:
            return super().visit(node)
        finally:
            self.depth -= 1

    def generic_visit(self, node: ast._Node) -> Q:
        raise Rejected(f"{_node_name(node)} is not a condition")

    def visit_BoolOp(self, node: ast.BoolOp) -> Q:
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        return functools.reduce(combine, (self.visit(part) for part in _operands(node)))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Q:
        if not isinstance(node.op, ast.Not):
            raise Rejected("arithmetic is not supported")
        return ~self.visit(node.operand)

    def visit_Compare(self, node: ast.Compare) -> Q:
        return self._condition(*_comparison_parts(node, self.schema))

    def visit_Call(self, node: ast.Call) -> Q:
        if node.func.full_name() != "startswith":
            raise Rejected(f"the function '{node.func.full_name()}' is not supported")
        return self._condition(*_comparison_parts(node, self.schema))

    def _condition(self, name: str, prop: Prop, op: str, literal: ast._Node) -> Q:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise Rejected(f"the filter has more than {MAX_CONDITIONS} conditions")
        return _condition_q(prop, op, _literal_value(name, prop, literal))


def _operands(node: ast.BoolOp) -> list[ast._Node]:
    """The operands of a chain of one boolean operator, left to right, walked without
    recursion: the parser nests `a or b or c` one level per operator."""
    kind = type(node.op)
    operands: list[ast._Node] = []
    stack: list[ast._Node] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.BoolOp) and type(item.op) is kind:
            stack += [item.right, item.left]
        else:
            operands.append(item)
    return operands


def _node_name(node: ast._Node) -> str:
    if isinstance(node, ast._Literal):
        return "a literal"
    if isinstance(node, ast.Identifier | ast.Attribute):
        return f"the property '{_path(node)}'"
    return "this expression"


def _comparison_parts(
    node: ast.Compare | ast.Call, schema: Schema
) -> tuple[str, Prop, str, ast._Node]:
    """(Batch name, property, operator, literal) of `prop op literal` or `startswith(prop, x)`."""
    if isinstance(node, ast.Call):
        if len(node.args) != 2:
            raise Rejected("startswith takes a property and a string")
        op, left, right = "startswith", node.args[0], node.args[1]
    else:
        op, left, right = _COMPARATORS[type(node.comparator)], node.left, node.right
        # `0 lt executionInfo/exitCode` is the same condition written the other way round.
        if _is_property(right) and not _is_property(left) and op in _FLIPPED:
            op, left, right = _FLIPPED[op], right, left
    if not _is_property(left):
        raise Rejected("a condition must compare a property with a literal")
    name, prop = _property(_path(left), schema)
    if op not in prop.ops:
        raise Rejected(f"the operator '{op}' is not allowed on the property '{name}'")
    if not isinstance(right, ast._Literal) or isinstance(right, ast.List):
        raise Rejected(f"the property '{name}' must be compared with a literal")
    return name, prop, op, right


def _is_property(node: ast._Node) -> bool:
    return isinstance(node, ast.Identifier | ast.Attribute)


def _path(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier):
        return node.full_name()
    if isinstance(node, ast.Attribute):
        return f"{_path(node.owner)}/{node.attr}"
    raise Rejected("a condition must compare a property with a literal")


def _property(path: str, schema: Schema) -> tuple[str, Prop]:
    # Batch spells names in camelCase; clients that change the case still mean the same one.
    found = schema.props.get(path.lower())
    if found is not None:
        return found
    if path.lower() in schema.unsupported:
        raise Rejected(f"filtering on the property '{path}' is not supported by batchsite")
    raise Rejected(f"'{path}' is not a property that can be filtered on")


# --- literals ----------------------------------------------------------------------------


def _literal_value(name: str, prop: Prop, literal: ast._Node) -> Any:
    if prop.kind is Kind.BOOL:
        if not isinstance(literal, ast.Boolean):
            raise Rejected(f"the property '{name}' takes a Boolean literal (true or false)")
        return literal.py_val
    if prop.kind is Kind.INT:
        return _check_int(name, literal)
    if prop.kind is Kind.DATETIME:
        return _check_datetime(name, literal)
    text = _check_string(prop, name, literal)
    if prop.kind is Kind.ENUM:
        return _check_enum(prop, name, text)
    return text.lower() if prop.kind in (Kind.KEY, Kind.FOLDED) else text


def _check_int(name: str, literal: ast._Node) -> int:
    if not isinstance(literal, ast.Integer):
        raise Rejected(f"the property '{name}' takes an Int literal")
    value = literal.py_val
    # Beyond int32 the database driver would fail at query time, i.e. a 500.
    if not INT32_MIN <= value <= INT32_MAX:
        raise Rejected(f"{value} is out of range for the property '{name}'")
    return value


def _check_datetime(name: str, literal: ast._Node) -> datetime:
    if not isinstance(literal, ast.DateTime):
        raise Rejected(
            f"the property '{name}' takes a DateTime literal, e.g. DateTime'2024-01-01T00:00:00Z'"
        )
    return _datetime(literal.val)


def _check_string(prop: Prop, name: str, literal: ast._Node) -> str:
    if not isinstance(literal, ast.String):
        raise Rejected(f"the property '{name}' takes a quoted String literal")
    # PostgreSQL refuses NUL in text parameters when the query runs.
    if "\x00" in literal.val:
        raise Rejected("a string literal must not contain NUL")
    return literal.val


def _check_enum(prop: Prop, name: str, text: str) -> str:
    value = text.lower()
    if value not in prop.values:
        allowed = ", ".join(sorted(prop.values))
        raise Rejected(f"'{text}' is not a valid value of '{name}' (one of: {allowed})")
    return value


# --- conditions --------------------------------------------------------------------------


def _condition_q(prop: Prop, op: str, value: Any) -> Q:
    if op == "ne":
        # OData: a property without a value is neither equal nor unequal to anything.
        return _has_value(prop) & ~_lookup(prop, "eq", value)
    # eq/gt/... never match NULL in SQL; a blank "no value" can only be hit by eq '' and
    # no enum has '' as a value.
    return _lookup(prop, op, value)


def _lookup(prop: Prop, op: str, value: Any) -> Q:
    if prop.kind is Kind.FOLDED:
        return Q(_LOOKUP_CLASSES[op](Lower(prop.field), value))
    return Q(**{f"{prop.field}__{_LOOKUP_NAMES[op]}": value})


def _has_value(prop: Prop) -> Q:
    if prop.null is Null.NULL:
        return Q(**{f"{prop.field}__isnull": False})
    if prop.null is Null.BLANK:
        return ~Q(**{prop.field: ""})
    return Q()
