"""A small POSIX-like shell and busybox-like commands, for what ``pods/exec`` runs in a container.

A simulated container has no processes or file system of its own; commands executed in it are
interpreted here against a :class:`Container` view the kubelet provides: the files its
behaviour (and the behaviours of containers sharing a volume with it) wrote, its environment,
its processes (PID 1, the main process, and the exec sessions) and the signals they handle.

The shell understands simple commands with quoting (``'…'``, ``"…"``, ``\\``), ``$VAR``,
``${VAR}``, ``$?``, ``$((…))`` integer arithmetic, command substitution (``$(…)``,
backquotes), assignments, ``;``, ``&&``, ``||``, pipes, ``!``, ``if … then … elif … else …
fi``, redirections (``>``, ``>>``, ``<``, ``2>``, ``2>&1``, ``>/dev/null``) and comments;
loops, ``case``, functions, subshells and globbing are refused with a syntax error (exit 2).
Commands: ``cat``, ``echo``, ``printf``, ``true``, ``false``, ``:``, ``test`` / ``[``, ``exit``,
``kill``, ``pgrep``, ``ps``, ``id``, ``hostname``, ``pwd``, ``cd``, ``env``, ``printenv``,
``sleep`` (seconds times ``timeScale``), ``touch``, ``tee``, ``cp``, ``set`` (``-e`` honoured),
``mkdir`` (directories are implicit) and
``sh`` / ``bash`` / ``ash`` (``-c SCRIPT``, a script file, or a script on standard input).
Anything else is ``sh: NAME: not found`` with exit code 127, unless the container's behaviour
``exec`` answers it. Error messages are busybox's (what an ``alpine`` image prints).
"""

from __future__ import annotations

import ast
import math
import posixpath
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .behaviours import SIGNALS, ExecAnswer, signal_name

Writer = Callable[[str], Awaitable[None]]

SHELLS = frozenset({"sh", "bash", "ash", "dash"})
_BIN_DIRS = frozenset({"", "/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_UNSUPPORTED = {"for", "while", "until", "case", "function", "select", "(", "{"}


class Container(Protocol):
    """What commands see of the container they run in."""

    hostname: str
    env: Mapping[str, str]
    pid: int
    """The exec session's process ID."""

    def read_file(self, path: str) -> str | None:
        """The content of an absolute path, or None when there is no such file."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def write_file(self, path: str, content: str, append: bool = False) -> None: ...

    def processes(self) -> list[tuple[int, str]]:
        """``(pid, command line)`` of every process."""
        ...

    def signal(self, pid: int, signal: str) -> bool:
        """Deliver a signal (``INT``); False when there is no such process."""
        ...

    def signalled(self) -> str | None:
        """The signal that ended this exec session, if one did."""
        ...

    def answer(self, words: list[str]) -> ExecAnswer | None:
        """The behaviour's ``exec`` answer for a command, if it has one."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` shortened by the cluster's time scale."""
        ...


class MissingFile(Exception):
    """Raised by a container's ``read_file`` that cannot tell what a file it lacks would hold
    (a container running its own command): the command cannot be interpreted."""


def _probe(container: Container, path: str) -> str | None:
    """A file's content for a test of its existence: None when missing."""
    try:
        return container.read_file(path)
    except MissingFile:
        return None


class ShellSyntaxError(Exception):
    """What the shell prints (after ``sh: ``) for a script it cannot run; exit code 2."""


class Incomplete(ShellSyntaxError):
    """The script ends inside a quote or an ``if``: an interactive shell waits for more."""


class Exit(Exception):
    """``exit N`` or a fatal signal: the shell stops with this status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# --- lexing -------------------------------------------------------------------------------------

Part = tuple[str, str, bool]
"""``(kind, value, quoted)``: kind ``lit`` (text), ``var`` (a parameter) or ``cmd`` (a command
substitution's script)."""


@dataclass
class Word:
    parts: list[Part]

    def literal(self) -> str | None:
        """The word's text when it is plain unquoted text (keywords, operators' targets)."""
        if all(kind == "lit" and not quoted for kind, _, quoted in self.parts):
            return "".join(value for _, value, _ in self.parts)
        return None

    def text(self) -> str:
        """The word as written (for matching a behaviour's ``exec`` answers)."""
        return "".join(value for _, value, _ in self.parts)


@dataclass
class Op:
    value: str


Token = Word | Op
_OPERATORS = ("&&", "||", ";;", ">>", ">&", "<&", "<<", ";", "&", "|", "<", ">", "(", ")")
_SPECIAL = set(" \t\n;&|<>()'\"\\$`")


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``$(`` whose content starts at ``start``."""
    depth, i, n = 1, start, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise Incomplete("syntax error: unterminated quoted string")
            i = end + 1
            continue
        if c == '"':
            i = _closing_quote(text, i + 1) + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise Incomplete("syntax error: missing )")


def _closing_quote(text: str, start: int) -> int:
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        if c == "$" and text[i + 1 : i + 2] == "(":
            i = _closing_paren(text, i + 2) + 1
            continue
        i += 1
    raise Incomplete("syntax error: unterminated quoted string")


def _dollar(text: str, i: int, parts: list[Part], quoted: bool) -> int:
    """Lex the expansion at ``text[i] == "$"``; the index after it."""
    nxt = text[i + 1 : i + 2]
    if text[i + 1 : i + 3] == "((":
        end = _closing_paren(text, i + 3)
        if text[end + 1 : end + 2] != ")":
            raise ShellSyntaxError("syntax error: missing '))'")
        parts.append(("arith", text[i + 3 : end], quoted))
        return end + 2
    if nxt == "(":
        end = _closing_paren(text, i + 2)
        parts.append(("cmd", text[i + 2 : end], quoted))
        return end + 1
    if nxt == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise Incomplete("syntax error: missing }")
        name = text[i + 2 : end]
        if not (_NAME.fullmatch(name) or name in ("?", "$", "#") or name.isdigit()):
            raise ShellSyntaxError(f"syntax error: bad substitution '${{{name}}}'")
        parts.append(("var", name, quoted))
        return end + 1
    found = _NAME.match(text, i + 1)
    if found:
        parts.append(("var", found.group(0), quoted))
        return found.end()
    if (nxt and nxt in "?$#@*!-") or nxt.isdigit():
        parts.append(("var", nxt, quoted))
        return i + 2
    parts.append(("lit", "$", quoted))
    return i + 1


def tokenize(text: str) -> list[Token]:
    """Words and operators of a script (newlines are ``Op("\\n")``)."""
    tokens: list[Token] = []
    parts: list[Part] | None = None
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal parts
        if parts is not None:
            tokens.append(Word(parts))
            parts = None

    while i < n:
        c = text[i]
        if c in " \t":
            flush()
            i += 1
        elif c == "\n":
            flush()
            tokens.append(Op("\n"))
            i += 1
        elif c == "#" and parts is None:
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";&|<>()":
            fd = ""
            if c in "<>" and parts is not None and len(parts) == 1:
                kind, value, quoted = parts[0]
                if kind == "lit" and not quoted and value.isdigit():
                    fd, parts = value, None
            flush()
            op = next(o for o in _OPERATORS if text.startswith(o, i))
            tokens.append(Op(fd + op))
            i += len(op)
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise Incomplete("syntax error: unterminated quoted string")
            parts = parts if parts is not None else []
            parts.append(("lit", text[i + 1 : end], True))
            i = end + 1
        elif c == '"':
            end = _closing_quote(text, i + 1)
            parts = parts if parts is not None else []
            parts.append(("lit", "", True))
            j = i + 1
            while j < end:
                d = text[j]
                if d == "\\" and text[j + 1 : j + 2] in ('"', "\\", "$", "`", "\n"):
                    if text[j + 1] != "\n":
                        parts.append(("lit", text[j + 1], True))
                    j += 2
                elif d == "$":
                    j = _dollar(text, j, parts, True)
                elif d == "`":
                    close = text.find("`", j + 1)
                    if close < 0 or close > end:
                        raise Incomplete("syntax error: unterminated quoted string")
                    parts.append(("cmd", text[j + 1 : close], True))
                    j = close + 1
                else:
                    parts.append(("lit", d, True))
                    j += 1
            i = end + 1
        elif c == "\\":
            if text[i + 1 : i + 2] == "\n":
                i += 2
                continue
            parts = parts if parts is not None else []
            parts.append(("lit", text[i + 1 : i + 2], True))
            i += 2
        elif c == "$":
            parts = parts if parts is not None else []
            i = _dollar(text, i, parts, False)
        elif c == "`":
            close = text.find("`", i + 1)
            if close < 0:
                raise Incomplete("syntax error: unterminated quoted string")
            parts = parts if parts is not None else []
            parts.append(("cmd", text[i + 1 : close], False))
            i = close + 1
        else:
            j = i
            while j < n and text[j] not in _SPECIAL:
                j += 1
            parts = parts if parts is not None else []
            parts.append(("lit", text[i:j], False))
            i = j
    flush()
    return tokens


# --- parsing ------------------------------------------------------------------------------------


@dataclass
class Simple:
    words: list[Word]
    redirects: list[tuple[str, Word]] = field(default_factory=list)
    assignments: list[tuple[str, Word]] = field(default_factory=list)


@dataclass
class If:
    branches: list[tuple[Sequence, Sequence]]
    otherwise: Sequence | None


@dataclass
class Pipeline:
    commands: list[Simple | If]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]]


@dataclass
class Sequence:
    items: list[AndOr]


_SEPARATORS = {";", "&", "\n"}
_REDIRECTS = re.compile(r"^(\d*)(>>|>&|<&|>|<)$")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self) -> str | None:
        token = self.peek()
        return token.literal() if isinstance(token, Word) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def skip_separators(self) -> None:
        while isinstance(self.peek(), Op) and self.peek().value in _SEPARATORS:  # type: ignore[union-attr]
            self.i += 1

    def sequence(self, stop: tuple[str, ...] = ()) -> Sequence:
        items: list[AndOr] = []
        while True:
            self.skip_separators()
            token = self.peek()
            if token is None or (stop and self.keyword() in stop):
                break
            if isinstance(token, Op) and token.value not in _SEPARATORS:
                raise ShellSyntaxError(f'syntax error: unexpected "{token.value}"')
            items.append(self.and_or())
            token = self.peek()
            if isinstance(token, Op) and token.value in _SEPARATORS:
                self.i += 1
            elif token is not None and not (stop and self.keyword() in stop):
                value = token.value if isinstance(token, Op) else token.text()
                raise ShellSyntaxError(f'syntax error: unexpected "{value}"')
        return Sequence(items)

    def and_or(self) -> AndOr:
        first = self.pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while isinstance(self.peek(), Op) and self.peek().value in ("&&", "||"):  # type: ignore[union-attr]
            op = self.take()
            assert isinstance(op, Op)
            while isinstance(self.peek(), Op) and self.peek().value == "\n":  # type: ignore[union-attr]
                self.i += 1
            rest.append((op.value, self.pipeline()))
        return AndOr(first, rest)

    def pipeline(self) -> Pipeline:
        negate = False
        if self.keyword() == "!":
            self.i += 1
            negate = True
        commands = [self.command()]
        while isinstance(self.peek(), Op) and self.peek().value == "|":  # type: ignore[union-attr]
            self.i += 1
            commands.append(self.command())
        return Pipeline(commands, negate)

    def command(self) -> Simple | If:
        word = self.keyword()
        token = self.peek()
        if token is None:
            raise Incomplete("syntax error: unexpected end of file")
        if word == "if":
            return self.if_clause()
        if word in _UNSUPPORTED or (isinstance(token, Op) and token.value in _UNSUPPORTED):
            raise ShellSyntaxError(
                f"syntax error: '{word or token.value}' is not supported by the simulated shell"  # type: ignore[union-attr]
            )
        if word in ("then", "else", "elif", "fi", "do", "done"):
            raise ShellSyntaxError(f'syntax error: unexpected "{word}"')
        simple = Simple([])
        while True:
            token = self.peek()
            if isinstance(token, Word):
                self.i += 1
                literal = token.parts[0] if token.parts else None
                assignment = (
                    _ASSIGNMENT.match(literal[1])
                    if literal and literal[0] == "lit" and not literal[2]
                    else None
                )
                if assignment and not simple.words:
                    rest = [("lit", literal[1][assignment.end() :], False), *token.parts[1:]]  # type: ignore[index]
                    simple.assignments.append((assignment.group(1), Word(rest)))
                else:
                    simple.words.append(token)
            elif isinstance(token, Op) and _REDIRECTS.match(token.value):
                self.i += 1
                target = self.peek()
                if not isinstance(target, Word):
                    raise ShellSyntaxError("syntax error: unexpected newline")
                self.i += 1
                simple.redirects.append((token.value, target))
            else:
                break
        if not simple.words and not simple.assignments and not simple.redirects:
            value = token.value if isinstance(token, Op) else ""
            raise ShellSyntaxError(f'syntax error: unexpected "{value}"')
        return simple

    def expect(self, word: str) -> None:
        if self.keyword() != word:
            if self.peek() is None:
                raise Incomplete(f'syntax error: unexpected end of file (expecting "{word}")')
            raise ShellSyntaxError(f'syntax error: unexpected "{self.keyword()}"')
        self.i += 1

    def if_clause(self) -> If:
        self.expect("if")
        branches: list[tuple[Sequence, Sequence]] = []
        otherwise: Sequence | None = None
        while True:
            condition = self.sequence(stop=("then",))
            self.expect("then")
            body = self.sequence(stop=("elif", "else", "fi"))
            branches.append((condition, body))
            if self.keyword() == "elif":
                self.i += 1
                continue
            if self.keyword() == "else":
                self.i += 1
                otherwise = self.sequence(stop=("fi",))
            self.expect("fi")
            return If(branches, otherwise)


def parse(script: str) -> Sequence:
    """A script's syntax tree; ``ShellSyntaxError`` (``Incomplete``) when it cannot be run."""
    return _Parser(tokenize(script)).sequence()


# --- running ------------------------------------------------------------------------------------


class Stdin(Protocol):
    """A command's standard input, read when (and if) the command reads it."""

    async def read(self) -> str:
        """Everything up to the end of the input."""
        ...


@dataclass
class Text:
    """Standard input with a known content (a pipe, a redirection, nothing)."""

    content: str = ""

    async def read(self) -> str:
        return self.content


@dataclass
class IO:
    stdin: Stdin
    out: Writer
    err: Writer


class _Buffer:
    def __init__(self) -> None:
        self.chunks: list[str] = []

    async def __call__(self, text: str) -> None:
        self.chunks.append(text)

    def text(self) -> str:
        return "".join(self.chunks)


async def _discard(text: str) -> None:
    return None


Command = Callable[["Shell", list[str], IO], Awaitable[int]]


class Shell:
    """One shell process in a simulated container."""

    def __init__(self, container: Container, argv0: str = "sh", args: list[str] | None = None):
        self.container = container
        self.argv0 = argv0
        self.args = args or []
        self.variables: dict[str, str] = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "HOSTNAME": container.hostname,
            "PWD": "/",
            **container.env,
        }
        self.status = 0
        self.options: set[str] = set()
        """``set`` options in force (``e``: exit on a failing command)."""
        self.conditions = 0
        """How many ``if`` conditions are being evaluated (``set -e`` does not apply)."""

    # --- entry points ----------------------------------------------------------------------

    async def run_script(self, script: str, io: IO) -> int:
        """Run a whole script (``sh -c``); its exit status."""
        try:
            tree = parse(script)
        except ShellSyntaxError as exc:
            if getattr(self.container, "raise_syntax_errors", False):
                raise
            await io.err(f"{self.argv0}: {exc}\n")
            return 2
        try:
            return await self.run_sequence(tree, io)
        except Exit as done:
            return done.code
        except ShellSyntaxError as exc:  # arithmetic that does not evaluate
            if getattr(self.container, "raise_syntax_errors", False):
                raise
            await io.err(f"{self.argv0}: {exc}\n")
            return 2

    async def run_interactive(self, lines: AsyncIterator[str], io: IO) -> int:
        """Read commands from standard input as they arrive, until it ends or ``exit``."""
        pending = ""
        try:
            async for line in lines:
                pending += line
                try:
                    tree = parse(pending)
                except Incomplete:
                    continue
                except ShellSyntaxError as exc:
                    await io.err(f"{self.argv0}: {exc}\n")
                    pending = ""
                    self.status = 2
                    continue
                pending = ""
                await self.run_sequence(tree, IO(Text(), io.out, io.err))
        except Exit as done:
            return done.code
        return self.status

    async def run_argv(self, argv: list[str], io: IO) -> int | None:
        """Run a program directly (no shell); None when the container has no such program."""
        answer = self.container.answer(argv)
        if answer is not None:
            return await _answer(answer, io)
        command = _lookup(argv[0])
        if command is None:
            return None
        try:
            return await command(self, argv, io)
        except Exit as done:
            return done.code

    # --- the interpreter -------------------------------------------------------------------

    async def run_sequence(self, tree: Sequence, io: IO) -> int:
        for item in tree.items:
            status = await self.run_pipeline(item.first, io)
            last = not item.rest
            for i, (op, pipeline) in enumerate(item.rest):
                if (op == "&&") == (status == 0):
                    status = await self.run_pipeline(pipeline, io)
                    last = i == len(item.rest) - 1
            self.status = status
            # ``set -e``: a failing command ends the shell, but not in a condition or before
            # ``&&`` / ``||``
            if status and last and "e" in self.options and not self.conditions:
                raise Exit(status)
        return self.status

    async def run_pipeline(self, pipeline: Pipeline, io: IO) -> int:
        stdin = io.stdin
        status = 0
        for i, command in enumerate(pipeline.commands):
            last = i == len(pipeline.commands) - 1
            if last:
                status = await self.run_command(command, IO(stdin, io.out, io.err))
            else:
                buffer = _Buffer()
                await self.run_command(command, IO(stdin, buffer, io.err))
                stdin = Text(buffer.text())
        if pipeline.negate:
            status = 0 if status else 1
        self.status = status
        return status

    async def run_command(self, command: Simple | If, io: IO) -> int:
        if isinstance(command, If):
            for condition, body in command.branches:
                self.conditions += 1
                try:
                    passed = await self.run_sequence(condition, io) == 0
                finally:
                    self.conditions -= 1
                if passed:
                    return await self.run_sequence(body, io)
            if command.otherwise is not None:
                return await self.run_sequence(command.otherwise, io)
            return 0
        status = await self.run_simple(command, io)
        self.status = status
        signal = self.container.signalled()
        if signal is not None:
            raise Exit(128 + SIGNALS[signal])
        return status

    async def run_simple(self, command: Simple, io: IO) -> int:
        argv: list[str] = []
        for word in command.words:
            argv.extend(await self.expand(word, io))
        values = [
            (name, "".join(await self.expand(word, io, split=False)))
            for name, word in command.assignments
        ]
        try:
            io = await self.redirect(command.redirects, io)
        except OSError as exc:
            await io.err(f"{self.argv0}: {exc}\n")
            return 1
        if not argv:
            self.variables.update(values)
            return 0
        answer = self.container.answer(argv)
        if answer is not None:
            return await _answer(answer, io)
        run = _lookup(argv[0])
        if run is None:
            await io.err(f"{self.argv0}: {argv[0]}: not found\n")
            return 127
        saved = dict(self.variables)
        self.variables.update(values)
        try:
            return await run(self, argv, io)
        finally:
            if values:
                self.variables = saved

    async def redirect(self, redirects: list[tuple[str, Word]], io: IO) -> IO:
        out, err, stdin = io.out, io.err, io.stdin
        for op, word in redirects:
            found = _REDIRECTS.match(op)
            assert found is not None
            fd_text, kind = found.groups()
            target = "".join(await self.expand(word, io, split=False))
            fd = int(fd_text) if fd_text else (0 if kind in ("<", "<&") else 1)
            if kind == ">&":
                source = {"1": out, "2": err}.get(target)
                if source is None:
                    raise OSError(f"{target}: bad file descriptor")
                if fd == 1:
                    out = source
                elif fd == 2:
                    err = source
                continue
            if kind in ("<", "<&"):
                content = self.container.read_file(self.path(target))
                if content is None:
                    raise OSError(f"can't open '{target}': No such file or directory")
                stdin = Text(content)
                continue
            writer = self.file_writer(target, append=kind == ">>")
            if fd == 1:
                out = writer
            elif fd == 2:
                err = writer
        return IO(stdin, out, err)

    def file_writer(self, target: str, append: bool) -> Writer:
        if target == "/dev/null":
            return _discard
        path = self.path(target)
        container = self.container
        if container.is_dir(path):
            raise OSError(f"can't create {target}: Is a directory")
        if not append:
            container.write_file(path, "")

        async def write(text: str) -> None:
            container.write_file(path, text, append=True)

        return write

    def path(self, name: str) -> str:
        """An absolute, normalized path (relative names start at ``/``)."""
        return posixpath.normpath(
            "/" + posixpath.join(self.variables.get("PWD", "/"), name).lstrip("/")
        )

    async def expand(self, word: Word, io: IO, split: bool = True) -> list[str]:
        """A word's fields after parameter expansion, command substitution and field splitting."""
        fields: list[str] = []
        current, present = "", False
        for kind, value, quoted in word.parts:
            if kind == "lit":
                current += value
                present = True
                continue
            if kind == "var":
                text = self.parameter(value)
            elif kind == "arith":
                text = str(self.arithmetic(value))
            else:
                buffer = _Buffer()
                sub = Shell(self.container, self.argv0, self.args)
                sub.variables = dict(self.variables)
                sub.status = self.status
                self.status = await sub.run_script(value, IO(Text(), buffer, io.err))
                text = buffer.text().rstrip("\n")
            if quoted or not split:
                current += text
                present = True
                continue
            pieces = text.split()
            if not pieces:
                continue
            if text[0].isspace() and present:
                fields.append(current)
                current = ""
            current += pieces[0]
            present = True
            for piece in pieces[1:]:
                fields.append(current)
                current = piece
            if text[-1].isspace():
                fields.append(current)
                current, present = "", False
        if present:
            fields.append(current)
        return fields

    def arithmetic(self, expression: str) -> int:
        """``$((…))``: integer arithmetic (``+ - * / %``, comparisons, parentheses) over
        numbers and variables (an unset or non-numeric one counts as 0)."""

        def value(found: re.Match[str]) -> str:
            text = self.parameter(found.group(1) or found.group(2)).strip()
            return text if re.fullmatch(r"-?\d+", text) else "0"

        text = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*|[0-9#?])\}?|\b([A-Za-z_][A-Za-z0-9_]*)\b",
            value,
            expression,
        )
        if not re.fullmatch(r"[\d\s+\-*/%()<>=!&|]*", text):
            raise ShellSyntaxError(f"arithmetic syntax error: {expression}")
        return _integer(text, expression)

    def parameter(self, name: str) -> str:
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(self.container.pid)
        if name == "#":
            return str(len(self.args))
        if name in ("@", "*"):
            return " ".join(self.args)
        if name.isdigit():
            index = int(name)
            if index == 0:
                return self.argv0
            return self.args[index - 1] if index <= len(self.args) else ""
        return self.variables.get(name, "")


def _integer(text: str, expression: str) -> int:
    """Evaluate an integer expression of numbers (C semantics for ``/`` and ``%``)."""
    try:
        tree = ast.parse(text.replace("&&", " and ").replace("||", " or "), mode="eval")
    except SyntaxError as exc:
        raise ShellSyntaxError(f"arithmetic syntax error: {expression}") from exc

    def run(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return run(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            operand = run(node.operand)
            if isinstance(node.op, ast.Not):
                return int(not operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = run(node.left), run(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
                raise ShellSyntaxError(f"arithmetic syntax error: divide by zero: {expression}")
            if isinstance(node.op, (ast.Div, ast.FloorDiv)):
                return int(left / right)
            if isinstance(node.op, ast.Mod):
                return int(math.fmod(left, right))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = run(node.left), run(node.comparators[0])
            ops = {
                ast.Lt: left < right,
                ast.Gt: left > right,
                ast.LtE: left <= right,
                ast.GtE: left >= right,
                ast.Eq: left == right,
                ast.NotEq: left != right,
            }
            for kind, result in ops.items():
                if isinstance(node.ops[0], kind):
                    return int(result)
        if isinstance(node, ast.BoolOp):
            values = [run(v) for v in node.values]
            return int(all(values) if isinstance(node.op, ast.And) else any(values))
        raise ShellSyntaxError(f"arithmetic syntax error: {expression}")

    return run(tree)


async def _answer(answer: ExecAnswer, io: IO) -> int:
    for text, write in ((answer.stdout, io.out), (answer.stderr, io.err)):
        if text:
            await write(text if text.endswith("\n") else text + "\n")
    return answer.exit_code


# --- commands -----------------------------------------------------------------------------------


async def _cat(shell: Shell, argv: list[str], io: IO) -> int:
    names = [a for a in argv[1:] if a != "-u"] or ["-"]
    status = 0
    for name in names:
        if name == "-":
            await io.out(await io.stdin.read())
            continue
        path = shell.path(name)
        if shell.container.is_dir(path):
            await io.err("cat: read error: Is a directory\n")
            status = 1
            continue
        content = shell.container.read_file(path)
        if content is None:
            await io.err(f"cat: can't open '{name}': No such file or directory\n")
            status = 1
            continue
        await io.out(content)
    return status


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "a": "\a", "b": "\b", "v": "\v"}


def _unescape(text: str) -> tuple[str, bool]:
    """Backslash escapes of ``echo -e`` / ``printf``; whether ``\\c`` stopped the output."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "c":
                return "".join(out), True
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out), False


async def _echo(shell: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] or (escapes and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = _unescape(text)
        newline = newline and not stop
    await io.out(text + ("\n" if newline else ""))
    return 0


async def _printf(shell: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        await io.err("printf: usage: printf FORMAT [ARG]...\n")
        return 1
    fmt, args = argv[1], argv[2:]
    status = 0
    while True:
        out: list[str] = []
        consumed = 0
        pieces = re.split(r"(%[-0-9.]*[sdixc%])", fmt)
        for piece in pieces:
            if not piece.startswith("%") or len(piece) < 2:
                out.append(_unescape(piece)[0])
                continue
            if piece == "%%":
                out.append("%")
                continue
            value = args[consumed] if consumed < len(args) else ""
            consumed += 1
            conversion = piece[-1]
            if conversion in "dix":
                try:
                    number = int(value or "0")
                except ValueError:
                    await io.err(f"printf: invalid number '{value}'\n")
                    number, status = 0, 1
                out.append(("%" + piece[1:-1] + ("x" if conversion == "x" else "d")) % number)
            else:
                out.append(
                    ("%" + piece[1:-1] + "s") % value[:1]
                    if conversion == "c"
                    else ("%" + piece[1:-1] + "s") % value
                )
        await io.out("".join(out))
        args = args[consumed:]
        if not args or not consumed:
            return status


async def _true(shell: Shell, argv: list[str], io: IO) -> int:
    return 0


async def _false(shell: Shell, argv: list[str], io: IO) -> int:
    return 1


async def _exit(shell: Shell, argv: list[str], io: IO) -> int:
    code = shell.status
    if len(argv) > 1:
        if not argv[1].lstrip("-").isdigit():
            await io.err(f"{shell.argv0}: exit: Illegal number: {argv[1]}\n")
            raise Exit(2)
        code = int(argv[1]) & 0xFF
    raise Exit(code)


def _test(shell: Shell, args: list[str]) -> bool:
    container = shell.container
    if not args:
        return False
    if args[0] == "!":
        return not _test(shell, args[1:])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op in ("-n", "-z"):
            return (operand != "") == (op == "-n")
        path = shell.path(operand)
        if op == "-d":
            return container.is_dir(path)
        content = _probe(container, path)
        if op == "-s":
            return bool(content)
        if op in ("-f", "-r", "-w", "-O", "-G"):
            return content is not None
        if op == "-e":
            return content is not None or container.is_dir(path)
        if op == "-x":
            return _lookup(operand) is not None and "/" in operand
        raise ValueError(f"{op}: unknown operand")
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {"-eq": "__eq__", "-ne": "__ne__", "-lt": "__lt__", "-le": "__le__"}
        numeric |= {"-gt": "__gt__", "-ge": "__ge__"}
        if op in numeric:
            try:
                return bool(getattr(int(left), numeric[op])(int(right)))
            except ValueError:
                bad = right if left.lstrip("-").isdigit() else left
                raise ValueError(f"{bad}: bad number") from None
        if args[0] == "!":
            return not _test(shell, args[1:])
    if "-a" in args:
        i = args.index("-a")
        return _test(shell, args[:i]) and _test(shell, args[i + 1 :])
    if "-o" in args:
        i = args.index("-o")
        return _test(shell, args[:i]) or _test(shell, args[i + 1 :])
    raise ValueError("syntax error")


async def _test_command(shell: Shell, argv: list[str], io: IO) -> int:
    name = posixpath.basename(argv[0])
    args = argv[1:]
    if name == "[":
        if not args or args[-1] != "]":
            await io.err("sh: missing ]\n")
            return 2
        args = args[:-1]
    try:
        return 0 if _test(shell, args) else 1
    except ValueError as exc:
        await io.err(f"sh: {name}: {exc}\n")
        return 2


async def _kill(shell: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    signal = "TERM"
    if args and args[0] == "-l":
        await io.out(" ".join(SIGNALS) + "\n")
        return 0
    if args and args[0] in ("-s", "-n") and len(args) > 1:
        found = signal_name(args[1])
        if found is None:
            await io.err(f"sh: kill: bad signal name '{args[1]}'\n")
            return 1
        signal, args = found, args[2:]
    elif args and args[0].startswith("-") and len(args[0]) > 1 and args[0] != "--":
        found = signal_name(args[0][1:])
        if found is None:
            await io.err(f"sh: kill: bad signal name '{args[0][1:]}'\n")
            return 1
        signal, args = found, args[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        await io.err(
            "sh: kill: usage: kill [-s sigspec | -signum | -sigspec] [pid | job]... or\n"
            "kill -l [exitstatus]\n"
        )
        return 1
    status = 0
    for target in args:
        if not target.isdigit():
            await io.err(f"sh: kill: illegal number: {target}\n")
            status = 1
            continue
        if not shell.container.signal(int(target), signal):
            await io.err(f"sh: can't kill pid {target}: No such process\n")
            status = 1
    return status


async def _pgrep(shell: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    full = False
    patterns: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-u", "-U", "-P", "-g", "-s", "-t"):
            i += 2  # every simulated process runs as root in one session
            continue
        if arg.startswith("-") and len(arg) > 1:
            full = full or "f" in arg
        else:
            patterns.append(arg)
        i += 1
    if len(patterns) != 1:
        await io.err("pgrep: usage: pgrep [-flnovx] [-s SID|-P PPID|PATTERN]\n")
        return 2
    try:
        pattern = re.compile(patterns[0])
    except re.error:
        await io.err(f"pgrep: bad regex '{patterns[0]}'\n")
        return 2
    found = []
    for pid, command_line in shell.container.processes():
        name = posixpath.basename(command_line.split(" ", 1)[0])[:15]
        if pattern.search(command_line if full else name):
            found.append(pid)
    if found:
        await io.out("".join(f"{pid}\n" for pid in found))
    return 0 if found else 1


async def _ps(shell: Shell, argv: list[str], io: IO) -> int:
    lines = ["PID   USER     TIME  COMMAND"]
    for pid, command_line in shell.container.processes():
        lines.append(f"{pid:>5} root      0:00 {command_line}")
    await io.out("\n".join(lines) + "\n")
    return 0


async def _id(shell: Shell, argv: list[str], io: IO) -> int:
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    if "u" in flags or "g" in flags:
        await io.out(("root" if "n" in flags else "0") + "\n")
    else:
        await io.out("uid=0(root) gid=0(root) groups=0(root)\n")
    return 0


async def _hostname(shell: Shell, argv: list[str], io: IO) -> int:
    await io.out(shell.container.hostname + "\n")
    return 0


async def _pwd(shell: Shell, argv: list[str], io: IO) -> int:
    await io.out(shell.variables.get("PWD", "/") + "\n")
    return 0


async def _cd(shell: Shell, argv: list[str], io: IO) -> int:
    target = argv[1] if len(argv) > 1 else shell.variables.get("HOME", "/")
    path = shell.path(target)
    if not shell.container.is_dir(path):
        if getattr(shell.container, "raise_syntax_errors", False):
            raise MissingFile(path)  # a directory of the image or an artifact
        await io.err(f"{shell.argv0}: cd: can't cd to {target}: No such file or directory\n")
        return 2
    shell.variables["PWD"] = path
    return 0


async def _env(shell: Shell, argv: list[str], io: IO) -> int:
    if len(argv) > 1:
        run = _lookup(argv[1])
        if run is None:
            await io.err(f"env: can't execute '{argv[1]}': No such file or directory\n")
            return 127
        return await run(shell, argv[1:], io)
    await io.out("".join(f"{k}={v}\n" for k, v in shell.variables.items()))
    return 0


async def _printenv(shell: Shell, argv: list[str], io: IO) -> int:
    if len(argv) == 1:
        return await _env(shell, ["env"], io)
    status = 0
    for name in argv[1:]:
        if name in shell.variables:
            await io.out(shell.variables[name] + "\n")
        else:
            status = 1
    return status


async def _sleep(shell: Shell, argv: list[str], io: IO) -> int:
    total = 0.0
    for arg in argv[1:] or [""]:
        found = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", arg)
        if arg in ("infinity", "inf"):
            total = float("inf")
            continue
        if found is None:
            await io.err(f"sleep: invalid number '{arg}'\n")
            return 1
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
        total += float(found.group(1)) * unit
    await shell.container.sleep(total)
    return 0


async def _touch(shell: Shell, argv: list[str], io: IO) -> int:
    for name in argv[1:]:
        path = shell.path(name)
        if _probe(shell.container, path) is None and not shell.container.is_dir(path):
            shell.container.write_file(path, "")
    return 0


async def _tee(shell: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    append = False
    while args and args[0].startswith("-") and args[0] != "-":
        append = append or "a" in args[0]
        args = args[1:]
    text = await io.stdin.read()
    for name in args:
        shell.container.write_file(shell.path(name), text, append=append)
    await io.out(text)
    return 0


async def _set(shell: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    while args and args[0][:1] in ("-", "+") and args[0] not in ("-", "--"):
        flag = args.pop(0)
        if flag in ("-o", "+o"):
            if args:
                args.pop(0)  # pipefail and the like: not modelled
            continue
        for letter in flag[1:]:
            if flag[0] == "-":
                shell.options.add(letter)
            else:
                shell.options.discard(letter)
    if args and args[0] == "--":
        shell.args = args[1:]
    elif args:
        shell.args = args
    return 0


async def _cp(shell: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if not a.startswith("-")]
    if len(args) < 2:
        await io.err("cp: missing destination file operand\n")
        return 1
    *sources, target = args
    target_path = shell.path(target)
    for source in sources:
        content = shell.container.read_file(shell.path(source))
        if content is None:
            await io.err(f"cp: can't stat '{source}': No such file or directory\n")
            return 1
        destination = target_path
        if len(sources) > 1 or shell.container.is_dir(target_path):
            destination = posixpath.join(target_path, posixpath.basename(source))
        shell.container.write_file(destination, content)
    return 0


async def _mkdir(shell: Shell, argv: list[str], io: IO) -> int:
    # directories exist implicitly here (a file's path makes them): nothing to do
    return 0


async def _sh(shell: Shell, argv: list[str], io: IO) -> int:
    name = posixpath.basename(argv[0])
    args = argv[1:]
    while args and re.fullmatch(r"-[exulis]+c?", args[0]):
        if args[0].endswith("c"):
            args = ["-c", *args[1:]]
            break
        args = args[1:]
    if args and args[0] == "-c":
        if len(args) < 2:
            await io.err(f"{name}: -c requires an argument\n")
            return 2
        child = Shell(shell.container, args[2] if len(args) > 2 else name, args[3:])
        return await child.run_script(args[1], io)
    if args:
        script = shell.container.read_file(shell.path(args[0]))
        if script is None:
            await io.err(f"{name}: can't open '{args[0]}': No such file or directory\n")
            return 2
        return await Shell(shell.container, args[0], args[1:]).run_script(script, io)
    script = await io.stdin.read()
    return await Shell(shell.container, name).run_script(script, IO(Text(), io.out, io.err))


COMMANDS: dict[str, Command] = {
    "cat": _cat,
    "echo": _echo,
    "printf": _printf,
    "true": _true,
    ":": _true,
    "false": _false,
    "exit": _exit,
    "test": _test_command,
    "[": _test_command,
    "kill": _kill,
    "pgrep": _pgrep,
    "ps": _ps,
    "id": _id,
    "hostname": _hostname,
    "pwd": _pwd,
    "cd": _cd,
    "env": _env,
    "printenv": _printenv,
    "sleep": _sleep,
    "touch": _touch,
    "tee": _tee,
    "mkdir": _mkdir,
    "cp": _cp,
    "set": _set,
    **dict.fromkeys(SHELLS, _sh),
}
"""The commands every simulated container has (busybox applets and shell builtins)."""


def _lookup(name: str) -> Command | None:
    directory, base = posixpath.split(name)
    if directory.rstrip("/") not in _BIN_DIRS and directory:
        return None
    return COMMANDS.get(base)


def known_program(name: str) -> bool:
    """Whether the container has this program (for a command run without a shell)."""
    return _lookup(name) is not None
