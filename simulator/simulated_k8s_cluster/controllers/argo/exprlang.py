"""A small evaluator for the part of expr-lang (``github.com/expr-lang/expr``) Argo's expression
tags (``{{= …}}``) use, with the functions Argo adds (``util/expr/env``): ``asInt``,
``asFloat``, ``jsonpath``, ``toJson`` and a few ``sprig.*``.

Language: ``nil``/``true``/``false``, numbers (integers stay integers; ``/`` gives a float, as in
expr), strings in ``'…'`` or ``"…"``, arrays ``[…]``, maps ``{k: v}``, member access (``a.b``,
``a?.b``, ``a['b']``, ``a[0]``, slices ``a[1:2]``), calls, unary ``!``/``not``/``-``, ``**``
``* / %``, ``+ -``, comparisons, ``in``/``not in``, ``matches``, ``contains``, ``startsWith``,
``endsWith``, ``&&``/``and``, ``||``/``or``, ``??`` and ``?:``; predicates ``{# > 1}`` (``#`` the
element, ``.x`` a field of it) for ``filter``, ``map``, ``all``, ``any``, ``none``, ``one``,
``count``. Anything else is an :class:`ExprError`.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any


class ExprError(Exception):
    """The expression cannot be parsed or evaluated."""


class Missing(ExprError):
    """The expression names a variable the environment does not have."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d+(?:[eE][-+]?\d+)?|\d+)"
    r"|'(?P<sq>(?:\\.|[^'\\])*)'|\"(?P<dq>(?:\\.|[^\"\\])*)\""
    r"|(?P<op>\?\?|\?\.|\*\*|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}#^])"
    r"|(?P<name>[A-Za-z_$][A-Za-z0-9_$]*))"
)
_WORD_OPS = {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}


def _unescape(text: str) -> str:
    return json.loads('"' + text.replace('"', '\\"').replace("\\'", "'") + '"')


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            raise ExprError(f"unexpected character {text[pos:].strip()[:1]!r} in {text!r}")
        pos = found.end()
        if found.group("num") is not None:
            raw = found.group("num")
            tokens.append(("val", float(raw) if "." in raw or "e" in raw.lower() else int(raw)))
        elif found.group("sq") is not None:
            tokens.append(("val", _unescape(found.group("sq"))))
        elif found.group("dq") is not None:
            tokens.append(("val", _unescape(found.group("dq"))))
        elif found.group("op") is not None:
            tokens.append(("op", found.group("op")))
        else:
            name = found.group("name")
            if name in _WORD_OPS:
                tokens.append(("op", name))
            elif name in ("true", "false"):
                tokens.append(("val", name == "true"))
            elif name == "nil":
                tokens.append(("val", None))
            else:
                tokens.append(("name", name))
    return tokens


# An AST node is a tuple: ("val", v) | ("var", name) | ("member", obj, key, optional)
# | ("slice", obj, lo, hi) | ("call", callee, args) | ("unary", op, x) | ("bin", op, l, r)
# | ("cond", c, a, b) | ("array", items) | ("map", pairs) | ("pred", body) | ("elem",)
Node = tuple[Any, ...]

_BINARY = [
    ("??",),
    ("||", "or"),
    ("&&", "and"),
    (
        "==",
        "!=",
        "<",
        ">",
        "<=",
        ">=",
        "in",
        "not in",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
    ),
    ("+", "-"),
    ("*", "/", "%"),
    ("**", "^"),
]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, Any] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise ExprError(f"unexpected end of expression {self.text!r}")
        self.pos += 1
        return token

    def expect(self, op: str) -> None:
        token = self.take()
        if token != ("op", op):
            raise ExprError(f"expected {op!r} in {self.text!r}, got {token[1]!r}")

    def parse(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise ExprError(f"unexpected token {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return node

    def expression(self) -> Node:
        node = self.binary(0)
        if self.peek() == ("op", "?"):
            self.take()
            yes = self.expression()
            self.expect(":")
            no = self.expression()
            return ("cond", node, yes, no)
        return node

    def _binary_op(self, level: int) -> str | None:
        token = self.peek()
        if token is None or token[0] != "op":
            return None
        if token[1] == "not" and self.peek(1) == ("op", "in") and "not in" in _BINARY[level]:
            return "not in"
        return str(token[1]) if token[1] in _BINARY[level] else None

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self._binary_op(level)) is not None:
            self.take()
            if op == "not in":
                self.take()
            right = self.binary(level + 1) if op not in ("**", "^") else self.binary(level)
            left = ("bin", op, left, right)
        return left

    def unary(self) -> Node:
        token = self.peek()
        if token in (("op", "!"), ("op", "not"), ("op", "-"), ("op", "+")):
            self.take()
            return ("unary", token[1], self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "val":
            return ("val", value)
        if kind == "name":
            return ("var", value)
        if value == "(":
            node = self.expression()
            self.expect(")")
            return node
        if value == "[":
            items = self.items("]")
            return ("array", items)
        if value == "{":
            pairs = []
            while self.peek() != ("op", "}"):
                key_kind, key = self.take()
                if key_kind not in ("name", "val"):
                    raise ExprError(f"bad map key in {self.text!r}")
                self.expect(":")
                pairs.append((key, self.expression()))
                if self.peek() == ("op", ","):
                    self.take()
            self.take()
            return ("map", pairs)
        if value == "#":
            return ("elem",)
        if value == ".":  # ``.field`` inside a predicate
            _, name = self.take()
            return ("member", ("elem",), ("val", name), False)
        raise ExprError(f"unexpected {value!r} in {self.text!r}")

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        while self.peek() != ("op", close):
            out.append(self.expression())
            if self.peek() == ("op", ","):
                self.take()
            elif self.peek() != ("op", close):
                raise ExprError(f"expected {close!r} in {self.text!r}")
        self.take()
        return out

    def argument(self) -> Node:
        is_map = self.peek(2) == ("op", ":") or self.peek(1) == ("op", "}")
        if self.peek() == ("op", "{") and not is_map:
            # a predicate: ``{# > 1}``
            self.take()
            body = self.expression()
            self.expect("}")
            return ("pred", body)
        return self.expression()

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token in (("op", "."), ("op", "?.")):
                self.take()
                kind, name = self.take()
                if kind != "name" and not (kind == "op" and name in _WORD_OPS):
                    raise ExprError(f"expected a name after '.' in {self.text!r}")
                node = ("member", node, ("val", name), token == ("op", "?."))
            elif token == ("op", "["):
                self.take()
                lo: Node | None = None
                if self.peek() != ("op", ":"):
                    lo = self.expression()
                if self.peek() == ("op", ":"):
                    self.take()
                    hi = None if self.peek() == ("op", "]") else self.expression()
                    self.expect("]")
                    node = ("slice", node, lo, hi)
                else:
                    self.expect("]")
                    assert lo is not None
                    node = ("member", node, lo, False)
            elif token == ("op", "("):
                self.take()
                args: list[Node] = []
                while self.peek() != ("op", ")"):
                    args.append(self.argument())
                    if self.peek() == ("op", ","):
                        self.take()
                    elif self.peek() != ("op", ")"):
                        raise ExprError(f"expected ')' in {self.text!r}")
                self.take()
                node = ("call", node, args)
            else:
                return node


def parse(text: str) -> Node:
    """The syntax tree of an expression; raises :class:`ExprError`."""
    return _Parser(text).parse()


def identifiers(node: Node) -> list[str]:
    """Dotted variable paths an expression reads (``inputs.parameters.foo``), as Argo's
    ``getIdentifiers`` lists them."""
    out: list[str] = []

    def path(n: Node) -> str | None:
        if n[0] == "var":
            return str(n[1])
        if n[0] == "member" and not n[3] and n[2][0] == "val" and isinstance(n[2][1], str):
            base = path(n[1])
            return None if base is None else f"{base}.{n[2][1]}"
        return None

    def walk(n: Any) -> None:
        if not isinstance(n, tuple) or not n:
            if isinstance(n, list):
                for item in n:
                    walk(item)
            return
        if n[0] == "call" and n[1][0] in ("var", "member"):
            walk(list(n[2]))
            if n[1][0] == "member":
                walk(n[1][1])
            return
        found = path(n) if n[0] in ("var", "member") else None
        if found is not None:
            out.append(found)
            return
        for part in n[1:]:
            walk(part)

    walk(node)
    return out


# --- evaluation ----------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_int(value: Any) -> int:
    """expr's ``int()`` (Argo's ``asInt``)."""
    if isinstance(value, bool):
        raise ExprError(f"invalid operation: int({value!r})")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError as exc:
            raise ExprError(f'strconv.Atoi: parsing "{value}": invalid syntax') from exc
    raise ExprError(f"invalid operation: int({value!r})")


def as_float(value: Any) -> float:
    """expr's ``float()`` (Argo's ``asFloat``)."""
    if isinstance(value, bool):
        raise ExprError(f"invalid operation: float({value!r})")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError as exc:
            raise ExprError(f'strconv.ParseFloat: parsing "{value}": invalid syntax') from exc
    raise ExprError(f"invalid operation: float({value!r})")


def to_json(value: Any) -> str:
    """Go's ``json.Marshal`` of a value, as a string."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, dict):
        inner = ",".join(
            f"{json.dumps(str(k))}:{to_json(v)}"
            for k, v in sorted(value.items(), key=lambda i: str(i[0]))
        )
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# --- jsonpath (the part Argo's examples use) ----------------------------------------------------

_JP_STEP = re.compile(r"\.\.|\.(?P<name>[A-Za-z_][\w-]*)|\.\*|\[\s*(?P<sel>[^\]]*?)\s*\]")


def _jp_filter(condition: str, item: Any) -> bool:
    for disjunct in condition.split("||"):
        if all(_jp_compare(part.strip(), item) for part in disjunct.split("&&")):
            return True
    return False


def _jp_compare(part: str, item: Any) -> bool:
    found = re.match(r"^@((?:\.[\w-]+)*)\s*(==|!=|<=|>=|<|>)?\s*(.*)$", part)
    if found is None:
        raise ExprError(f"unsupported jsonpath filter {part!r}")
    current = item
    for name in [p for p in found.group(1).split(".") if p]:
        if not isinstance(current, dict) or name not in current:
            return False
        current = current[name]
    if found.group(2) is None:
        return bool(current)
    literal = json.loads(found.group(3).replace("'", '"'))
    op = found.group(2)
    try:
        return bool(
            {
                "==": current == literal,
                "!=": current != literal,
                "<": current < literal,
                ">": current > literal,
                "<=": current <= literal,
                ">=": current >= literal,
            }[op]
        )
    except TypeError:
        return False


def jsonpath(document: str, path: str) -> Any:
    """``jsonpath(json, '$.a[0].b')``: one value, or a list where the path has a wildcard,
    slice or filter."""
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise ExprError(f"jsonpath: the first argument is not JSON: {exc}") from exc
    if not path.startswith("$"):
        raise ExprError(f"jsonpath: {path!r} does not start with $")
    values, many, pos = [data], False, 1
    while pos < len(path):
        found = _JP_STEP.match(path, pos)
        if found is None:
            raise ExprError(f"jsonpath: cannot parse {path[pos:]!r}")
        pos = found.end()
        text = found.group(0)
        nxt: list[Any] = []
        if found.group("name") is not None or (found.group("sel") or "").startswith(("'", '"')):
            key = found.group("name") or (found.group("sel") or "")[1:-1]
            nxt = [v[key] for v in values if isinstance(v, dict) and key in v]
        elif text in (".*", "[*]") or found.group("sel") == "*":
            many = True
            for v in values:
                nxt.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else [])
        elif (found.group("sel") or "").startswith("?"):
            many = True
            condition = found.group("sel")[1:].strip().removeprefix("(").removesuffix(")")
            for v in values:
                nxt.extend(
                    x for x in (v if isinstance(v, list) else []) if _jp_filter(condition, x)
                )
        elif found.group("sel") is not None and ":" in found.group("sel"):
            many = True
            lo, _, hi = found.group("sel").partition(":")
            for v in values:
                if isinstance(v, list):
                    nxt.extend(v[int(lo) if lo else None : int(hi) if hi else None])
        elif found.group("sel") is not None and re.fullmatch(r"-?\d+", found.group("sel")):
            index = int(found.group("sel"))
            nxt = [v[index] for v in values if isinstance(v, list) and -len(v) <= index < len(v)]
        else:
            raise ExprError(f"jsonpath: unsupported step {text!r}")
        values = nxt
    if many:
        return values
    if not values:
        raise ExprError(f"jsonpath: nothing at {path!r}")
    return values[0]


# --- sprig (the generic functions Argo's examples use) -------------------------------------------

_GO_LAYOUT = [
    ("2006", "%Y"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("04", "%M"),
    ("05", "%S"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("06", "%y"),
]


def _go_format(layout: str, when: _dt.datetime) -> str:
    out = layout
    for go, py in _GO_LAYOUT:
        out = out.replace(go, py)
    return when.strftime(out)


def _sprig_date(layout: str, value: Any) -> str:
    # sprig formats the current time for anything but a time or a Unix time (a string, say)
    if _number(value):
        when = _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc)
    else:
        when = _dt.datetime.now(_dt.timezone.utc)
    return _go_format(layout, when)


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return to_json(value)


SPRIG: dict[str, Callable[..., Any]] = {
    "date": _sprig_date,
    "trim": lambda s: str(s).strip(),
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "replace": lambda old, new, s: str(s).replace(str(old), str(new)),
    "trimPrefix": lambda p, s: str(s).removeprefix(str(p)),
    "trimSuffix": lambda p, s: str(s).removesuffix(str(p)),
    "hasPrefix": lambda p, s: str(s).startswith(str(p)),
    "hasSuffix": lambda p, s: str(s).endswith(str(p)),
    "contains": lambda sub, s: str(sub) in str(s),
    "toString": _to_string,
    "atoi": lambda s: int(str(s)) if re.fullmatch(r"[-+]?\d+", str(s)) else 0,
    "int": lambda v: as_int(v) if v not in (None, "") else 0,
    "float64": lambda v: as_float(v) if v not in (None, "") else 0.0,
    "add": lambda *xs: sum(as_int(x) for x in xs),
    "sub": lambda a, b: as_int(a) - as_int(b),
    "mul": lambda *xs: __import__("math").prod(as_int(x) for x in xs),
    "default": lambda d, *v: v[0] if v and v[0] not in (None, "", [], {}, 0, False) else d,
    "empty": lambda v: v in (None, "", [], {}, 0, False),
    "quote": lambda *xs: " ".join(json.dumps(_to_string(x)) for x in xs),
    "squote": lambda *xs: " ".join(f"'{_to_string(x)}'" for x in xs),
    "join": lambda sep, xs: str(sep).join(_to_string(x) for x in xs),
    "splitList": lambda sep, s: str(s).split(str(sep)),
    "repeat": lambda n, s: str(s) * as_int(n),
    "b64enc": lambda s: __import__("base64").b64encode(str(s).encode()).decode(),
    "b64dec": lambda s: __import__("base64").b64decode(str(s)).decode(),
    "list": lambda *xs: list(xs),
    "dict": lambda *xs: {str(xs[i]): xs[i + 1] for i in range(0, len(xs) - 1, 2)},
}


# --- the evaluator -------------------------------------------------------------------------------


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("==", "!="):
        equal = float(left) == float(right) if _number(left) and _number(right) else left == right
        return equal if op == "==" else not equal
    if not (
        (_number(left) and _number(right)) or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ExprError(f"invalid operation: {left!r} {op} {right!r}")
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    if not (_number(left) and _number(right)):
        raise ExprError(f"invalid operation: {left!r} {op} {right!r}")
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0:
            raise ExprError("division by zero")
        return float(left) / float(right)
    if op == "%":
        if not (isinstance(left, int) and isinstance(right, int)):
            raise ExprError(f"invalid operation: {left!r} % {right!r}")
        if right == 0:
            raise ExprError("integer divide by zero")
        return int(__import__("math").fmod(left, right))
    return float(left) ** float(right)


class Evaluator:
    """Evaluates a parsed expression in an environment (nested maps of values)."""

    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env
        self.functions: dict[str, Callable[..., Any]] = {
            "asInt": as_int,
            "int": as_int,
            "asFloat": as_float,
            "float": as_float,
            "string": _to_string,
            "toJson": to_json,
            "jsonpath": jsonpath,
            "len": lambda v: len(v),
            "upper": lambda s: str(s).upper(),
            "lower": lambda s: str(s).lower(),
            "trim": lambda s, chars=None: str(s).strip(chars),
            "split": lambda s, sep: str(s).split(str(sep)),
            "join": lambda xs, sep="": str(sep).join(_to_string(x) for x in xs),
            "keys": lambda m: list(m.keys()),
            "values": lambda m: list(m.values()),
            "abs": lambda x: abs(x),
            "max": lambda *xs: max(xs[0] if len(xs) == 1 else xs),
            "min": lambda *xs: min(xs[0] if len(xs) == 1 else xs),
            "fromJSON": lambda s: json.loads(s),
            "toJSON": lambda v: json.dumps(v, indent=2),
            "now": lambda: _dt.datetime.now(_dt.timezone.utc),
        }

    def run(self, node: Node, elem: Any = None) -> Any:
        kind = node[0]
        if kind == "val":
            return node[1]
        if kind == "elem":
            return elem
        if kind == "var":
            name = node[1]
            if name in self.env:
                return self.env[name]
            if name in self.functions:
                return self.functions[name]
            raise Missing(f"unknown name {name}")
        if kind == "array":
            return [self.run(n, elem) for n in node[1]]
        if kind == "map":
            return {str(k): self.run(v, elem) for k, v in node[1]}
        if kind == "member":
            obj = self.run(node[1], elem)
            key = self.run(node[2], elem)
            if obj is None:
                if node[3]:
                    return None
                raise ExprError(f"cannot fetch {key} from nil")
            if isinstance(obj, Mapping):
                if key in obj:
                    return obj[key]
                if node[1][0] == "var" and node[1][1] == "sprig":
                    raise ExprError(f"sprig.{key} is not available in the simulated controller")
                return None
            if isinstance(obj, (list, str)) and _number(key):
                index = int(key)
                if not -len(obj) <= index < len(obj):
                    raise ExprError(f"index out of range: {index} (array length is {len(obj)})")
                return obj[index]
            raise ExprError(f"cannot fetch {key!r} from {type(obj).__name__}")
        if kind == "slice":
            obj = self.run(node[1], elem)
            lo = None if node[2] is None else as_int(self.run(node[2], elem))
            hi = None if node[3] is None else as_int(self.run(node[3], elem))
            return obj[lo:hi]
        if kind == "call":
            return self.call(node, elem)
        if kind == "unary":
            value = self.run(node[2], elem)
            if node[1] in ("!", "not"):
                if not isinstance(value, bool):
                    raise ExprError(f"invalid operation: ! {value!r}")
                return not value
            if not _number(value):
                raise ExprError(f"invalid operation: {node[1]} {value!r}")
            return -value if node[1] == "-" else value
        if kind == "cond":
            return self.run(node[2] if self._bool(self.run(node[1], elem)) else node[3], elem)
        if kind == "bin":
            return self.binary(node, elem)
        raise ExprError(f"cannot evaluate {kind}")

    @staticmethod
    def _bool(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ExprError(f"expected bool, got {value!r}")
        return value

    def binary(self, node: Node, elem: Any) -> Any:
        op = node[1]
        if op == "??":
            try:
                left = self.run(node[2], elem)
            except Missing:
                left = None
            return self.run(node[3], elem) if left is None else left
        left = self.run(node[2], elem)
        if op in ("||", "or"):
            return True if self._bool(left) else self._bool(self.run(node[3], elem))
        if op in ("&&", "and"):
            return self._bool(self.run(node[3], elem)) if self._bool(left) else False
        right = self.run(node[3], elem)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            return _compare(op, left, right)
        if op in ("in", "not in"):
            found = left in right if isinstance(right, (list, Mapping)) else False
            return found if op == "in" else not found
        if op == "matches":
            return re.search(str(right), str(left)) is not None
        if op == "contains":
            return str(right) in str(left)
        if op == "startsWith":
            return str(left).startswith(str(right))
        if op == "endsWith":
            return str(left).endswith(str(right))
        return _arith("**" if op == "^" else op, left, right)

    _PREDICATES = ("filter", "map", "all", "any", "none", "one", "count")

    def call(self, node: Node, elem: Any) -> Any:
        callee, args = node[1], node[2]
        if callee[0] == "var" and callee[1] in self._PREDICATES and callee[1] not in self.env:
            if len(args) != 2 or args[1][0] != "pred":
                raise ExprError(f"{callee[1]}() takes an array and a predicate")
            items = self.run(args[0], elem)
            if not isinstance(items, list):
                raise ExprError(f"{callee[1]}() needs an array, got {items!r}")
            body = args[1][1]
            name = callee[1]
            if name == "map":
                return [self.run(body, item) for item in items]
            results = [self._bool(self.run(body, item)) for item in items]
            if name == "filter":
                return [item for item, ok in zip(items, results, strict=True) if ok]
            return {
                "all": all(results),
                "any": any(results),
                "none": not any(results),
                "one": sum(results) == 1,
                "count": sum(results),
            }[name]
        function = self.run(callee, elem)
        if not callable(function):
            raise ExprError(f"{function!r} is not a function")
        values = [self.run(a, elem) for a in args]
        try:
            return function(*values)
        except ExprError:
            raise
        except Exception as exc:  # a Go function that panics: the expression fails
            raise ExprError(f"{exc}") from exc


def expand(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Argo's ``expand.Expand``: ``a.b.c`` keys also as nested maps (``a`` → ``b`` → ``c``)."""
    out: dict[str, Any] = dict(flat)
    for key, value in flat.items():
        parts = key.split(".")
        current = out
        for part in parts[:-1]:
            nxt = current.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                current[part] = nxt
            current = nxt
        if parts[-1] not in current or not isinstance(current[parts[-1]], dict):
            current[parts[-1]] = value
    out["sprig"] = dict(SPRIG)
    return out


def evaluate(expression: str, env: Mapping[str, Any]) -> Any:
    """Evaluate an expression; raises :class:`ExprError` (:class:`Missing` for an unknown
    variable)."""
    return Evaluator(env).run(parse(expression))


def render(value: Any) -> str:
    """How an expression tag's result is written into the text (``json.Marshal``, a string
    without its quotes)."""
    if isinstance(value, str):
        return value
    return to_json(value)
