"""The compute-node agent (`manage.py runnode`) and what it keeps on a node's disk."""

from importlib.metadata import PackageNotFoundError, version

try:
    # nodeAgentInfo.version: the agent is batchsite itself.
    AGENT_VERSION = version("batchsite")
except PackageNotFoundError:  # run from a source tree that was never installed
    AGENT_VERSION = "0.0.0"
