"""Helpers the lookups share."""

from __future__ import annotations

import functools


@functools.cache
def every_field(model) -> tuple[str, ...]:
    """The names of the model's stored fields, for the lookups that select every one."""
    return tuple(f.name for f in model._meta.concrete_fields)
