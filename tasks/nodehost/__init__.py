"""What a compute node has on its host, below the rules layer: its directory layout
(layout), the link-safe walk that makes and removes its directories (disk), the task-file
storage the web tier reads through (storage), and the Unix users its tasks run as
(identity). The agent (tasks.node) and the rules layer (tasks.operations: the reconciler
removes a gone node's disk and users) both use these; nothing here imports either."""

from importlib.metadata import PackageNotFoundError, version

try:
    # nodeAgentInfo.version: the agent is batchsite itself.
    AGENT_VERSION = version("batchsite")
except PackageNotFoundError:  # run from a source tree that was never installed
    AGENT_VERSION = "0.0.0"
