"""The formula grammar (lark, LALR) and the tree it parses into.

A formula is statements separated by semicolons (a last one may go without), each an
assignment `name = expression` or a bare expression (`stop();`). Expressions are C-like:
`?:` (right-associative, lowest), `||`, `&&`, `== !=`, `< <= > >=`, `+ -`, `* /`, unary `- !`,
then calls `f(...)`, members `$t.hour`, sample methods `$CPUPercent.GetSample(...)`, numbers,
"strings", `[a, b]` vectors and parentheses. `//` and `/* */` comments and line breaks go
anywhere between tokens. Names may start with `$`; service variables always do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from .errors import InvalidFormula, at

GRAMMAR = r"""
start: statement? (_SEMI statement?)*

?statement: NAME "=" expr   -> assign
          | expr            -> bare

?expr: or_expr
     | or_expr QUESTION expr ":" expr  -> conditional

?or_expr: and_expr
        | or_expr OROR and_expr        -> binary
?and_expr: eq_expr
         | and_expr ANDAND eq_expr     -> binary
?eq_expr: rel_expr
        | eq_expr (EQ | NE) rel_expr   -> binary
?rel_expr: add_expr
         | rel_expr (LT | LE | GT | GE) add_expr  -> binary
?add_expr: mul_expr
         | add_expr (PLUS | MINUS) mul_expr       -> binary
?mul_expr: unary_expr
         | mul_expr (STAR | SLASH) unary_expr     -> binary
?unary_expr: postfix
           | (MINUS | BANG) unary_expr            -> unary

?postfix: atom
        | postfix DOT NAME "(" arguments ")"      -> method
        | postfix DOT NAME                        -> member

?atom: NUMBER                        -> number
     | STRING                        -> string
     | NAME "(" arguments ")"        -> call
     | NAME                          -> name
     | LBRACKET arguments "]"        -> vector
     | "(" expr ")"

arguments: (expr ("," expr)*)?

_SEMI: ";"
QUESTION: "?"
OROR: "||"
ANDAND: "&&"
EQ: "=="
NE: "!="
LE: "<="
GE: ">="
LT: "<"
GT: ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
BANG: "!"
DOT: "."
LBRACKET: "["
NAME: /\$?[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?/
STRING: /"(\\.|[^"\\\n])*"/

LINE_COMMENT: /\/\/[^\n]*/
BLOCK_COMMENT: /\/\*(.|\n)*?\*\//
%import common.WS
%ignore WS
%ignore LINE_COMMENT
%ignore BLOCK_COMMENT
"""


@dataclass(frozen=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Vector(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Call(Node):
    function: str
    arguments: tuple[Node, ...]


@dataclass(frozen=True)
class Method(Node):
    target: Node
    method: str
    arguments: tuple[Node, ...]
    # where the argument list opens: the service reports sample shortages there
    paren_line: int
    paren_column: int


@dataclass(frozen=True)
class Member(Node):
    target: Node
    member: str


@dataclass(frozen=True)
class Unary(Node):
    operator: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class Assign(Node):
    name: str
    value: Node


@dataclass(frozen=True)
class Bare(Node):
    value: Node


@v_args(inline=True)
class _ToTree(Transformer_NonRecursive):
    def start(self, *statements):
        return tuple(statements)

    def assign(self, name, value):
        return Assign(name.line, name.column, str(name), value)

    def bare(self, value):
        return Bare(value.line, value.column, value)

    def conditional(self, condition, _question, then, otherwise):
        return Conditional(condition.line, condition.column, condition, then, otherwise)

    def binary(self, left, operator, right):
        return Binary(operator.line, operator.column, str(operator), left, right)

    def unary(self, operator, operand):
        return Unary(operator.line, operator.column, str(operator), operand)

    def method(self, target, dot, name, arguments):
        # the "(" follows the name directly or after blanks: the service's column for a sample
        # shortage is that parenthesis, found from the name's end when nothing lies between
        return Method(
            dot.line, dot.column, target, str(name), arguments, name.end_line, name.end_column
        )

    def member(self, target, dot, name):
        return Member(dot.line, dot.column, target, str(name))

    def number(self, token):
        return Number(token.line, token.column, float(str(token)))

    def string(self, token):
        text = str(token)[1:-1]
        text = text.replace('\\"', '"').replace("\\\\", "\\")
        return String(token.line, token.column, text)

    def call(self, name, arguments):
        return Call(name.line, name.column, str(name), arguments)

    def name(self, token):
        return Name(token.line, token.column, str(token))

    def vector(self, bracket, arguments):
        return Vector(bracket.line, bracket.column, arguments)

    def arguments(self, *items):
        return tuple(items)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,
        maybe_placeholders=False,
    )


# Deeper nesting than this is refused: the checks and the evaluation recurse once per level,
# and no formula a person writes nests a hundred expressions (8 KB of "-" or "max(" could).
MAX_DEPTH = 100


def parse(formula: str) -> tuple[Node, ...]:
    """Parse a formula into its statements; InvalidFormula says where and why it does not."""
    try:
        tree = _parser().parse(formula)
    except UnexpectedInput as exc:
        raise InvalidFormula(_describe(exc, formula)) from None
    statements = _ToTree().transform(tree)
    for statement in statements:
        deepest = _deepest(statement)
        if deepest is not None:
            raise InvalidFormula(
                at(
                    deepest.line,
                    deepest.column,
                    f"Expressions are nested more than {MAX_DEPTH} deep",
                )
            )
    return statements


def children(node: Node) -> tuple[Node, ...]:
    """The expressions directly inside a node."""
    if isinstance(node, Assign | Bare):
        return (node.value,)
    if isinstance(node, Vector):
        return node.items
    if isinstance(node, Call):
        return node.arguments
    if isinstance(node, Method):
        return (node.target, *node.arguments)
    if isinstance(node, Member):
        return (node.target,)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Conditional):
        return (node.condition, node.then, node.otherwise)
    return ()


def _deepest(statement: Node) -> Node | None:
    """The first node nested deeper than MAX_DEPTH, found without recursing."""
    stack = [(statement, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        stack.extend((child, depth + 1) for child in children(node))
    return None


_TOKEN_TEXT = {
    "_SEMI": "';'",
    "QUESTION": "'?'",
    "OROR": "'||'",
    "ANDAND": "'&&'",
    "EQ": "'=='",
    "NE": "'!='",
    "LE": "'<='",
    "GE": "'>='",
    "LT": "'<'",
    "GT": "'>'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "BANG": "'!'",
    "DOT": "'.'",
    "LBRACKET": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
}


def _expected(names) -> str:
    # a long list of everything that could follow helps nobody
    texts = sorted({_TOKEN_TEXT.get(n, n) for n in names})
    if not texts or len(texts) > 6:
        return ""
    return "; expected " + " or ".join(texts)


def _describe(exc: UnexpectedInput, formula: str) -> str:
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = formula.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
        return at(
            line, column, "Syntax error: the formula ends too early" + _expected(exc.expected)
        )
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        hint = ""
        if token.type == "NAME" and "_SEMI" in exc.expected:
            hint = " (is a ';' missing before it?)"
        return at(
            token.line,
            token.column,
            f"Syntax error: unexpected {str(token)!r}{hint}" + _expected(exc.expected),
        )
    if isinstance(exc, UnexpectedCharacters):
        char = formula[exc.pos_in_stream] if exc.pos_in_stream < len(formula) else ""
        return at(exc.line, exc.column, f"Syntax error: unexpected character {char!r}")
    return at(getattr(exc, "line", 1), getattr(exc, "column", 1), "Syntax error")
