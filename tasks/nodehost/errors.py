"""The one error a task's launch raises, below the agent: the user it must run as
(identity) and the process it starts (tasks.node.process) both raise it."""


class LaunchError(Exception):
    """The command could not start: the task fails with this failureInfo code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message
