"""A lean INSERT for Add Task Collection: Django's bulk_create compiles an expression per
field per row (about 0.25 ms a task with our 40 columns), which dominated the cost of
adding tasks. Values are prepared with each field's own get_db_prep_save, memoized for
the values rows share (the clock, the defaults), and sent with one executemany. Add
Task Collection prepares the rows before it takes the job's lock (and SQLite's write
lock), so the transaction holds it only for the statements."""

from __future__ import annotations

from django.db import connection, models
from django.db.models.base import ModelState

from .sql import init_signals, link


def new_instance(model: type[models.Model], related: dict[str, models.Model], **values) -> models.Model:
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
            (f.attname, f.default, None) if f.has_default() and callable(f.default) else (f.attname, None, f.get_default())
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


def prepare_rows(model: type[models.Model], objs: list[models.Model]) -> tuple[str, list[list]]:
    """The INSERT statement and the database values of these unsaved instances: the work
    a caller can do before it takes the write lock."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
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
    return sql, rows


def insert_rows(sql: str, rows: list[list]) -> None:
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
