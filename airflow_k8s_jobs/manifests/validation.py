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
    "did_you_mean",
    "dns_label_problem",
    "dns_subdomain_problem",
    "label_key_problem",
    "label_value_problem",
    "quantity_problem",
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
