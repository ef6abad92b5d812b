"""The two ways a formula fails, with the codes and texts the Batch service uses.

A formula the service refuses outright (it does not parse, names a function that does not
exist, assigns a read-only variable, is too long) is an `InvalidFormula`: Add Pool, Enable
AutoScale and Evaluate AutoScale answer it as an HTTP 400 Batch error. A formula that parses
but fails while it runs (too few samples, a type mismatch between values, an undefined
variable) is an `EvaluationFailed`: Evaluate AutoScale answers 200 with an AutoScaleRun whose
`error` carries it and whose `results` still lists what was computed, and a periodic
evaluation records the same AutoScaleRun on the pool and leaves its targets alone.
"""

from __future__ import annotations

# The codes Batch documents for a refused formula ("Batch status and error codes", and the
# .NET SDK's BatchErrorCodeStrings, whose spelling of the length code differs from the page's:
# the SDK's string is what the service sends).
SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
SYNTAX_ERROR_MESSAGE = "The specified auto-scaling formula has a syntax error."
TOO_LONG = "AutoScaleFormulaTooLong"
TOO_LONG_MESSAGE = "The specified auto-scaling formula exceeds lengths limit."

# The code and message the service puts in autoScaleRun.error when a sample method finds too
# few samples (REST reference, PoolAutoScaleEvent reference, and errors quoted from real runs).
INSUFFICIENT_SAMPLES = "InsufficientSampleData"
INSUFFICIENT_SAMPLES_MESSAGE = "Autoscale evaluation failed due to insufficient sample data"

# Batch documents no code for other run-time failures; batchsite names them this way.
EVALUATION_ERROR = "AutoScaleFormulaEvaluationError"
EVALUATION_ERROR_MESSAGE = "Autoscale evaluation failed"


class FormulaError(Exception):
    """A formula that Batch would refuse or that failed while it ran.

    `code` and `message` are Batch's; `values` holds the details as (name, value) pairs, the
    first always ("Message", "Line L, Col C: what went wrong").
    """

    def __init__(self, code: str, message: str, values: list[tuple[str, str]]):
        super().__init__(f"{code}: {message}: " + "; ".join(v for _, v in values))
        self.code = code
        self.message = message
        self.values = values

    @property
    def detail(self) -> str:
        """The line, column and reason, as the service words them."""
        return self.values[0][1] if self.values else self.message

    def batch_values(self) -> list[dict[str, str]]:
        """The details as an HTTP Batch error body's `values` (key/value pairs)."""
        return [{"key": name, "value": value} for name, value in self.values]


class InvalidFormula(FormulaError):
    """Refused before it runs: the request carrying it fails with HTTP 400."""

    def __init__(
        self, detail: str, *, code: str = SYNTAX_ERROR, message: str = SYNTAX_ERROR_MESSAGE
    ):
        super().__init__(code, message, [("Message", detail)])


class EvaluationFailed(FormulaError):
    """Failed while running: reported in the AutoScaleRun, not as an HTTP error.

    `results_text` is what the service still returns in autoScaleRun.results: the targets as
    they stood and the variables assigned before the failure.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: str = EVALUATION_ERROR,
        message: str = EVALUATION_ERROR_MESSAGE,
        results_text: str = "",
    ):
        super().__init__(code, message, [("Message", detail)])
        self.results_text = results_text

    def run_error(self) -> dict:
        """The AutoScaleRun `error` object: {code, message, values: [{name, value}]}."""
        return {
            "code": self.code,
            "message": self.message,
            "values": [{"name": name, "value": value} for name, value in self.values],
        }


def at(line: int, column: int, reason: str) -> str:
    """The service's way of placing an error in the formula: 'Line 9, Col 43: ...'."""
    return f"Line {line}, Col {column}: {reason}"
