"""Hand-written SQL for the node agents' hot path (claim, finish, counters).

Every agent runs a dozen statements per batch of tasks it claims and reports. Through the
ORM, compiling a query costs ten times what SQLite takes to answer it, and even a
hand-written statement pays for Django's cursor layers on every call. These helpers
build each statement once per connection and hand it straight to the driver (still
inside Django's transaction and error mapping): on SQLite to sqlite3; on PostgreSQL to a
psycopg cursor that binds on the server, so that a statement run again is a prepared
statement (parsed and planned once per connection) instead of Django's client-side
binding, which sends and parses the whole text every time. Whenever something observes
queries (a test's CaptureQueriesContext, DEBUG logging, an execute wrapper), they go
through Django's cursor like any other query, so they are seen.

This is the one place for the hot path's SQLite/PostgreSQL differences: row locks
(`lock=` below), padded IN lists (pks_where), set-based UPDATEs (update_rows), the
statement cache and its renewal (REPLAN_FIRST).
"""

from __future__ import annotations

import datetime
import re
import time
from types import SimpleNamespace

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils.duration import duration_microseconds

UTC = datetime.UTC


def conn():
    """The connection itself: `django.db.connection` is a proxy that looks the connection
    up (a thread-local) on every attribute, thousands of times per batch on this path."""
    return connections[DEFAULT_DB_ALIAS]


def row_locks() -> bool:
    """PostgreSQL takes row locks (SKIP LOCKED); SQLite serializes whole transactions."""
    return conn().features.has_select_for_update_skip_locked


def cache(c=None) -> dict:
    """Statements, converters and preparers, per connection (they are bound to it)."""
    c = c or conn()
    found = getattr(c, "_batchsite_sql", None)
    if found is None:
        found = c._batchsite_sql = {}
    return found


# Row lock modes (PostgreSQL; SQLite serializes writers and takes none). FOR UPDATE
# excludes every other lock; FOR KEY SHARE only FOR UPDATE (what the API's operations
# on a job take: terminate, disable, delete, add), not the counters' UPDATE (which takes
# FOR NO KEY UPDATE) nor other agents' KEY SHARE.
UPDATE, NO_KEY_UPDATE, KEY_SHARE = "UPDATE", "NO KEY UPDATE", "KEY SHARE"

# A prepared statement keeps the plan PostgreSQL made for the tables as they were then: on
# a new database, for empty tables (a sequential scan of the attempts for the node's
# slots, 91 buffers a call after 6,000 tasks, where the index takes 3). So the hot path's
# statements are prepared afresh after 1 s, 2 s, 4 s ... and then every REPLAN_MAX s.
REPLAN_FIRST, REPLAN_MAX = 1.0, 120.0

# Up to this many pks, pks_where() writes an IN list (PostgreSQL).
IN_LIST_MAX = 64

# A statement the hot-path cursor runs this often on one connection is prepared there.
PREPARE_AFTER = 2


def run(sql: str, params, *, many: bool = False, c=None) -> tuple[list, int]:
    """Execute one statement (`%s` placeholders); return (rows fetched, rowcount)."""
    c = c or conn()
    # What Django's cursor does first (its _cursor()): a kept connection is checked once
    # per request where CONN_HEALTH_CHECKS is on, so one the server closed (a restart) is
    # replaced instead of failing the request; a no-op once checked or where it is off.
    c.close_if_health_check_failed()
    observed = c.execute_wrappers or c.queries_logged
    if c.vendor == "postgresql" and not observed:
        return _run_postgresql(c, sql, params, many)
    if c.vendor == "sqlite" and not observed:
        statements = cache(c)
        native = statements.get(sql)
        if native is None:
            native = statements[sql] = sql.replace("%s", "?")
        if c.connection is None:
            c.ensure_connection()
        if c.needs_rollback:
            c.validate_no_broken_transaction()  # raises, as Django's cursor would
        try:
            cursor = (
                c.connection.executemany(native, params)
                if many
                else c.connection.execute(native, params)
            )
            rows = cursor.fetchall()
            cursor.close()
            return rows, cursor.rowcount
        except c.Database.Error:
            with c.wrap_database_errors:  # Django's exception for it, as its cursor raises
                raise
    if "%b" in sql:
        sql = _text_placeholders(sql)
    with c.cursor() as cursor:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return (cursor.fetchall() if cursor.description else []), cursor.rowcount


def _text_placeholders(sql: str) -> str:
    """A statement's binary placeholders (%b, PostgreSQL) as text ones (%s), for Django's
    cursor, which binds on the client; `%%` stays a percent sign."""
    return re.sub(r"%([%b])", lambda m: "%%" if m.group(1) == "%" else "%s", sql)


def _run_postgresql(c, sql: str, params, many: bool) -> tuple[list, int]:
    """run() on PostgreSQL: a server-binding psycopg cursor of the connection's own (its
    transaction is Django's), whose statements are prepared once seen PREPARE_AFTER
    times. Django's cursors bind on the client and are never prepared: their threshold
    is the connection's, which Django leaves off, so it is set here for this cursor."""
    from psycopg.pq import ExecStatus  # PostgreSQL only: psycopg is not imported on SQLite

    if c.connection is None:
        c.ensure_connection()
    if c.needs_rollback:
        c.validate_no_broken_transaction()  # raises, as Django's cursor would
    raw = c.connection
    cursor = c.__dict__.get("_batchsite_cursor")
    if cursor is None or cursor.connection is not raw or cursor.closed:
        import psycopg

        raw.prepare_threshold = PREPARE_AFTER
        cursor = c._batchsite_cursor = psycopg.Cursor(raw)
        c._batchsite_replan = SimpleNamespace(
            due=time.monotonic() + REPLAN_FIRST, interval=REPLAN_FIRST, generation=0, suffix=""
        )
    replan = c._batchsite_replan
    if time.monotonic() >= replan.due:
        # New statement texts: psycopg prepares them afresh, and deallocates the old ones
        # as they fall out of its cache (prepared_max).
        replan.due = time.monotonic() + replan.interval
        replan.interval = min(replan.interval * 2, REPLAN_MAX)
        replan.generation += 1
        replan.suffix = f" /* plan {replan.generation} */"
    sql += replan.suffix
    with c.wrap_database_errors:  # Django's exceptions, as its cursor raises them
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        # Whether rows came back, from the result itself: `description` builds a Column
        # per column on every read (13 us for 9 columns, once per statement here).
        result = cursor.pgresult
        returned = result is not None and (result.nfields or result.status == ExecStatus.TUPLES_OK)
        return (cursor.fetchall() if returned else []), cursor.rowcount


def literal(value) -> str:
    """A constant of the code (a state's name, a flag) written into a hot-path statement
    instead of bound: the plan a prepared statement keeps is then made for it. Bound, it
    is planned for any value, and PostgreSQL chose between that generic plan and planning
    every execution afresh by the costs it saw, differently from one run to the next
    (pg_stat_statements: the node's slots and the claim's task page planned on 2,000 of
    3,000 calls in one run, 8 in the next). Only names and booleans: never a value
    that came from a request."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str) and value.replace("_", "").isalnum() and value.isascii():
        return f"'{value}'"
    raise ValueError(f"not a literal for a statement: {value!r}")


def pk_in(pks) -> str:
    return "{id} IN (" + ", ".join(["%s"] * len(pks)) + ")"


def pks_where(pks, column: str = "id") -> tuple[str, list]:
    """A where clause for rows whose `column` is one of `pks`, and its parameters: `IN
    (...)` on SQLite; on PostgreSQL an IN list padded to a power-of-two length up to
    IN_LIST_MAX (a few statements to prepare), `= ANY(array)` past it."""
    pks = list(pks)
    if conn().vendor == "postgresql":
        if not pks or len(pks) > IN_LIST_MAX:
            return "{" + column + "} = ANY(%s)", [pks]
        # A short list as IN of a power-of-two length (the last pk repeated), so that a
        # statement is prepared for a few lengths only and its generic plan is used.
        # Behind `= ANY(array)` the planner cannot count the array's elements: it
        # estimates ten, judges the generic plan of the report's join worse than a plan for
        # the actual array, and planned it again on every execution (pg_stat_statements:
        # 3,000 plans in 3,000 calls, 0.11 ms each).
        size = 1 << (len(pks) - 1).bit_length()
        pks += [pks[-1]] * (size - len(pks))
    return "{" + column + "} IN (" + ", ".join(["%s"] * len(pks)) + ")", pks


def select_models(
    model,
    fields: list[str],
    where: str,
    params: list,
    *,
    order: str = "",
    limit: int | None = None,
    lock: bool | str = False,
) -> list:
    """`model.objects.filter(...).only(*fields).order_by(...)[:limit]` (with
    select_for_update(skip_locked=True, of=("self",)) when `lock`, on PostgreSQL; `lock`
    may name a weaker mode, KEY_SHARE or NO_KEY_UPDATE) as one
    hand-written SELECT whose rows become model instances as the ORM makes them (the
    backend's and the fields' converters, then from_db). `where` and `order` name
    columns as {field}; the fields not selected are deferred, as with only()."""
    c = conn()
    statements = cache(c)
    # On PostgreSQL the limit is written into the statement (one prepared statement per
    # limit; the claim's pages take a few): bound, the generic plan is costed for an
    # unknown limit, judged worse than a plan for the actual one, and the claim's task page
    # was planned afresh on 1,167 of 1,499 calls (pg_stat_statements, ~0.16 ms each).
    inline = limit is not None and c.vendor == "postgresql"
    written = ("LIMIT", int(limit)) if inline else limit is not None  # never equal to a bool
    key = (model, tuple(fields), where, order, written, lock)
    entry = statements.get(key)
    if entry is None:
        table = c.ops.quote_name(model._meta.db_table)
        columns = _columns(c, model, "")
        part = _part(c, model, fields, table)
        sql = f"SELECT {', '.join(part[1])} FROM {table} WHERE {where.format(**columns)}"
        if order:
            sql += f" ORDER BY {order.format(**columns)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}" if inline else " LIMIT %s"
        if lock and row_locks():
            sql += f" FOR {UPDATE if lock is True else lock} OF {table} SKIP LOCKED"
        entry = statements[key] = (sql, part)
    sql, part = entry
    if limit is not None and not inline:
        params = [*params, limit]
    rows, _ = run(sql, params, c=c)
    make = _maker(model)
    return [_from_row(c, part, list(row), make) for row in rows]


def select_with(
    model,
    fields: list[str],
    joins: list[tuple[str, list[str]]],
    where: str,
    params: list,
    *,
    order: str = "",
    locks: tuple[str, ...] = (),
) -> list[tuple]:
    """Like select_models, with the rows each named foreign key points to in the same
    SELECT (inner joins): one tuple per row, (instance, related instance, ...). A related
    row met twice is one instance. `where` and `order` name the base model's columns.
    `locks` gives a lock mode for the base row and each joined row, in that order ("" for
    none), on PostgreSQL: a row whose rows another writer holds is skipped whole."""
    c = conn()
    statements = cache(c)
    key = (
        "with",
        model,
        tuple(fields),
        tuple((n, tuple(f)) for n, f in joins),
        where,
        order,
        locks,
    )
    entry = statements.get(key)
    if entry is None:
        qn = c.ops.quote_name
        meta = model._meta
        columns = _columns(c, model, "b.")
        parts = [_part(c, model, fields, "b")]
        tables = f"{qn(meta.db_table)} b"
        for i, (name, related_fields) in enumerate(joins):
            field = meta.get_field(name)
            other = field.related_model
            alias = f"r{i}"
            parts.append(_part(c, other, related_fields, alias))
            tables += (
                f" INNER JOIN {qn(other._meta.db_table)} {alias} "
                f"ON {alias}.{qn(other._meta.pk.column)} = b.{qn(field.column)}"
            )
        sql = (
            f"SELECT {', '.join(col for part in parts for col in part[1])} FROM {tables} "
            f"WHERE {where.format(**columns)}"
        )
        if order:
            sql += f" ORDER BY {order.format(**columns)}"
        if row_locks():
            for alias, mode in zip(
                ["b", *(f"r{i}" for i in range(len(joins)))], locks, strict=False
            ):
                if mode:
                    sql += f" FOR {mode} OF {alias} SKIP LOCKED"
        entry = statements[key] = (sql, parts)
    sql, parts = entry
    rows, _ = run(sql, params, c=c)
    makers = [_maker(part[0]) for part in parts]
    seen: list[dict] = [{} for _ in parts]  # related instances by pk
    out = []
    for row in rows:
        start, objs = 0, []
        for part, make, known in zip(parts, makers, seen, strict=True):
            values = list(row[start : start + len(part[1])])
            start += len(part[1])
            obj = known.get(values[0]) if objs else None  # the pk comes first in model order
            if obj is None:
                obj = _from_row(c, part, values, make)
                if objs:
                    known[obj.pk] = obj
            objs.append(obj)
        out.append(tuple(objs))
    return out


def select_optional(
    model, fields: list[str], other, other_fields: list[str], on: str, where: str, params: list
) -> tuple | None:
    """The first row of `model` matching `where`, with the row of `other` matching `on` in
    the same SELECT (a left join): (instance, other instance or None), or None when no
    `model` row matches. `on` and `where` name columns as {b.field} (the base model) and
    {o.field} (the other); their parameters come in that order. One statement where two
    lookups would make two (e.g. a job and one of its tasks)."""
    c = conn()
    statements = cache(c)
    key = ("optional", model, tuple(fields), other, tuple(other_fields), on, where)
    entry = statements.get(key)
    if entry is None:
        qn = c.ops.quote_name
        b, o = (
            SimpleNamespace(**_columns(c, model, "b.")),
            SimpleNamespace(**_columns(c, other, "o.")),
        )
        parts = [_part(c, model, fields, "b"), _part(c, other, other_fields, "o")]
        sql = (
            f"SELECT {', '.join(col for part in parts for col in part[1])} "
            f"FROM {qn(model._meta.db_table)} b LEFT JOIN {qn(other._meta.db_table)} o "
            f"ON {on.format(b=b, o=o)} WHERE {where.format(b=b, o=o)} LIMIT 1"
        )
        entry = statements[key] = (sql, parts)
    sql, (part, other_part) = entry
    rows, _ = run(sql, params, c=c)
    if not rows:
        return None
    row = list(rows[0])
    split = len(part[1])
    found = _from_row(c, part, row[:split], _maker(model))
    rest = row[split:]
    if rest[0] is None:  # the other's pk: no row joined
        return found, None
    return found, _from_row(c, other_part, rest, _maker(other))


def _columns(c, model, prefix: str) -> dict[str, str]:
    """The quoted column of each field, by name and attribute name (and "id" for the
    pk), for the {field} placeholders of a where or order clause."""
    meta = model._meta
    qn = c.ops.quote_name
    columns = {f.name: f"{prefix}{qn(f.column)}" for f in meta.concrete_fields}
    columns.update({f.attname: f"{prefix}{qn(f.column)}" for f in meta.concrete_fields})
    columns["id"] = f"{prefix}{qn(meta.pk.column)}"
    return columns


def _part(c, model, fields: list[str], qualifier: str) -> tuple:
    """A model's share of a SELECT: (model, its columns qualified by the table or alias,
    attribute names, converters), the pk and `fields` in the model's field order, which
    from_db expects."""
    meta = model._meta
    qn = c.ops.quote_name
    wanted = {meta.pk, *(meta.get_field(f) for f in fields)}
    selected = [f for f in meta.concrete_fields if f in wanted]
    converters = []
    for i, f in enumerate(selected):
        col = f.get_col(meta.db_table)
        found = c.ops.get_db_converters(col) + col.get_db_converters(c)
        if found:
            converters.append((i, col, found))
    return (
        model,
        [f"{qualifier}.{qn(f.column)}" for f in selected],
        [f.attname for f in selected],
        converters,
    )


def _from_row(c, part: tuple, values: list, make):
    """The instance a row's share of values makes, after the converters."""
    model, _, names, converters = part
    for i, col, found in converters:
        value = values[i]
        if value is not None:  # every converter here maps None to None
            for convert in found:
                value = convert(value, col, c)
        values[i] = value
    return make(c.alias, names, values) if make else _instance(model, c.alias, names, values)


def _maker(model):
    """from_db when something listens to the model's init signals, else None (the
    instances are made without __init__)."""
    return model.from_db if init_signals(model) else None


def link(obj, name: str, related) -> None:
    """`obj.<name> = related` for a foreign key, as its descriptor sets it (the id, and
    the object in the instance's cache) without the descriptor's checks, which cost
    more than the rest of an agent's bookkeeping for the task."""
    obj.__dict__[f"{name}_id"] = related.pk
    obj._state.fields_cache[name] = related


def init_signals(model) -> bool:
    """Whether anything listens to the model's pre_init/post_init (then instances are
    made by the constructor after all)."""
    return bool(signals.pre_init.receivers or signals.post_init.receivers) and (
        signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)
    )


def _instance(model, db: str, names: list[str], values: list):
    """`model.from_db(db, names, values)` without the generic __init__ (a setattr per
    field through its descriptor): the attributes go straight into the instance, as the
    descriptors would put them in a new instance; fields not named stay deferred."""
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, values, strict=True))
    state = obj._state = ModelState()
    state.adding, state.db = False, db
    return obj


def update_rows(
    model,
    fields: list[str],
    rows: list[tuple[int, list]],
    *,
    only_if: tuple[str, object] | None = None,
) -> int:
    """UPDATE one row per (pk, values), optionally only where a column still has a value
    (compare-and-set): what bulk_update does, without compiling a CASE expression per
    field and row. Returns the rows updated. The pks must differ. On SQLite one
    executemany; on PostgreSQL one statement for all the rows (_update_from_values)."""
    if not rows:
        return 0
    c = conn()
    if c.vendor == "postgresql":
        return _update_from_values(c, model, fields, rows, only_if)
    statements = cache(c)
    key = ("update", model, tuple(fields), only_if)
    entry = statements.get(key)
    if entry is None:
        meta = model._meta
        columns = [meta.get_field(name) for name in fields]
        qn = c.ops.quote_name
        sql = (
            f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(col.column)} = %s' for col in columns)} "
            f"WHERE {qn(meta.pk.column)} = %s"
        )
        condition, extra = _only_if(c, model, only_if, "")
        entry = statements[key] = (sql + condition, preparers(model, fields), extra)
    sql, preps, extra = entry
    params = [
        [prep(v) for prep, v in zip(preps, values, strict=True)] + [pk] + extra
        for pk, values in rows
    ]
    _, count = run(sql, params, many=True, c=c)
    return count


def update_rows_together(parts: list[tuple]) -> list[int]:
    """update_rows() of several (model, fields, rows) at once, the rows updated by each
    returned in order. On PostgreSQL one statement (each UPDATE a data-modifying WITH
    query of it): a report wrote its attempts and its tasks, a round trip each. The parts
    must not name the same row twice."""
    c = conn()
    todo = [(i, part) for i, part in enumerate(parts) if part[2]]
    counts = [0] * len(parts)
    if c.vendor != "postgresql" or len(todo) < 2:
        for i, (model, fields, rows) in todo:
            counts[i] = update_rows(model, fields, rows)
        return counts
    statements = cache(c)
    key = ("update together", tuple((m, tuple(f), len(r)) for _, (m, f, r) in todo))
    entry = statements.get(key)
    if entry is None:
        built = [_values_update(c, m, f, len(r), None) for _, (m, f, r) in todo]
        names = [f"u{n}" for n in range(len(built))]
        sql = (
            "WITH "
            + ", ".join(f"{n} AS ({b[0]} RETURNING 1)" for n, b in zip(names, built, strict=True))
            + " SELECT "
            + ", ".join(f"(SELECT COUNT(*) FROM {n})" for n in names)
        )
        entry = statements[key] = (sql, built)
    sql, built = entry
    params = []
    for (_, (_, _, rows)), (_, preps, extra) in zip(todo, built, strict=True):
        params += _values_params(preps, rows, extra)
    [found], _ = run(sql, params, c=c)
    for (i, _), count in zip(todo, found, strict=True):
        counts[i] = count
    return counts


def _update_from_values(c, model, fields, rows, only_if) -> int:
    """update_rows() on PostgreSQL: `UPDATE t SET f = v.f ... FROM (VALUES (...), ...) v
    WHERE t.id = v.id`, prepared once per number of rows. An executemany is one execution
    per row on the server (each with its executor start, snapshot and result) and, in
    psycopg, a pipeline entered and synced for every call; a report or a claim of two
    tasks wrote its tasks and its attempts that way, four executions in two round trips."""
    sql, preps, extra = _values_update(c, model, fields, len(rows), only_if)
    _, count = run(sql, _values_params(preps, rows, extra), c=c)
    return count


def _values_update(c, model, fields, count: int, only_if) -> tuple[str, list, list]:
    """The UPDATE ... FROM (VALUES ...) of `count` rows (cached), its fields' preparers and
    the parameters that follow the rows' (only_if's)."""
    statements = cache(c)
    key = ("update values", model, tuple(fields), only_if, count)
    entry = statements.get(key)
    if entry is None:
        meta = model._meta
        qn = c.ops.quote_name
        columns = [meta.pk, *(meta.get_field(name) for name in fields)]
        # Each value cast to its column's type (a length left out: an explicit cast to
        # varchar(n) would cut a longer string where the column refuses it): a bound
        # None, or a string, is otherwise of no type and VALUES would make it text.
        casts = [re.sub(r"\(\d+\)", "", col.db_type(c)) for col in columns]
        row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
        names = [f"c{i}" for i in range(len(columns))]
        sql = (
            f"UPDATE {qn(meta.db_table)} AS t SET "
            + ", ".join(
                f"{qn(col.column)} = v.{n}" for col, n in zip(columns[1:], names[1:], strict=True)
            )
            + f" FROM (VALUES {', '.join([row] * count)}) AS v({', '.join(names)}) "
            f"WHERE t.{qn(meta.pk.column)} = v.{names[0]}"
        )
        condition, extra = _only_if(c, model, only_if, "t.")
        entry = statements[key] = (sql + condition, preparers(model, fields), extra)
    return entry


def _only_if(c, model, only_if, qualifier: str) -> tuple[str, list]:
    """update_rows' compare-and-set condition (`AND column = %s`) and its parameter."""
    if only_if is None:
        return "", []
    field = model._meta.get_field(only_if[0])
    column = c.ops.quote_name(field.column)
    return f" AND {qualifier}{column} = %s", [field.get_db_prep_save(only_if[1], c)]


def _values_params(preps, rows, extra) -> list:
    params = []
    for pk, values in rows:
        params.append(pk)
        params += [prep(v) for prep, v in zip(preps, values, strict=True)]
    return params + extra


def preparers(model, names: list[str]) -> list:
    """For each field, a function from a Python value to its database value, as
    `field.get_db_prep_save(value, connection)` makes it, minus the checks that only
    matter for values of unknown origin (strings parsed as dates, naive datetimes): these
    writes carry values the rules layer made."""
    statements = cache()
    key = ("prep", model, tuple(names))
    found = statements.get(key)
    if found is None:
        found = statements[key] = [_preparer(conn(), model._meta.get_field(name)) for name in names]
    return found


def _preparer(c, field):
    kind = field.get_internal_type()
    if kind in (
        "CharField",
        "TextField",
        "BooleanField",
        "IntegerField",
        "PositiveIntegerField",
        "BigIntegerField",
        "ForeignKey",
    ):
        return _same
    if kind == "DateTimeField":
        if c.vendor == "sqlite" and c.timezone == UTC:
            return _sqlite_utc_datetime
        adapt = c.ops.adapt_datetimefield_value
        return lambda v: None if v is None else adapt(v)
    if kind == "DurationField" and not c.features.has_native_duration_field:
        return lambda v: None if v is None else duration_microseconds(v)
    return lambda v: field.get_db_prep_save(v, c)


def _same(value):
    return value


def _sqlite_utc_datetime(value):
    """What the SQLite backend stores for a datetime when the connection's zone is UTC.
    A claim or a report writes the same instant into several columns: the last one
    converted is remembered (one tuple, replaced whole, so threads cannot mix two)."""
    if value is None:
        return None
    last = _LAST_DATETIME[0]
    if value is last[0]:
        return last[1]
    out = value
    if out.tzinfo is not UTC and out.utcoffset() is not None:
        out = out.astimezone(UTC)
    out = str(out.replace(tzinfo=None))
    _LAST_DATETIME[0] = (value, out)
    return out


_LAST_DATETIME: list[tuple] = [(None, None)]
