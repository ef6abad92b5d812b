"""Only the rules layer writes Batch state, and a state move is written once per model.

The check reads the code (ast over tasks/**/*.py, migrations aside): outside tasks/operations/
and tasks/models.py nothing assigns a state column, passes one to update()/create(), names
one in raw SQL that writes, or calls a model's move methods; inside tasks/operations/ only
the models' move methods set a previous state or a transition time.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"

# The Batch state columns of Task, SubTask, Job, JobSchedule, Pool and ComputeNode.
STATE_COLUMNS = frozenset(
    {
        "state",
        "previous_state",
        "state_transition_time",
        "previous_state_transition_time",
        "allocation_state",
        "allocation_state_transition_time",
    }
)
# What only a model's move method sets: a state move's bookkeeping.
MOVE_BOOKKEEPING = frozenset(
    {
        "previous_state",
        "previous_state_transition_time",
        "state_transition_time",
        "allocation_state_transition_time",
    }
)
MOVE_METHODS = frozenset(
    {"move_to", "move_values", "move_allocation_to", "allocation_move_values", "touch"}
)
# Calls whose keyword arguments are column values written to the database.
WRITING_CALLS = frozenset({"update", "create", "get_or_create", "update_or_create"})


_COLUMN = r'"?(?:{})"?'.format("|".join(sorted(STATE_COLUMNS, key=len, reverse=True)))
# A column assigned in an UPDATE's SET list (before any WHERE), or named in an INSERT's.
_SQL_UPDATE = re.compile(
    rf"\bUPDATE\b.*?\bSET\b(?:(?!\bWHERE\b).)*?(?<![\w.]){_COLUMN}\s*=", re.I | re.S
)
_SQL_INSERT = re.compile(rf"\bINSERT\s+INTO\b[^(]*\([^)]*(?<![\w.]){_COLUMN}[\s,)]", re.I | re.S)


def sources() -> list[Path]:
    return sorted(p for p in TASKS.rglob("*.py") if "migrations" not in p.parts)


def in_rules_layer(path: Path) -> bool:
    return path == TASKS / "models.py" or (TASKS / "operations") in path.parents


def _targets(node: ast.AST):
    if isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        yield node


def _text(node: ast.AST) -> str | None:
    """A string literal, or an f-string's literal parts joined: what raw SQL is built of."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) or " ? " for v in node.values)
    return None


def writes(tree: ast.AST, columns: frozenset[str]):
    """(line, what) for each place that writes one of `columns`: an attribute assignment,
    setattr, a keyword of update()/create() & co., or raw SQL that updates or inserts it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t in _targets(target):
                    if isinstance(t, ast.Attribute) and t.attr in columns:
                        yield node.lineno, f".{t.attr} ="
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "setattr" and len(node.args) >= 2:
                column = _text(node.args[1])
                if column in columns:
                    yield node.lineno, f"setattr(..., {column!r})"
            if name in WRITING_CALLS:
                for keyword in node.keywords:
                    if keyword.arg in columns:
                        yield node.lineno, f".{name}({keyword.arg}=...)"
        text = _text(node)
        if text and (_SQL_UPDATE.search(text) or _SQL_INSERT.search(text)):
            yield node.lineno, "raw SQL writing a state column"


def move_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MOVE_METHODS
        ):
            yield node.lineno, f".{node.func.attr}()"


def bookkeeping(tree: ast.AST):
    """Writes of a move's bookkeeping: any assignment or keyword (a constructor's or
    create()'s included) setting a previous state, and the transition times set other
    than where a row is made (its first state is no move)."""
    for line, what in writes(tree, MOVE_BOOKKEEPING):
        if ".create(" not in what and "get_or_create(" not in what:
            yield line, what
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("previous_state", "previous_state_transition_time"):
                    yield node.lineno, f"{keyword.arg}=..."
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if _text(key) in MOVE_BOOKKEEPING:
                    yield node.lineno, f"{{{_text(key)!r}: ...}}"


def found(check, paths) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in paths
        for line, what in sorted(set(check(ast.parse(path.read_text(), str(path)))))
    ]


def test_nothing_outside_the_rules_layer_writes_batch_state():
    outside = [p for p in sources() if not in_rules_layer(p)]
    assert len(outside) > 50  # the walk sees the code: api, web, node, admin, commands
    assert found(lambda tree: writes(tree, STATE_COLUMNS), outside) == []


def test_nothing_outside_the_rules_layer_moves_a_model():
    outside = [p for p in sources() if not in_rules_layer(p)]
    assert found(move_calls, outside) == []


def test_inside_the_rules_layer_a_state_move_is_written_only_by_the_models():
    operations = list((TASKS / "operations").rglob("*.py"))
    assert len(operations) > 20
    assert found(bookkeeping, operations) == []


# --- the check catches what it must -------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "task.state = 'completed'",
        "job.previous_state, job.state = job.state, 'active'",
        "setattr(node, 'state', 'idle')",
        "Task.objects.filter(pk=1).update(state='completed')",
        "Pool.objects.filter(pk=1).update(allocation_state='steady', resize_errors=[])",
        "ComputeNode.objects.create(pool=p, state='idle')",
        "cursor.execute('UPDATE tasks_task SET etag = %s, state = %s WHERE id = %s')",
        'cursor.execute(f"UPDATE {table} SET \\"previous_state\\" = %s")',
        "sql = 'INSERT INTO tasks_task (id, state) VALUES (%s, %s)'",
    ],
)
def test_the_check_sees_a_state_write(code):
    assert list(writes(ast.parse(code), STATE_COLUMNS))


@pytest.mark.parametrize(
    "code",
    [
        "if task.state == 'active': pass",
        "Task.objects.filter(state='active').count()",
        "self.state_label = 'x'",
        "cursor.execute('SELECT state FROM tasks_task WHERE state = %s')",
        "cursor.execute('UPDATE tasks_task SET exit_code = %s WHERE state = %s')",
        "op.scope = {'state': 'done'}",
    ],
)
def test_the_check_lets_reads_and_other_writes_be(code):
    assert not list(writes(ast.parse(code), STATE_COLUMNS))


@pytest.mark.parametrize(
    "code",
    [
        "task.previous_state = task.state",
        "node.state_transition_time = t",
        "Job.objects.filter(pk=1).update(previous_state=F('state'))",
        "fields = {'state_transition_time': t}",
        "Task(state='active', previous_state='running')",
    ],
)
def test_the_check_sees_a_move_written_by_hand(code):
    assert list(bookkeeping(ast.parse(code)))


def test_the_check_lets_a_new_row_take_its_first_transition_time():
    code = "ComputeNode.objects.create(state='creating', state_transition_time=t)"
    assert not list(bookkeeping(ast.parse(code)))
