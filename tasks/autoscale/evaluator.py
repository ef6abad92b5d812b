"""Checking a parsed formula and running it against a pool's samples and current state."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from tasks.models import NodeDeallocationOption

from . import errors, syntax
from .errors import EvaluationFailed, InvalidFormula, at
from .functions import ARITY, Stop, call
from .samples import DEFAULT_SAMPLE_PERCENT, METRICS, SampleHistory, Samples
from .values import (
    TIME_INTERVALS,
    TIMESTAMP_MEMBERS,
    DoubleVec,
    OperandError,
    TimeInterval,
    binary,
    format_double,
    format_value,
    scalar,
    truth,
    type_name,
    unary,
)

MAX_LENGTH = 8192
MAX_STATEMENTS = 100
# A target beyond this is no count of nodes any deployment has; it also keeps the value in a
# 32-bit database column.
MAX_TARGET = 2**31 - 1

DEDICATED = "$TargetDedicatedNodes"
LOW_PRIORITY = "$TargetLowPriorityNodes"
DEALLOCATION = "$NodeDeallocationOption"
DEALLOCATION_OPTIONS = tuple(NodeDeallocationOption.values)
DEFAULT_DEALLOCATION = NodeDeallocationOption.REQUEUE.value

# The non-sampled values the caller passes in `current`, with their defaults.
CURRENT_VARIABLES: dict[str, float] = {
    "$CurrentDedicatedNodes": 0.0,
    "$CurrentLowPriorityNodes": 0.0,
    "$PreemptedNodeCount": 0.0,
    "$UsableNodeCount": 0.0,
    "$TaskSlotsPerNode": 1.0,
    DEDICATED: 0.0,
    LOW_PRIORITY: 0.0,
}

# The documented short names ($TargetDedicated) and the old ones scripts still use.
ALIASES = {
    "$TargetDedicated": DEDICATED,
    "$TargetLowPriority": LOW_PRIORITY,
    "$CurrentDedicated": "$CurrentDedicatedNodes",
    "$CurrentLowPriority": "$CurrentLowPriorityNodes",
}
WRITABLE = {DEDICATED, LOW_PRIORITY, DEALLOCATION, "$TargetDedicated", "$TargetLowPriority"}

_SERVICE = frozenset((*METRICS, *CURRENT_VARIABLES, DEALLOCATION, *ALIASES))
_CONSTANTS = {**TIME_INTERVALS, **{option: option for option in DEALLOCATION_OPTIONS}}

# method -> (fewest arguments, most arguments)
METHODS = {
    "GetSample": (1, 3),
    "GetSamplePercent": (1, 2),
    "GetSamplePeriod": (0, 0),
    "Count": (0, 0),
    "HistoryBeginTime": (0, 0),
}


@dataclass(frozen=True)
class Targets:
    """What an evaluation asks of the pool. node_deallocation_option is None when unset."""

    target_dedicated: int
    target_low_priority: int
    node_deallocation_option: str | None


@dataclass(frozen=True)
class Evaluation:
    """A successful evaluation.

    `variables`: every variable the formula assigned, in the order of first assignment, with
    its final value (float, DoubleVec, str, datetime or TimeInterval). `results_text`: exactly
    what Batch returns in autoScaleRun.results. `stopped`: the formula called stop().
    """

    targets: Targets
    variables: dict[str, object] = field(default_factory=dict)
    results_text: str = ""
    stopped: bool = False


def service_name(name: str) -> str | None:
    """The name when it is a service variable's, or None: names are case-sensitive, so
    `$pendingTasks = $PendingTasks.GetSample(1)` assigns a variable of the formula's own."""
    return name if name in _SERVICE else None


def _invalid(node: syntax.Node, reason: str) -> InvalidFormula:
    return InvalidFormula(at(node.line, node.column, reason))


def _check(node: syntax.Node) -> None:
    """The checks the service makes before running: names, functions, methods, arities."""
    if isinstance(node, syntax.Assign):
        if node.name in _CONSTANTS:
            raise _invalid(node, f"{node.name} is a constant and cannot be assigned")
        canonical = service_name(node.name)
        if canonical is not None and canonical not in WRITABLE:
            raise _invalid(node, f"{canonical} is a read-only service-defined variable")
        _check(node.value)
    elif isinstance(node, syntax.Bare):
        _check(node.value)
    elif isinstance(node, syntax.Name):
        canonical = service_name(node.name)
        if canonical in METRICS and canonical not in CURRENT_VARIABLES:
            raise _invalid(
                node,
                f"{canonical} is a sampled metric: read it with a method such as "
                f"{canonical}.GetSample(TimeInterval_Minute * 5)",
            )
        if node.name.startswith("TimeInterval_") and node.name not in TIME_INTERVALS:
            raise _invalid(
                node, f"{node.name} is not a time interval; use one of " + ", ".join(TIME_INTERVALS)
            )
    elif isinstance(node, syntax.Call):
        arity = ARITY.get(node.function)
        if arity is None or node.function.startswith("$"):
            raise _invalid(node, f"{node.function} is not a function")
        _check_arity(node, node.function + "()", arity, len(node.arguments))
        for argument in node.arguments:
            _check(argument)
    elif isinstance(node, syntax.Method):
        target = service_name(node.target.name) if isinstance(node.target, syntax.Name) else None
        if target not in METRICS:
            raise _invalid(
                node,
                f"{node.method}() is a method of the sampled metrics "
                f"($CPUPercent, $ActiveTasks, ...) only",
            )
        if node.method not in METHODS:
            raise _invalid(
                node,
                f"{target} has no method {node.method}(); its methods are "
                + ", ".join(m + "()" for m in METHODS),
            )
        _check_arity(node, node.method + "()", METHODS[node.method], len(node.arguments))
        for argument in node.arguments:
            _check(argument)
    elif isinstance(node, syntax.Member):
        if node.member not in TIMESTAMP_MEMBERS:
            raise _invalid(
                node,
                f"a timestamp has no member {node.member!r}; its members are "
                + ", ".join(TIMESTAMP_MEMBERS),
            )
        _check(node.target)
    elif isinstance(node, syntax.Unary):
        _check(node.operand)
    elif isinstance(node, syntax.Binary):
        _check(node.left)
        _check(node.right)
    elif isinstance(node, syntax.Conditional):
        _check(node.condition)
        _check(node.then)
        _check(node.otherwise)
    elif isinstance(node, syntax.Vector):
        for item in node.items:
            _check(item)


def _check_arity(node, what: str, arity: tuple[int, int | None], given: int) -> None:
    fewest, most = arity
    if given < fewest or (most is not None and given > most):
        if most is None:
            wanted = f"at least {fewest}"
        elif fewest == most:
            wanted = str(fewest)
        else:
            wanted = f"{fewest} to {most}"
        singular = wanted in ("1", "at least 1")
        raise _invalid(
            node, f"{what} takes {wanted} argument{'' if singular else 's'}, not {given}"
        )


@lru_cache(maxsize=256)
def compile_formula(formula: str) -> tuple[syntax.Node, ...]:
    """Parse and check a formula; InvalidFormula when Batch would refuse it."""
    if len(formula) > MAX_LENGTH:
        raise InvalidFormula(
            f"The formula is {len(formula)} characters long; at most {MAX_LENGTH} are allowed",
            code=errors.TOO_LONG,
            message=errors.TOO_LONG_MESSAGE,
        )
    statements = syntax.parse(formula)
    if len(statements) > MAX_STATEMENTS:
        extra = statements[MAX_STATEMENTS]
        raise _invalid(extra, f"A formula can hold at most {MAX_STATEMENTS} statements")
    for statement in statements:
        _check(statement)
    return statements


class _Run:
    """One evaluation's state: the assignments so far and the sample histories read."""

    def __init__(
        self,
        *,
        samples: Samples,
        now: datetime,
        current: Mapping[str, float],
        rng: Callable[[], float] | None,
    ):
        self.samples = samples
        self.now = now
        self.rng = rng
        self.current = dict(CURRENT_VARIABLES)
        for name, value in current.items():
            canonical = service_name(name)
            if canonical not in CURRENT_VARIABLES:
                raise ValueError(f"{name!r} is not one of {', '.join(CURRENT_VARIABLES)}")
            self.current[canonical] = float(value)
        self.assigned: dict[str, object] = {}  # every assignment, by name as canonical
        self.assigned_at: dict[str, syntax.Assign] = {}  # where each name was last assigned
        self.histories: dict[str, SampleHistory] = {}

    # -- variables -----------------------------------------------------------------------
    def target(self, name: str):
        """A target's value: the full name's assignment wins over the alias's (documented)."""
        alias = "$TargetDedicated" if name == DEDICATED else "$TargetLowPriority"
        if name in self.assigned:
            return self.assigned[name]
        if alias in self.assigned:
            return self.assigned[alias]
        return self.current[name]

    def read(self, node: syntax.Name):
        if node.name in _CONSTANTS:
            return _CONSTANTS[node.name]
        canonical = service_name(node.name)
        if canonical is None:
            if node.name not in self.assigned:
                raise OperandError(f"{node.name} is used before it is assigned")
            return self.assigned[node.name]
        canonical = ALIASES.get(canonical, canonical)
        if canonical in (DEDICATED, LOW_PRIORITY):
            return self.target(canonical)
        if canonical == DEALLOCATION:
            return self.assigned.get(DEALLOCATION, DEFAULT_DEALLOCATION)
        return self.current[canonical]

    def write(self, node: syntax.Assign, value) -> None:
        canonical = service_name(node.name) or node.name
        if canonical in (DEDICATED, LOW_PRIORITY, "$TargetDedicated", "$TargetLowPriority"):
            value = scalar(value)
            if not isinstance(value, float):
                raise OperandError(f"{canonical} takes a double, not a {type_name(value)}")
        elif canonical == DEALLOCATION:
            if value not in DEALLOCATION_OPTIONS:
                shown = value if isinstance(value, str) else type_name(value)
                raise OperandError(
                    f"{DEALLOCATION} takes one of {', '.join(DEALLOCATION_OPTIONS)}, not {shown}"
                )
        self.assigned[canonical] = value
        self.assigned_at[canonical] = node

    # -- expressions ---------------------------------------------------------------------
    def value(self, node: syntax.Node):
        try:
            return self._value(node)
        except OperandError as exc:
            raise _Failure(node, str(exc)) from None

    def _value(self, node: syntax.Node):
        if isinstance(node, syntax.Number):
            return node.value
        if isinstance(node, syntax.String):
            return node.value
        if isinstance(node, syntax.Name):
            return self.read(node)
        if isinstance(node, syntax.Vector):
            items = [self.value(item) for item in node.items]
            return DoubleVec(_flatten_vector(items))
        if isinstance(node, syntax.Conditional):
            # only the branch taken runs: a sample method in the other cannot fail the formula
            return self.value(node.then if truth(self.value(node.condition)) else node.otherwise)
        if isinstance(node, syntax.Binary):
            left = self.value(node.left)
            if node.operator in ("&&", "||") and isinstance(left, float):
                if node.operator == "&&" and left == 0:
                    return 0.0
                if node.operator == "||" and left != 0:
                    return 1.0
            return binary(node.operator, left, self.value(node.right))
        if isinstance(node, syntax.Unary):
            return unary(node.operator, self.value(node.operand))
        if isinstance(node, syntax.Member):
            target = self.value(node.target)
            if not isinstance(target, datetime):
                raise OperandError(
                    f".{node.member} is a member of a timestamp, not of a {type_name(target)}"
                )
            return float(TIMESTAMP_MEMBERS[node.member](target))
        if isinstance(node, syntax.Call):
            arguments = [self.value(argument) for argument in node.arguments]
            return call(node.function, arguments, now=self.now, rng=self.rng)
        if isinstance(node, syntax.Method):
            return self.method(node)
        raise OperandError(f"cannot evaluate {type(node).__name__}")

    # -- sample methods ------------------------------------------------------------------
    def history(self, metric: str) -> SampleHistory:
        if metric not in self.histories:
            self.histories[metric] = SampleHistory(
                metric, self.samples.series(metric), now=self.now, period=self.samples.period
            )
        return self.histories[metric]

    def method(self, node: syntax.Method):
        metric = service_name(node.target.name)
        history = self.history(metric)
        arguments = [self.value(argument) for argument in node.arguments]
        if node.method == "Count":
            return float(history.count())
        if node.method == "GetSamplePeriod":
            return TimeInterval(history.period.total_seconds())
        if node.method == "HistoryBeginTime":
            begin = history.begin_time()
            if begin is None:
                raise OperandError(f"{metric} has no samples yet")
            return begin
        if node.method == "GetSample" and len(arguments) == 1 and isinstance(arguments[0], float):
            count = arguments[0]
            if not math.isfinite(count):
                raise OperandError(
                    f"GetSample() count {format_double(count)} is not a number of samples"
                )
            return DoubleVec(history.last(int(count)))
        low, high, percent = self.window(node, arguments)
        values, available = history.window(low, high)
        if node.method == "GetSamplePercent":
            return available
        wanted = DEFAULT_SAMPLE_PERCENT if percent is None else percent
        if available < wanted:
            raise EvaluationFailed(
                at(
                    node.paren_line,
                    node.paren_column,
                    f"Insufficient data from data set: {metric} wanted {format_double(wanted)}%, "
                    f"received {format_double(available)}%",
                ),
                code=errors.INSUFFICIENT_SAMPLES,
                message=errors.INSUFFICIENT_SAMPLES_MESSAGE,
            )
        return DoubleVec(values)

    def window(self, node: syntax.Method, arguments: list):
        """(low, high, samplePercent or None) from (start [, end] [, samplePercent])."""
        bounds, percent = [], None
        for position, argument in enumerate(arguments):
            if (
                isinstance(argument, TimeInterval | datetime)
                and percent is None
                and len(bounds) < 2
            ):
                try:
                    bounds.append(
                        self.now - argument.as_timedelta()
                        if isinstance(argument, TimeInterval)
                        else argument
                    )
                except OverflowError:
                    raise OperandError(
                        f"{node.method}() argument {position + 1} reaches "
                        f"beyond the range of timestamps"
                    ) from None
            elif (
                isinstance(argument, float)
                and node.method == "GetSample"
                and bounds
                and position == len(arguments) - 1
            ):
                percent = argument
            else:
                raise OperandError(
                    f"{node.method}() takes (start [, end]"
                    f"{' [, samplePercent]' if node.method == 'GetSample' else ''}) "
                    f"with timeintervals or timestamps, not a {type_name(argument)} "
                    f"as argument {position + 1}"
                )
        if len(bounds) == 1:
            bounds.append(self.now)
        return min(bounds), max(bounds), percent

    # -- results -------------------------------------------------------------------------
    def results_text(self) -> str:
        """Batch's autoScaleRun.results: the three service variables, then the formula's own
        variables in ordinal order of their names ('$samples' before 'cappedPoolSize')."""
        deallocation = self.assigned.get(DEALLOCATION, DEFAULT_DEALLOCATION)
        parts = [
            f"{DEDICATED}={format_value(self._shown_target(DEDICATED))}",
            f"{LOW_PRIORITY}={format_value(self._shown_target(LOW_PRIORITY))}",
            f"{DEALLOCATION}={deallocation}",
        ]
        for name in sorted(n for n in self.assigned if service_name(n) is None):
            parts.append(f"{name}={format_value(self.assigned[name])}")
        return ";".join(parts)

    def _shown_target(self, name: str) -> float:
        value = self.target(name)
        converted = _to_target(value)
        return float(converted) if converted is not None else value

    def targets(self) -> Targets:
        deallocation = self.assigned.get(DEALLOCATION)
        return Targets(
            target_dedicated=self._final_target(DEDICATED),
            target_low_priority=self._final_target(LOW_PRIORITY),
            node_deallocation_option=deallocation,
        )

    def _final_target(self, name: str) -> int:
        converted = _to_target(self.target(name))
        if converted is None:
            alias = "$TargetDedicated" if name == DEDICATED else "$TargetLowPriority"
            raise _TargetError(
                name if name in self.assigned else alias,
                f"{name} is {format_double(self.target(name))}, not a number of nodes",
            )
        return converted


def _to_target(value: float) -> int | None:
    """A target as a node count: the fraction dropped (the documented formulas round up by
    adding 3 before dividing by 4), clamped to 0..MAX_TARGET; None when not finite."""
    if not math.isfinite(value):
        return None
    return max(0, min(MAX_TARGET, int(value)))


def _flatten_vector(items: list) -> list[float]:
    values: list[float] = []
    for item in items:
        if isinstance(item, DoubleVec):
            values.extend(item)
        elif isinstance(item, float):
            values.append(item)
        else:
            raise OperandError(f"a doubleVec holds doubles, not a {type_name(item)}")
    return values


class _TargetError(Exception):
    def __init__(self, name: str, reason: str):
        super().__init__(reason)
        self.name = name
        self.reason = reason


class _Failure(Exception):
    def __init__(self, node: syntax.Node, reason: str):
        super().__init__(reason)
        self.node = node
        self.reason = reason


def evaluate(
    formula: str,
    *,
    samples: Samples,
    now: datetime,
    current: Mapping[str, float],
    rng: Callable[[], float] | None = None,
) -> Evaluation:
    """Evaluate an autoscale formula as the Batch service does at `now`.

    Raises InvalidFormula (HTTP 400: AutoScalingFormulaSyntaxError, AutoScaleFormulaTooLong)
    when Batch refuses the formula, EvaluationFailed (InsufficientSampleData,
    AutoScaleFormulaEvaluationError, carried in autoScaleRun.error) when it fails as it runs.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)  # the service's clock: time().hour is a UTC hour
    statements = compile_formula(formula)
    run = _Run(samples=samples, now=now, current=current, rng=rng)
    stopped = False
    try:
        for statement in statements:
            try:
                if isinstance(statement, syntax.Assign):
                    value = run.value(statement.value)
                    try:
                        run.write(statement, value)
                    except OperandError as exc:
                        raise _Failure(statement, str(exc)) from None
                else:
                    run.value(statement.value)
            except Stop:
                stopped = True
                break
        try:
            targets = run.targets()
        except _TargetError as exc:
            # only an assigned target can be out of range: the caller's are counts
            raise _Failure(run.assigned_at[exc.name], exc.reason) from None
    except _Failure as failure:
        raise EvaluationFailed(
            at(failure.node.line, failure.node.column, failure.reason),
            results_text=run.results_text(),
        ) from None
    except EvaluationFailed as failed:
        failed.results_text = run.results_text()
        raise
    return Evaluation(
        targets=targets,
        variables=dict(run.assigned),
        results_text=run.results_text(),
        stopped=stopped,
    )


def validate(formula: str) -> None:
    """Raise InvalidFormula when Batch would refuse the formula (Add Pool, Enable AutoScale)."""
    compile_formula(formula)
