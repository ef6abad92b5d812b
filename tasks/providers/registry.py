"""Provider names and the classes behind them.

A pool's `provider` (fixed at Add Pool from the vmSize table) names one of these. The
classes are imported when first used, so a deployment that never maps a vmSize to Slurm
never imports the Slurm provider. Each class is built without arguments; what differs per
vmSize reaches it as NodeLaunch.options.
"""

from __future__ import annotations

from importlib import import_module

from .base import NodeProvider

PROVIDERS: dict[str, str] = {
    "local": "tasks.providers.local.LocalProvider",
    "slurm": "tasks.providers.slurm.SlurmProvider",
}

_instances: dict[str, NodeProvider] = {}


def provider_class(name: str) -> type[NodeProvider]:
    module, _, cls = PROVIDERS[name].rpartition(".")
    return getattr(import_module(module), cls)


def get_provider(name: str) -> NodeProvider:
    """The process's one instance of the named provider (KeyError for an unknown name)."""
    if name not in _instances:
        _instances[name] = provider_class(name)()
    return _instances[name]
