"""Running a container's own command, when the cluster configuration asks for it.

By default a simulated container does what its behaviour says and its ``command`` is not run.
With ``runCommands: true`` a container without a matching behaviour rule runs its command once,
when it starts:

- a command the small shell of :mod:`.shell` knows (``sh -c …``, ``echo``, ``printf``, ``cat``,
  …) is interpreted against the container's files (writes are kept as the container's files,
  shared through volumes as ``pods/exec`` writes are); its standard output becomes the
  container's log lines, its exit status the container's exit code and the simulated seconds it
  ``sleep``-s are added to the container's run time;
- a ``python`` / ``python3`` command (a file argument or ``-c CODE``) runs with this machine's
  Python interpreter only when ``runPython: true`` is set as well: in a subprocess with a fresh
  temporary directory as its root (absolute paths given to ``open``, ``os.listdir``,
  ``os.makedirs``, ``os.path.exists`` … are mapped into it), an empty environment but the
  container's variables, and a wall-clock timeout. This is not a sandbox: the code runs with the
  rights of the simulator's user, so turn it on only for workflows you trust.

Anything else keeps the default behaviour (the container succeeds, printing nothing): an image's
own program, a script that calls a program the shell does not have or uses syntax it does not
parse (loops, ``case``, functions) or reads a file the simulation does not have (an input
artifact, a file of the image), a Python script importing a module this machine lacks.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import sys
import tempfile
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .behaviours import ExecAnswer
from .shell import IO, SHELLS, MissingFile, Shell, ShellSyntaxError, Text, known_program

PYTHON_TIMEOUT_SECONDS = 20.0
"""Wall seconds a Python command may run before it is stopped (exit code 124)."""
PYTHONS = frozenset({"python", "python3"})


@dataclass
class Outcome:
    """What a command did."""

    stdout: str
    exit_code: int
    seconds: float = 0.0
    """Simulated seconds it slept."""
    files: dict[str, str] = field(default_factory=dict)
    """Files it wrote (absolute path → content), for a Python command."""


class Unmodelled(Exception):
    """The command uses a program or shell syntax this module does not model."""


class MainProcess:
    """What :class:`.shell.Shell` runs against for a container's main process."""

    def __init__(
        self,
        hostname: str,
        env: Mapping[str, str],
        files: dict[str, str],
        is_dir: Any = None,
    ) -> None:
        self.hostname = hostname
        self.env = env
        self.pid = 1
        self.raise_syntax_errors = True
        self.files = files
        self._is_dir = is_dir
        self.slept = 0.0

    def read_file(self, path: str) -> str | None:
        path = posixpath.normpath(path)
        if path not in self.files:
            # an input artifact, a file of the image: what it holds is not known here
            raise MissingFile(path)
        return self.files[path]

    def is_dir(self, path: str) -> bool:
        path = posixpath.normpath(path)
        if self._is_dir is not None and self._is_dir(path):
            return True
        prefix = path.rstrip("/") + "/"
        return any(f.startswith(prefix) for f in self.files)

    def write_file(self, path: str, content: str, append: bool = False) -> None:
        path = posixpath.normpath(path)
        if append:
            content = self.files.get(path, "") + content
        self.files[path] = content

    def processes(self) -> list[tuple[int, str]]:
        return [(1, self.hostname)]

    def signal(self, pid: int, signal: str) -> bool:
        return False

    def signalled(self) -> str | None:
        return None

    def answer(self, words: list[str]) -> ExecAnswer | None:
        if words and not known_program(words[0]):
            raise Unmodelled(words[0])
        return None

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits on anything outside itself (the shell here)."""
    try:
        while True:
            coro.send(None)
    except StopIteration as done:
        return done.value
    finally:
        coro.close()


ENTRYPOINTLESS_IMAGES = frozenset(
    {"alpine", "busybox", "ubuntu", "debian", "bash", "python", "centos", "fedora"}
)
"""Images without an ``ENTRYPOINT``: a container of one with ``args`` only runs them."""


def _image_name(image: str) -> str:
    name = image.split("@")[0].rsplit("/", 1)[-1]
    return name.split(":")[0]


def main_argv(container: Mapping[str, Any], argv: list[str]) -> list[str] | None:
    """What a container runs (``argv`` is its ``command`` + ``args``, expanded), when that is
    known: its ``command``; its ``args`` when its image has no entrypoint; ``argosay`` (Argo's
    test image, ``argoproj/argosay:v2``) as the small shell script it is. None otherwise."""
    image = str(container.get("image") or "")
    if container.get("command"):
        return argv
    name = _image_name(image)
    if name == "argosay" and image.rsplit(":", 1)[-1] == "v2":
        return _argosay(argv)
    if name in ENTRYPOINTLESS_IMAGES and argv:
        return argv
    return None


def _argosay(args: list[str]) -> list[str] | None:
    """``/argosay`` of ``argoproj/argosay:v2`` as a shell command."""
    verb = args[0] if args else ""
    if verb == "":
        return ["echo", "hello argo"]
    if verb == "echo" and len(args) <= 2:
        return ["echo", args[1] if len(args) == 2 else "hello argo"]
    if verb == "echo" and len(args) == 3:
        return ["sh", "-c", 'echo "$0" > "$1"', args[1], args[2]]
    if verb == "cat" and len(args) >= 2:
        return ["cat", args[1]]
    if verb == "exit":
        return ["sh", "-c", f"exit {int(args[1]) if len(args) > 1 and args[1].isdigit() else 0}"]
    if verb == "sleep" and len(args) >= 2:
        return ["sleep", args[1]]
    if verb == "assert_contains":
        return None  # grep is not modelled
    return ["false"]


def runnable(argv: list[str], python: bool) -> bool:
    """Whether :func:`run` can run this command."""
    if not argv:
        return False
    name = posixpath.basename(argv[0])
    if name in PYTHONS:
        return python
    return known_program(argv[0]) or name in SHELLS


def run(argv: list[str], process: MainProcess, python: bool) -> Outcome | None:
    """Run a container's command; None when it is not one this module runs."""
    if not runnable(argv, python):
        return None
    if posixpath.basename(argv[0]) in PYTHONS:
        return run_python(argv, process)
    out: list[str] = []

    async def write(text: str) -> None:
        out.append(text)

    async def main() -> int | None:
        return await Shell(process).run_argv(argv, IO(Text(), write, _ignore))

    try:
        code = _drive(main())
    except (Unmodelled, ShellSyntaxError, MissingFile):
        return None
    return Outcome("".join(out), 127 if code is None else int(code), process.slept)


async def _ignore(text: str) -> None:
    return None


_PRELUDE = r"""
import builtins, os, sys
_ROOT = os.getcwd()
def _map(p):
    if isinstance(p, str) and p.startswith("/") and not p.startswith(_ROOT + "/") and p != _ROOT \
            and not p.startswith(("/dev/", "/proc/")):
        return _ROOT + p
    return p
def _wrap(f):
    def g(p, *a, **k):
        return f(_map(p), *a, **k)
    return g
builtins.open = _wrap(builtins.open)
for _n in ("listdir", "makedirs", "mkdir", "remove", "unlink", "stat", "scandir", "rmdir"):
    setattr(os, _n, _wrap(getattr(os, _n)))
for _n in ("exists", "isfile", "isdir", "getsize"):
    setattr(os.path, _n, _wrap(getattr(os.path, _n)))
del _n
import atexit, time
_slept = [0.0]
def _sleep(seconds):
    _slept[0] += float(seconds)
time.sleep = _sleep
atexit.register(lambda: sys.stderr.write("\n\x00slept=%r\n" % _slept[0]))
_argv = sys.argv[1:]
if _argv[0] == "-c":
    sys.argv = ["-c", *_argv[2:]]
    _code, _name = _argv[1], "<string>"
else:
    sys.argv = _argv
    with builtins.open(_argv[0]) as _f:
        _code, _name = _f.read(), _argv[0]
_globals = {"__name__": "__main__", "__builtins__": builtins}
exec(compile(_code, _name, "exec"), _globals)
"""


def run_python(argv: list[str], process: MainProcess) -> Outcome | None:
    """Run a ``python`` command with this machine's interpreter (see the module docstring)."""
    args = argv[1:]
    while args and args[0] in ("-u", "-B", "-E", "-s", "-I"):
        args = args[1:]
    if not args or (args[0] == "-c" and len(args) < 2):
        return Outcome("", 2)
    with tempfile.TemporaryDirectory(prefix="simulated-python-") as root:
        base = Path(root)
        for path, content in process.files.items():
            target = base / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        before = {p: c for p, c in process.files.items()}
        env = {
            **{k: v for k, v in process.env.items() if k.isidentifier()},
            "PATH": os.defpath,
            "HOME": root,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", _PRELUDE, *args],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=PYTHON_TIMEOUT_SECONDS,
                check=False,
            )
            stdout, code = done.stdout, done.returncode
            if code < 0:
                code = 128 - code
        except subprocess.TimeoutExpired:
            return Outcome("", 124)
        if "ModuleNotFoundError" in done.stderr:
            return None
        slept = re.findall(r"\x00slept=([0-9.e+]+)", done.stderr)
        seconds = float(slept[-1]) if slept else 0.0
        files: dict[str, str] = {}
        for found in base.rglob("*"):
            if found.is_file():
                key = "/" + found.relative_to(base).as_posix()
                try:
                    content = found.read_text()
                except (UnicodeDecodeError, OSError):
                    continue
                if before.get(key) != content:
                    files[key] = content
    process.files.update(files)
    return Outcome(stdout, code, seconds, files)


ARGO_TEMPLATE_ENV = "ARGO_TEMPLATE"
SCRIPT_PATH = "/argo/staging/script"


def staged_files(env: Mapping[str, str]) -> dict[str, str]:
    """What Argo's init container stages for the main container: a script template's source
    (from the template the pod carries in ``ARGO_TEMPLATE``) at ``/argo/staging/script``."""
    raw = env.get(ARGO_TEMPLATE_ENV)
    if not raw:
        return {}
    try:
        template = json.loads(raw)
    except ValueError:
        return {}
    source = (template.get("script") or {}).get("source") if isinstance(template, dict) else None
    return {SCRIPT_PATH: str(source)} if source is not None else {}


def lines_of(text: str) -> list[str]:
    """Log lines of an output (a last line without a newline counts)."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


__all__ = ["MainProcess", "Outcome", "lines_of", "run", "runnable", "staged_files"]
