"""A lean INSERT for Add Task Collection: Django's bulk_create compiles an expression per
field per row (about 0.25 ms a task with our 40 columns), which dominated the cost of
adding tasks. Values are prepared with each field's own get_db_prep_save, memoized for
the values rows share (the clock, the defaults), and sent as one INSERT of all the rows
that the unique index screens for duplicates (ON CONFLICT DO NOTHING RETURNING): no read
before it for the ids already taken, none after it for the new pks. Add Task Collection
prepares the rows before it takes the job's lock (and SQLite's write lock), so the
transaction holds it only for the statements."""

from __future__ import annotations

from django.db import connection, models
from django.db.models.base import ModelState

from tasks.sql import init_signals, link


def new_instance(
    model: type[models.Model], related: dict[str, models.Model], **values
) -> models.Model:
    """`model(**related, **values)` for a new row, without the generic __init__ (a
    setattr per field through its descriptor, and a foreign key's checks): the fields'
    defaults, then `values` by attribute name, then each foreign key in `related` with
    its id and its cached object, as the descriptors would leave them."""
    if init_signals(model):
        return model(**related, **values)
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        # (name, a callable default to call per row, or the constant default)
        defaults = _DEFAULTS[model] = [
            (f.attname, f.default, None)
            if f.has_default() and callable(f.default)
            else (f.attname, None, f.get_default())
            for f in model._meta.concrete_fields
        ]
    obj = model.__new__(model)
    attrs = obj.__dict__
    for name, make, value in defaults:
        attrs[name] = make() if make is not None else value
    attrs.update(values)
    obj._state = ModelState()
    for name, other in related.items():
        link(obj, name, other)
    return obj


_DEFAULTS: dict = {}


def prepare_rows(model: type[models.Model], objs: list[models.Model]) -> list[list]:
    """The database values of these unsaved instances, in insert_skipping()'s column
    order: the work a caller can do before it takes the write lock."""
    fields = _insert_fields(model)
    memo: dict = {}
    rows = []
    for obj in objs:
        row = []
        for field in fields:
            value = getattr(obj, field.attname)
            try:
                key = (field.attname, value)
                prepared = memo.get(key, memo)
            except TypeError:  # unhashable (JSON): prepare every time
                key, prepared = None, memo
            if prepared is memo:
                prepared = field.get_db_prep_save(value, connection)
                if key is not None:
                    memo[key] = prepared
            row.append(prepared)
        rows.append(row)
    return rows


def insert_skipping(
    model: type[models.Model],
    rows: list[list],
    *,
    unique: tuple[str, ...],
    returning: tuple[str, ...],
) -> tuple[str, list]:
    """One INSERT of these rows (prepare_rows' values) that skips the rows whose `unique`
    fields clash with a row already there (ON CONFLICT DO NOTHING, on both databases: the
    unique index judges, so a concurrent insert of the same key waits for the other
    transaction instead of failing it) and returns the `returning` columns of the rows it
    inserted: the statement and its parameters.

    On PostgreSQL the rows go as one array per column (INSERT ... SELECT FROM unnest),
    bound in binary: one short statement for any number of rows, which psycopg converts
    once and the server prepares once. A VALUES list of 100 rows x 40 columns is a 20 kB
    text that psycopg re-parses on every call (it caches statements under 4 kB only):
    that cost more than the insert itself. On SQLite, one VALUES list per row count."""
    vendor = connection.vendor
    key = (model, vendor, len(rows) if vendor != "postgresql" else None, unique, returning)
    statement = _STATEMENTS.get(key)
    if statement is None:
        qn = connection.ops.quote_name
        meta = model._meta
        fields = _insert_fields(model)
        columns = ", ".join(qn(f.column) for f in fields)
        target = ", ".join(qn(meta.get_field(name).column) for name in unique)
        back = ", ".join(qn(meta.get_field(name).column) for name in returning)
        if vendor == "postgresql":
            # Bound in binary (%b): psycopg writes a text array in Python, a regular
            # expression per element to quote it (2.8 ms for 100 tasks' 42 columns),
            # a binary one in 0.8 ms.
            arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
            source = f"SELECT * FROM unnest({arrays})"
        else:
            row = "(" + ", ".join(["%s"] * len(fields)) + ")"
            source = f"VALUES {', '.join([row] * len(rows))}"
        statement = _STATEMENTS[key] = (
            f"INSERT INTO {qn(meta.db_table)} ({columns}) {source} "
            f"ON CONFLICT ({target}) DO NOTHING RETURNING {back}"
        )
    if vendor == "postgresql":
        return statement, [list(column) for column in zip(*rows, strict=True)]
    return statement, [value for row in rows for value in row]


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


# Per vendor; the statements name no connection's state, so one cache serves them all.
_STATEMENTS: dict = {}
