"""Behaviours: what the simulated cluster's containers "do".

A behaviour rule matches containers and says how long they run, what they print, how they exit,
which files they leave behind (for Argo output parameters) and which infrastructure trouble they
hit (image pull failures, preemption). Rules come from the cluster configuration's
``behaviours`` list and from :meth:`SimulatedCluster.add_behaviour`::

    behaviours:
      - match: {image: "task-python:1.0", args: "pre-task.py", env: {JOB_COMPLETION_INDEX: "3"},
                namespace: batch, container: main, labels: {app: etl}}
        seconds: 2              # simulated run time (default 1; "forever": until stopped)
        exitCode: 0             # default 0
        stdout: "[1, 2, 3]"     # log lines (a string split on newlines, or a list of lines)
        files: {"/tmp/results": "[1, 2, 3]"}
        terminationMessage: "done"
        imagePull: ErrImagePull         # or ImagePullBackOff: the pull fails
        imagePullSeconds: 30            # ... and recovers after that many (scaled) seconds
        preemptAfterSeconds: 5          # the pod is preempted 5 s after it starts running
        oomKilled: true                 # terminated with exit code 137, reason OOMKilled
        signals: {INT: 0}               # signals the main process handles: exit with that code
        exec:                           # what commands run with pods/exec answer
          - {command: "python -V", stdout: "Python 3.12.1", exitCode: 0}
        times: 1                        # only the first N pods the rule matches

Matching (every ``match`` key is optional; an empty or missing ``match`` matches everything):

- ``image``: exact image reference, or a prefix when it ends with ``*`` (``task-python:*``).
- ``args``: a substring of the container's command and args joined by spaces, after
  ``$(VAR)`` expansion.
- ``env``: every listed variable has exactly that value in the container's environment
  (``value`` and the supported ``valueFrom.fieldRef`` paths, e.g. ``JOB_COMPLETION_INDEX``).
- ``namespace``, ``container``: exact pod namespace / container name.
- ``labels``: every listed pod label has exactly that value.

The first matching rule wins; rules added at run time are checked before the configured ones
(the most recently added first). ``times`` counts pods, not containers or restarts; it defaults
to unlimited, except for rules with ``preemptAfterSeconds`` where it defaults to 1 ("the first
pod matching is preempted; its replacement behaves normally"). A container no rule matches
succeeds after one (scaled) second without output.

Log lines are written spread evenly over the run: line ``i`` of ``n`` at
``start + seconds * i / n`` (the first one as the container starts). ``stdout``, ``files`` and
``terminationMessage`` expand ``$(VAR)`` with the container's environment plus ``POD_NAME``,
``POD_NAMESPACE`` and ``CONTAINER_NAME`` (the container's own variables win).

A pod can override the rules with the annotation ``sim.airflow-k8s-jobs/behaviour`` holding a
JSON object of the same fields (without ``match`` and ``times``), which then applies to all of
its regular (non-init) containers; or a JSON object keyed by container name (init containers
included) whose values are such objects, for containers that should behave differently::

    sim.airflow-k8s-jobs/behaviour: '{"seconds": 5, "exitCode": 3}'
    sim.airflow-k8s-jobs/behaviour: '{"main": {"exitCode": 1}, "sidecar": {"seconds": 60}}'

Containers a keyed annotation does not name fall back to the rules.

A container no rule or annotation describes is judged by its command: a shell loop that never
ends (``while true; do …; done``, ``while :``), ``sleep infinity`` or ``tail -f /dev/null``
runs until it is stopped. Whatever describes a container, the ``trap "exit N" INT`` lines of
its shell command say which signals its main process handles (unless ``signals`` is given).
The main process is PID 1, which ignores every signal it has no handler for, ``KILL`` included
when sent from inside the container.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError

BEHAVIOUR_ANNOTATION = "sim.airflow-k8s-jobs/behaviour"

IMAGE_PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff")

_MATCH_FIELDS = ("image", "args", "env", "namespace", "container", "labels")
_BEHAVIOUR_FIELDS = (
    "seconds",
    "exitCode",
    "stdout",
    "files",
    "terminationMessage",
    "imagePull",
    "imagePullSeconds",
    "imagePullMessage",
    "preemptAfterSeconds",
    "oomKilled",
    "signals",
    "exec",
)
_EXEC_FIELDS = ("command", "stdout", "stderr", "exitCode")
SIGNALS = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "KILL": 9,
    "USR1": 10,
    "USR2": 12,
    "TERM": 15,
}
"""Signal names and numbers (x86-64 Linux) the simulated containers know."""
_RULE_FIELDS = ("match", "times", *_BEHAVIOUR_FIELDS)


@dataclass(frozen=True)
class ExecAnswer:
    """How a container answers one command run in it through ``pods/exec``."""

    command: str
    """The command's words joined by spaces are this, or start with it and a space."""
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class Behaviour:
    """What one container does."""

    seconds: float = 1.0
    """Simulated run time; ``math.inf`` runs until the container is stopped."""
    exit_code: int = 0
    stdout: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    termination_message: str | None = None
    image_pull: str | None = None
    """``ErrImagePull`` / ``ImagePullBackOff``: pulling the image fails."""
    image_pull_seconds: float | None = None
    """The failing pull recovers this many (scaled) seconds after the first attempt."""
    image_pull_message: str | None = None
    preempt_after_seconds: float | None = None
    oom_killed: bool = False
    signals: Mapping[str, int] | None = None
    """Signal name (``INT``) → exit code, for the signals the main process handles; None:
    what the command's shell ``trap`` lines say."""
    exec_answers: tuple[ExecAnswer, ...] = ()

    @property
    def forever(self) -> bool:
        """Runs until stopped."""
        return math.isinf(self.seconds)

    @property
    def reason(self) -> str:
        """The terminated state's reason."""
        if self.oom_killed:
            return "OOMKilled"
        return "Completed" if self.exit_code == 0 else "Error"


DEFAULT_BEHAVIOUR = Behaviour()


@dataclass(frozen=True)
class ContainerFacts:
    """What a rule can match a container on."""

    namespace: str
    pod_name: str
    container: str
    image: str
    command_line: str
    """Command and args joined by spaces, ``$(VAR)`` expanded."""
    env: Mapping[str, str]
    labels: Mapping[str, str]
    init: bool = False


@dataclass(frozen=True)
class Match:
    image: str | None = None
    args: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None
    container: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def matches(self, facts: ContainerFacts) -> bool:
        if self.image is not None:
            if self.image.endswith("*"):
                if not facts.image.startswith(self.image[:-1]):
                    return False
            elif facts.image != self.image:
                return False
        if self.args is not None and self.args not in facts.command_line:
            return False
        if any(facts.env.get(k) != v for k, v in self.env.items()):
            return False
        if self.namespace is not None and facts.namespace != self.namespace:
            return False
        if self.container is not None and facts.container != self.container:
            return False
        return all(facts.labels.get(k) == v for k, v in self.labels.items())


@dataclass
class Rule:
    match: Match
    behaviour: Behaviour
    times: int | None
    where: str
    used_by: set[str] = field(default_factory=set)
    """UIDs of the pods the rule has applied to (``times`` counts them)."""

    def available_for(self, pod_uid: str) -> bool:
        return self.times is None or pod_uid in self.used_by or len(self.used_by) < self.times


# --- parsing ------------------------------------------------------------------------------------


def _number(data: Mapping[str, Any], key: str, where: str, minimum: float = 0.0) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}.{key}: must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: must be a string, got {value!r}")
    return value


def _string_map(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{where}.{key}: must be a mapping of strings, got {value!r}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ConfigError(f"{where}.{key}.{k}: must be a string, got {v!r}")
        out[k] = str(v)
    return out


def signal_name(value: str) -> str | None:
    """``INT``, ``SIGINT``, ``int`` or ``2`` → ``INT``; None for an unknown signal."""
    text = value.strip().upper()
    if text.isdigit():
        return next((name for name, number in SIGNALS.items() if number == int(text)), None)
    text = text.removeprefix("SIG")
    return text if text in SIGNALS else None


def _exit_code(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ConfigError(f"{where}: must be an integer from 0 to 255, got {value!r}")
    return value


def _signals(data: Mapping[str, Any], where: str) -> dict[str, int] | None:
    value = data.get("signals")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.signals: must be a mapping of signal to exit code")
    out: dict[str, int] = {}
    for key, code in value.items():
        name = signal_name(str(key))
        if name is None:
            raise ConfigError(f"{where}.signals.{key}: unknown signal; known: {', '.join(SIGNALS)}")
        if name == "KILL":
            raise ConfigError(f"{where}.signals.{key}: KILL cannot be handled")
        out[name] = _exit_code(code, f"{where}.signals.{key}")
    return out


def _exec_answers(data: Mapping[str, Any], where: str) -> tuple[ExecAnswer, ...]:
    value = data.get("exec")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}.exec: must be a list of {{command, stdout, stderr, exitCode}}")
    answers = []
    for i, entry in enumerate(value):
        at = f"{where}.exec[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{at}: must be a mapping, got {entry!r}")
        _unknown(entry, _EXEC_FIELDS, at)
        command = _string(entry, "command", at)
        if not command:
            raise ConfigError(f"{at}.command: required")
        answers.append(
            ExecAnswer(
                command=command,
                stdout=_string(entry, "stdout", at) or "",
                stderr=_string(entry, "stderr", at) or "",
                exit_code=_exit_code(entry.get("exitCode", 0), f"{at}.exitCode"),
            )
        )
    return tuple(answers)


def _unknown(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field; known fields: " + ", ".join(known))


def parse_behaviour(
    data: Any, where: str, allowed: tuple[str, ...] = _BEHAVIOUR_FIELDS
) -> Behaviour:
    """The behaviour fields of a rule (or of a pod annotation)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping, got {data!r}")
    _unknown(data, allowed, where)
    if data.get("seconds") == "forever":
        seconds: float | None = math.inf
    elif isinstance(data.get("seconds"), str):
        raise ConfigError(
            f'{where}.seconds: must be a number >= 0 or "forever", got {data["seconds"]!r}'
        )
    else:
        seconds = _number(data, "seconds", where)
    exit_code = _exit_code(data.get("exitCode", 0), f"{where}.exitCode")
    stdout = data.get("stdout")
    lines: tuple[str, ...]
    if stdout is None:
        lines = ()
    elif isinstance(stdout, str):
        lines = tuple(stdout.splitlines())
    elif isinstance(stdout, list) and all(isinstance(line, str) for line in stdout):
        lines = tuple(stdout)
    else:
        raise ConfigError(f"{where}.stdout: must be a string or a list of strings, got {stdout!r}")
    image_pull = _string(data, "imagePull", where)
    if image_pull is not None and image_pull not in IMAGE_PULL_ERRORS:
        raise ConfigError(
            f"{where}.imagePull: must be one of {', '.join(IMAGE_PULL_ERRORS)}, got {image_pull!r}"
        )
    image_pull_seconds = _number(data, "imagePullSeconds", where)
    if image_pull_seconds is not None and image_pull is None:
        raise ConfigError(f"{where}.imagePullSeconds: needs imagePull")
    oom_killed = data.get("oomKilled", False)
    if not isinstance(oom_killed, bool):
        raise ConfigError(f"{where}.oomKilled: must be true or false, got {oom_killed!r}")
    if oom_killed:
        if "exitCode" in data and exit_code != 137:
            raise ConfigError(
                f"{where}.oomKilled: an OOM-killed container exits with 137, "
                f"not exitCode {exit_code}"
            )
        exit_code = 137
    return Behaviour(
        seconds=1.0 if seconds is None else seconds,
        exit_code=exit_code,
        stdout=lines,
        files=_string_map(data, "files", where),
        termination_message=_string(data, "terminationMessage", where),
        image_pull=image_pull,
        image_pull_seconds=image_pull_seconds,
        image_pull_message=_string(data, "imagePullMessage", where),
        preempt_after_seconds=_number(data, "preemptAfterSeconds", where),
        oom_killed=oom_killed,
        signals=_signals(data, where),
        exec_answers=_exec_answers(data, where),
    )


def parse_match(data: Any, where: str) -> Match:
    if data is None:
        return Match()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping, got {data!r}")
    _unknown(data, _MATCH_FIELDS, where)
    return Match(
        image=_string(data, "image", where),
        args=_string(data, "args", where),
        env=_string_map(data, "env", where),
        namespace=_string(data, "namespace", where),
        container=_string(data, "container", where),
        labels=_string_map(data, "labels", where),
    )


def parse_rule(data: Any, where: str) -> Rule:
    """One rule; ``ConfigError`` names ``where`` (e.g. ``behaviours[2]``) and the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a behaviour rule must be a mapping, got {data!r}")
    _unknown(data, _RULE_FIELDS, where)
    behaviour = parse_behaviour(
        {k: v for k, v in data.items() if k not in ("match", "times")}, where
    )
    times = data.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ConfigError(f"{where}.times: must be an integer >= 1, got {times!r}")
    if times is None and behaviour.preempt_after_seconds is not None:
        times = 1
    return Rule(parse_match(data.get("match"), f"{where}.match"), behaviour, times, where)


def parse_rules(data: Any, origin: str = "behaviours") -> list[Rule]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{origin}: must be a list of rules")
    return [parse_rule(rule, f"{origin}[{i}]") for i, rule in enumerate(data)]


def parse_annotation(
    value: str, containers: list[str], init_containers: list[str]
) -> dict[str, Behaviour]:
    """The behaviours a pod's annotation sets, by container name.

    A plain object applies to every regular container; an object keyed by container names
    applies per container.
    """
    where = f"annotation {BEHAVIOUR_ANNOTATION}"
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    names = set(containers) | set(init_containers)
    if data and all(key in names for key in data):
        return {name: parse_behaviour(rule, f"{where}[{name}]") for name, rule in data.items()}
    behaviour = parse_behaviour(data, where)
    return {name: behaviour for name in containers}


class RuleBook:
    """Configured and added rules, and which pods each has been used for."""

    def __init__(self, configured: Any = None) -> None:
        self.configured = parse_rules(configured)
        self.added: list[Rule] = []

    def add(self, data: Any) -> Rule:
        rule = parse_rule(data, f"add_behaviour rule #{len(self.added) + 1}")
        self.added.append(rule)
        return rule

    def rules(self) -> list[Rule]:
        return [*reversed(self.added), *self.configured]

    def select(self, pod_uid: str, facts: ContainerFacts) -> Behaviour:
        """The first available matching rule's behaviour (recording the use), or the default."""
        for rule in self.rules():
            if rule.available_for(pod_uid) and rule.match.matches(facts):
                rule.used_by.add(pod_uid)
                return rule.behaviour
        return DEFAULT_BEHAVIOUR


# --- $(VAR) expansion ---------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are replaced, ``$$`` escapes a ``$``,
    and references to undefined variables stay as written."""

    def replace(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name = found.group(1)
        return env.get(name, found.group(0))

    return _REFERENCE.sub(replace, text)


# --- what a container's command says about it ---------------------------------------------------

_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}
_ENDLESS_LOOP = re.compile(r"\bwhile\s+(?:true|:)\s*[;\n]\s*do\b(?P<body>.*?)[;\n]\s*done\b", re.S)
_ENDLESS_COMMAND = re.compile(r"(?:^|[;&|\s])(?:sleep\s+(?:infinity|inf)|tail\s+-f\s+/dev/null)\b")
_TRAP = re.compile(r"\btrap\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))((?:[ \t]+[A-Za-z0-9]+)+)")
_EXIT = re.compile(r"\bexit(?:\s+(\d+))?")


def _script(argv: list[str]) -> str:
    """The shell script a command runs (``sh -c SCRIPT``), else the command line."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in _SHELLS and argv[1] == "-c":
        return argv[2]
    return " ".join(shlex.quote(part) for part in argv)


def runs_forever(argv: list[str]) -> bool:
    """Whether a command never ends by itself: an endless shell loop without ``break`` or
    ``exit`` in it, ``sleep infinity``, ``tail -f /dev/null``."""
    script = _script(argv)
    for loop in _ENDLESS_LOOP.finditer(script):
        if not re.search(r"\b(?:break|exit)\b", loop.group("body")):
            return True
    return bool(_ENDLESS_COMMAND.search(script))


def trapped_signals(argv: list[str]) -> dict[str, int]:
    """Signal name → exit code for the ``trap "… exit N" SIG`` lines of a shell command."""
    script = _script(argv)
    out: dict[str, int] = {}
    for found in _TRAP.finditer(script):
        action = next(g for g in found.groups()[:3] if g is not None)
        if action == "-":
            continue
        exit_found = _EXIT.search(action)
        if exit_found is None:
            continue  # handled without exiting (``trap "" INT`` ignores the signal)
        code = int(exit_found.group(1) or 0)
        for word in found.group(4).split():
            name = signal_name(word)
            if name is not None:
                out[name] = code & 0xFF
    return out
