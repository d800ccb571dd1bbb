"""Pure validators for Kubernetes names, labels and quantities.

The same rules as ``k8s.io/apimachinery/pkg/util/validation``; each helper returns ``None`` when
the value is valid and otherwise a short, human explanation (the caller adds the field path and
the object). The simulated cluster keeps its own copy in ``testing/admission.py``, worded as the
API server words its 422 answers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "LABEL_VALUE",
    "QUALIFIED_NAME",
    "argo_hint",
    "did_you_mean",
    "dns_label_problem",
    "dns_subdomain_problem",
    "image_reference_problem",
    "label_key_problem",
    "label_selector_problem",
    "label_value_problem",
    "not_utf8",
    "quantity_problem",
    "quantity_value",
    "type_name",
]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUANTITY = re.compile(
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


def type_name(value: Any) -> str:
    return type(value).__name__


def dns_label_problem(value: Any) -> str | None:
    """An RFC 1123 label: container names, namespaces, Job names."""
    if not isinstance(value, str):
        return f"must be a string, not {type_name(value)}"
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return f"must be no more than 63 characters (it has {len(value)})"
    if not DNS1123_LABEL.match(value):
        return (
            "must consist of lower case letters, digits and '-', and start and end with a letter "
            "or digit (e.g. 'my-name')"
        )
    return None


def dns_subdomain_problem(value: Any) -> str | None:
    """An RFC 1123 subdomain: service account names, label key prefixes."""
    if not isinstance(value, str):
        return f"must be a string, not {type_name(value)}"
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return f"must be no more than 253 characters (it has {len(value)})"
    if not DNS1123_SUBDOMAIN.match(value):
        return (
            "must consist of lower case letters, digits, '-' and '.', and start and end with a "
            "letter or digit (e.g. 'example.com')"
        )
    return None


def label_key_problem(key: Any) -> str | None:
    """A label or annotation key: ``[prefix/]name``."""
    if not isinstance(key, str):
        return f"keys must be strings, not {type_name(key)}"
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return "a key may contain at most one '/'"
    if prefix or key.startswith("/"):
        problem = dns_subdomain_problem(prefix)
        if problem:
            return f"the prefix {prefix!r} {problem}"
    if not name:
        return "the name part must not be empty"
    if len(name) > 63:
        return f"the name part must be no more than 63 characters (it has {len(name)})"
    if not QUALIFIED_NAME.match(name):
        return (
            "the name part must consist of letters, digits, '-', '_' or '.', and start and end "
            "with a letter or digit (e.g. 'MyName', 'my.name', '123-abc')"
        )
    return None


def label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        shown = f" (quote it: '{value}')" if isinstance(value, (int, float, bool)) else ""
        return f"label values must be strings, not {type_name(value)}{shown}"
    if len(value) > 63:
        return f"must be no more than 63 characters (it has {len(value)})"
    if not LABEL_VALUE.match(value):
        return (
            "must be empty or consist of letters, digits, '-', '_' or '.', and start and end "
            "with a letter or digit (e.g. 'MyValue', 'my_value', '12345')"
        )
    return None


def quantity_problem(value: Any) -> str | None:
    """A resource quantity such as ``500m``, ``2Gi`` or ``1``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return f"must be a quantity such as '500m', '2Gi' or 1, not {type_name(value)}"
    if isinstance(value, (int, float)):
        return None if value >= 0 else "must not be negative"
    if not _QUANTITY.match(value.strip()):
        return f"{value!r} is not a quantity; use forms such as '500m', '2Gi' or '1'"
    return "must not be negative" if value.strip().startswith("-") else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean image?"`` when a candidate is close, else ``""``."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"; did you mean {close[0]}?" if close else ""


ARGO_VARIABLES = ("inputs", "outputs", "workflow", "steps", "tasks", "item", "pod", "retries")
"""The roots of Argo's own ``{{…}}`` expressions."""
_UNDEFINED = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined")


def argo_hint(message: str | None) -> str:
    """For Jinja's "'inputs' is undefined": a note that this is an Argo expression, which only
    an Argo Workflow expands; otherwise ``""``."""
    found = _UNDEFINED.match(message or "")
    if not found or found.group(1) not in ARGO_VARIABLES:
        return ""
    return (
        f"; {{{{{found.group(1)}...}}}} is an Argo expression, which only an Argo Workflow "
        "expands (a Kubernetes Job does not): pass the value itself, use an Airflow template "
        "such as {{ params.x }}, or keep the text as written with {% raw %}...{% endraw %}"
    )


def not_utf8(where: str, error: UnicodeDecodeError) -> str:
    """The message for a file that is not UTF-8: where the first bad byte is, what to do."""
    data = error.object
    line = data[: error.start].count(b"\n") + 1
    return (
        f"{where}: cannot read the file: it is not UTF-8 text (byte 0x{data[error.start]:02x} at "
        f"line {line}); "
        "save it as UTF-8"
    )


_IMAGE_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_IMAGE_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(
    r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}$"
)


def image_reference_problem(image: str) -> str | None:
    """What makes ``image`` a reference the kubelet refuses (``InvalidImageName``): the
    ``[host[:port]/]path[:tag][@digest]`` grammar of container image references, in which the
    repository path is lower case."""
    rest, _, digest = image.partition("@")
    if digest and not _IMAGE_DIGEST.match(digest):
        return f"the digest {digest!r} is not algorithm:hex (e.g. 'sha256:' and 64 hex digits)"
    host, slash, path = rest.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost" or host != host.lower()):
        host, path = "", rest
    if host and not _IMAGE_HOST.match(host):
        return f"the registry host {host!r} is not a host name[:port]"
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
    if tag and not _IMAGE_TAG.match(tag):
        return (
            f"the tag {tag!r} is not valid (letters, digits, '_', '.', '-', at most 128, not "
            "starting with '.' or '-')"
        )
    if not path:
        return "the repository name is missing"
    if path != path.lower():
        return (
            f"the repository {path!r} must be lower case (the kubelet refuses it as "
            f"InvalidImageName); use {path.lower()!r}"
        )
    bad = [c for c in path.split("/") if not _IMAGE_PATH_COMPONENT.match(c)]
    if bad:
        return (
            f"the repository path component {bad[0]!r} is not valid (lower case letters and "
            "digits, separated by '.', '_', '__' or '-')"
        )
    return None


_SUFFIX_FACTORS = {
    "": 1,
    "n": 10**-9,
    "u": 10**-6,
    "m": 10**-3,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity_value(value: str | float) -> float:
    """The number a valid quantity stands for (``"500m"`` → 0.5, ``"1Gi"`` → 1073741824)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    found = re.match(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$", text)
    if found is None:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = found.groups()
    if suffix[:1] in ("e", "E") and suffix[1:].lstrip("+-").isdigit():
        return float(number) * 10 ** int(suffix[1:])
    return float(number) * _SUFFIX_FACTORS[suffix]


_SELECTOR_REQUIREMENT = re.compile(
    r"^\s*(?:(!)\s*(?P<absent>[^\s=!<>(),]+)"
    r"|(?P<key>[^\s=!<>(),]+)\s*(?:(?P<op>==|=|!=|<|>)\s*(?P<value>[^\s=!<>(),]*)"
    r"|\s(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?)\s*$"
)


def label_selector_problem(selector: str) -> str | None:
    """What is wrong with a label selector (``app=web,tier in (a,b),!canary``); ``None`` if
    it parses as the API server parses one."""
    if not selector.strip():
        return None
    parts, depth, start = [], 0, 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            return f"unbalanced parentheses at character {i + 1}"
        if char == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    if depth:
        return "a '(' is not closed"
    parts.append(selector[start:])
    example = "e.g. 'app=web,tier in (a,b),!canary'"
    for part in parts:
        found = _SELECTOR_REQUIREMENT.match(part)
        if found is None:
            return f"cannot parse the requirement {part.strip()!r}; write {example}"
        key = found.group("absent") or found.group("key")
        if problem := label_key_problem(key):
            return f"the key {key!r}: {problem}"
        values = [found.group("value")] if found.group("op") else []
        if found.group("set"):
            values = [v.strip() for v in found.group("values").split(",")]
        for value in values:
            if found.group("op") in ("<", ">") and not value.lstrip("-").isdigit():
                return f"{key} {found.group('op')} {value!r}: the value must be an integer"
            if problem := label_value_problem(value):
                return f"the value {value!r} of {key!r}: {problem}"
    return None
