"""The deployment's vmSize table: which node provider a pool's vmSize maps to, how many
cores a node of that size has, and the provider's options for it.

BATCHSITE_VM_SIZES is a JSON object from vmSize (or an fnmatch pattern such as
`standard_nc*`, or `*` for everything else) to an entry:

    {"provider": "slurm", "cores": 16, "options": {"partition": "gpu"}}

- `provider`: a name in tasks.providers.registry (`local`, `slurm`). Required.
- `cores`: the vCPUs of a node of this size. Batch allows taskSlotsPerNode up to
  4 x cores (and never more than 256); without it only the 256 limit applies.
- `options`: handed to the provider with every node it starts (NodeLaunch.options).

vmSizes match case-insensitively, as Azure's do: an exact entry first, then the
patterns in the order written, `*` last. Unset, the table is `{"*": {"provider":
"local"}}`, so any vmSize a script sends works on `make run`; a table without `*`
restricts a deployment to the sizes it lists (others are refused at Add Pool).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .registry import PROVIDERS

MAX_TASK_SLOTS = 256
DEFAULT_TABLE = {"*": {"provider": "local"}}


@dataclass(frozen=True)
class VmSize:
    """One entry of the table, as a pool of that vmSize gets it."""

    provider: str
    cores: int | None = None
    options: dict = field(default_factory=dict)

    @property
    def max_task_slots(self) -> int:
        """Batch: the smaller of 4 x the size's cores and 256."""
        return MAX_TASK_SLOTS if self.cores is None else min(4 * self.cores, MAX_TASK_SLOTS)


def parse_table(raw: dict) -> list[tuple[str, VmSize]]:
    """The table in match order (exact names, then patterns, then `*`), or
    ImproperlyConfigured naming the bad entry."""
    if not raw:
        raw = DEFAULT_TABLE
    exact, patterns, fallback = [], [], []
    for key, entry in raw.items():
        where = f"BATCHSITE_VM_SIZES[{key!r}]"
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f'{where} must be an object such as {{"provider": "local"}}')
        unknown = set(entry) - {"provider", "cores", "options"}
        if unknown:
            raise ImproperlyConfigured(
                f"{where} has unknown keys {sorted(unknown)}: use provider, cores, options"
            )
        provider = entry.get("provider")
        if provider not in PROVIDERS:
            raise ImproperlyConfigured(
                f"{where}: provider must be one of {sorted(PROVIDERS)}, not {provider!r}"
            )
        cores = entry.get("cores")
        if cores is not None and (
            isinstance(cores, bool) or not isinstance(cores, int) or cores < 1
        ):
            raise ImproperlyConfigured(
                f"{where}: cores must be a whole number of at least 1, not {cores!r}"
            )
        options = entry.get("options", {})
        if not isinstance(options, dict):
            raise ImproperlyConfigured(f"{where}: options must be an object")
        size = VmSize(provider=provider, cores=cores, options=options)
        key = key.lower()
        if key == "*":
            fallback.append((key, size))
        elif any(c in key for c in "*?["):
            patterns.append((key, size))
        else:
            exact.append((key, size))
    return exact + patterns + fallback


@cache
def _table(raw: str) -> list[tuple[str, VmSize]]:
    import json

    return parse_table(json.loads(raw))


def table() -> list[tuple[str, VmSize]]:
    """The configured table, parsed once per distinct setting (tests override it)."""
    import json

    return _table(json.dumps(settings.BATCHSITE_VM_SIZES, sort_keys=False))


def lookup(vm_size: str, entries: list[tuple[str, VmSize]] | None = None) -> VmSize | None:
    """The entry a vmSize maps to, or None when the deployment has none for it."""
    name = vm_size.lower()
    for key, size in table() if entries is None else entries:
        if key == name or fnmatch.fnmatchcase(name, key):
            return size
    return None
