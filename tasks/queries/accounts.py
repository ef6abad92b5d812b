"""Reads of accounts."""

from __future__ import annotations

from tasks import sql
from tasks.models import Account
from tasks.queries.fields import every_field


def get_account(name: str) -> Account | None:
    """The account of this name, or None. Every API call makes this lookup (Shared Key):
    one statement built once per connection (tasks.sql), as are get_job and
    get_task, which every task call makes; compiling them through the ORM cost more than
    the rest of a Get Task (benchmarks/bench_api_throughput.py)."""
    found = sql.select_models(Account, every_field(Account), "{name} = %s", [name], limit=1)
    return found[0] if found else None
