"""Argo's ``{{…}}`` parameter substitution, item expansion, durations and ``when`` expressions.

Substitution works like ``util/template.Replace`` on the JSON of a template or step: a tag is
``{{ name }}`` (whitespace inside the braces allowed); a known name is replaced by its value, an
unknown one is left as written (the controller substitutes with ``allowUnresolved``; unknown
references are caught up front by validation). Expression tags (``{{= …}}``) are not evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from . import exprlang

_FUNCTIONS = frozenset(exprlang.Evaluator({}).functions) | {
    "filter",
    "map",
    "all",
    "any",
    "none",
    "one",
    "count",
    "sprig",
}

TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class TemplateError(Exception):
    """Something Argo reports on a node or the Workflow (the message is Argo's)."""


def param_text(value: Any) -> str:
    """A parameter value as Argo's ``AnyString`` holds it: YAML ``5`` is ``"5"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def tags(text: str) -> Iterator[str]:
    """The names referenced by ``{{…}}`` tags in ``text`` (stripped; expressions skipped)."""
    for found in TAG.finditer(text):
        name = found.group(1).strip()
        if name and not name.startswith("="):
            yield name


def substitute_text(text: str, scope: Mapping[str, str]) -> str:
    """Replace every tag whose name is in ``scope``; leave the others as written."""
    if "{{" not in text:
        return text

    env: dict[str, Any] | None = None

    def replace(found: re.Match[str]) -> str:
        nonlocal env
        name = found.group(1).strip()
        if name.startswith("="):
            if env is None:
                env = exprlang.expand(scope)
            return evaluate_tag(name[1:], env, found.group(0))
        value = scope.get(name)
        return found.group(0) if value is None else value

    return TAG.sub(replace, text)


def _has_path(env: Mapping[str, Any], path: str) -> bool:
    if path in env:
        return True
    current: Any = env
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


def evaluate_tag(expression: str, env: Mapping[str, Any], written: str) -> str:
    """An expression tag's value; the tag as written while a variable it reads is not known yet
    or it cannot be evaluated (Argo substitutes with ``allowUnresolved``)."""
    try:
        tree = exprlang.parse(expression)
        for path in exprlang.identifiers(tree):
            if not _has_path(env, path) and path.split(".")[0] not in _FUNCTIONS:
                return written
        return exprlang.render(exprlang.Evaluator(env).run(tree))
    except exprlang.ExprError:
        return written


def substitute(obj: Any, scope: Mapping[str, str]) -> Any:
    """``substitute_text`` on every string of a JSON-like value (keys included), copying it."""
    if isinstance(obj, str):
        return substitute_text(obj, scope)
    if isinstance(obj, list):
        return [substitute(item, scope) for item in obj]
    if isinstance(obj, dict):
        return {substitute_text(k, scope): substitute(v, scope) for k, v in obj.items()}
    return obj


def all_tags(obj: Any) -> Iterator[str]:
    """Every tag name in the strings of a JSON-like value."""
    if isinstance(obj, str):
        yield from tags(obj)
    elif isinstance(obj, list):
        for item in obj:
            yield from all_tags(item)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from tags(str(key))
            yield from all_tags(value)


# --- items ---------------------------------------------------------------------------------------


def _item_string(value: Any) -> str:
    """``Item.String()``: strings unquoted, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return param_text(value) if value is not None else "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _go_value(value: Any) -> str:
    """``fmt.Sprintf("%v", …)`` of an item value (lists print as ``[a b]``)."""
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return _item_string(value)


def item_scope(item: Any) -> tuple[dict[str, str], str]:
    """(``{{item}}`` / ``{{item.key}}`` values, the node-name description) of one item."""
    if isinstance(item, dict):
        scope = {f"item.{key}": _item_string(value) for key, value in item.items()}
        scope["item"] = json.dumps(item, separators=(",", ":"), sort_keys=True)
        desc = ",".join(sorted(f"{key}:{_go_value(value)}" for key, value in item.items()))
        return scope, desc
    if isinstance(item, list):
        return {"item": json.dumps(item, separators=(",", ":"))}, _go_value(item)
    if item is None:
        raise TemplateError("withItems[] expected string, number, list, or map. received: null")
    text = _item_string(item)
    return {"item": text}, text


def expansion_items(holder: Mapping[str, Any]) -> list[Any] | None:
    """The items a step or task expands over (``withItems``, ``withParam``, ``withSequence``);
    None when it does not expand. A ``withParam`` that is not a JSON list is a ``TemplateError``
    with Argo's message."""
    if holder.get("withItems"):
        return list(holder["withItems"])
    if holder.get("withParam"):
        text = str(holder["withParam"])
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise TemplateError(
                f"withParam value could not be parsed as a JSON list: {text.strip()}"
            )
        return items
    sequence = holder.get("withSequence")
    if sequence:
        return _sequence(sequence)
    if "withItems" in holder or "withParam" in holder:
        return []
    return None


def _sequence(sequence: Mapping[str, Any]) -> list[Any]:
    fmt = sequence.get("format") or "%d"
    try:
        start = int(str(sequence.get("start", 0) or 0))
        if sequence.get("count") not in (None, ""):
            count = int(str(sequence["count"]))
            numbers = list(range(start, start + count))
        else:
            end = int(str(sequence.get("end", 0) or 0))
            step = 1 if end >= start else -1
            numbers = list(range(start, end + step, step))
    except ValueError as exc:
        raise TemplateError(f"withSequence is invalid: {exc}") from exc
    try:
        return [fmt % n for n in numbers]
    except (TypeError, ValueError):
        return [str(n) for n in numbers]


def expanded_name(name: str, index: int, desc: str) -> str:
    """``generateNodeName``: ``task2-3(0:1)``."""
    return f"{name}({index}:{desc})"


# --- durations -----------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """``ParseStringToDuration``: a bare number is seconds, else a Go duration (``1h30m``)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    if not text or not re.fullmatch(rf"(?:{_DURATION_PART.pattern})+", text):
        raise TemplateError(f'time: invalid duration "{text}"')
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def humanize_duration(seconds: float) -> str:
    """``humanize.Duration`` as Argo's backoff message shows it (``10 seconds``, ``2 minutes``)."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} second" + ("" if whole == 1 else "s")
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        text = f"{minutes} minute" + ("" if minutes == 1 else "s")
        return text + (f" {rest} seconds" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours} hour" + ("" if hours == 1 else "s") + (f" {minutes} minutes" if minutes else "")
    )


# --- when ----------------------------------------------------------------------------------------

_WHEN_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\""
    r"|(?P<op>==|!=|<=|>=|=~|!~|&&|\|\||[<>!()])|(?P<word>[^\s()<>=!&|'\"]+))"
)


class _When:
    """A small ``govaluate`` for ``when``: comparisons, ``&&``, ``||``, ``!``, parentheses;
    bare words are strings, as Argo treats them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            found = _WHEN_TOKEN.match(text, pos)
            if not found or found.end() == pos:
                raise TemplateError(f"Invalid 'when' expression '{text}': unexpected character")
            pos = found.end()
            if found.group("num") is not None:
                self.tokens.append(("val", float(found.group("num"))))
            elif found.group("sq") is not None:
                self.tokens.append(("val", found.group("sq")))
            elif found.group("dq") is not None:
                self.tokens.append(("val", found.group("dq")))
            elif found.group("op") is not None:
                self.tokens.append(("op", found.group("op")))
            else:
                word = found.group("word")
                self.tokens.append(("val", {"true": True, "false": False}.get(word, word)))
        self.pos = 0

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, Any]:
        token = self._peek()
        if token is None:
            raise TemplateError(f"Invalid 'when' expression '{self.text}': unexpected end")
        self.pos += 1
        return token

    def evaluate(self) -> Any:
        value = self._or()
        if self._peek() is not None:
            raise TemplateError(f"Invalid 'when' expression '{self.text}': unexpected token")
        return value

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == ("op", "||"):
            self._take()
            right = self._and()
            left = bool(left) or bool(right)
        return left

    def _and(self) -> Any:
        left = self._compare()
        while self._peek() == ("op", "&&"):
            self._take()
            right = self._compare()
            left = bool(left) and bool(right)
        return left

    def _compare(self) -> Any:
        left = self._unary()
        token = self._peek()
        if (
            token
            and token[0] == "op"
            and token[1] in ("==", "!=", "<", ">", "<=", ">=", "=~", "!~")
        ):
            op = self._take()[1]
            right = self._unary()
            if op in ("=~", "!~"):
                matched = re.search(str(right), str(left)) is not None
                return matched if op == "=~" else not matched
            if op in ("==", "!="):
                return (left == right) == (op == "==")
            if not (isinstance(left, float) and isinstance(right, float)):
                raise TemplateError(
                    f"Invalid 'when' expression '{self.text}': cannot compare non-numbers"
                )
            return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[
                op
            ]
        return left

    def _unary(self) -> Any:
        token = self._take()
        if token == ("op", "!"):
            return not bool(self._unary())
        if token == ("op", "("):
            value = self._or()
            if self._take() != ("op", ")"):
                raise TemplateError(f"Invalid 'when' expression '{self.text}': missing )")
            return value
        if token[0] == "op":
            raise TemplateError(f"Invalid 'when' expression '{self.text}': unexpected {token[1]}")
        return token[1]


def evaluate_when(expression: str) -> bool:
    """``shouldExecute``: an empty expression runs; a non-boolean result is an error."""
    if not expression or not expression.strip():
        return True
    result = _When(expression).evaluate()
    if not isinstance(result, bool):
        raise TemplateError(f"Expected boolean evaluation for '{expression}'. Got {result}")
    return result
