"""HTTP templates: what Argo's agent does for an ``http`` template (``executeHTTPTemplate``),
done by the simulated controller itself (no agent pod, no WorkflowTaskSet).

The response comes from the ``argo.httpResponses`` configuration (the first entry whose ``url``
the request's URL starts with); else, for a loopback URL (``localhost``, ``127.0.0.0/8``,
``[::1]``) only, from a real request with a timeout; any other URL fails as an Argo without
network access would (``dial tcp: lookup HOST: no such host``) — the simulator never sends a
request off this machine. ``outputs.result`` is the body; the node succeeds on a 2xx status
or, with ``successCondition``, when that expression (``response.statusCode``, ``response.body``,
``response.headers``, ``request.*``) holds.
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from . import exprlang

Obj = dict[str, Any]

LOOPBACK_TIMEOUT_SECONDS = 10.0


@dataclass
class Response:
    status_code: int
    body: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _canned(url: str, configured: list[Obj]) -> Response | None:
    for entry in configured:
        if url.startswith(str(entry.get("url", ""))):
            headers = {
                str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
                for k, v in (entry.get("headers") or {}).items()
            }
            return Response(int(entry.get("statusCode", 200)), str(entry.get("body", "")), headers)
    return None


def send(spec: Obj, configured: list[Obj]) -> Response:
    """The response to an ``http`` template's request; raises ``OSError`` with Go's message
    when there is none."""
    url = str(spec.get("url") or "")
    canned = _canned(url, configured)
    if canned is not None:
        return canned
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise OSError(f'Get "{url}": unsupported protocol scheme "{parsed.scheme}"')
    method = str(spec.get("method") or "GET")
    if not _loopback(parsed.hostname):
        raise OSError(
            f'{method.capitalize()} "{url}": dial tcp: lookup {parsed.hostname}: no such host'
        )
    headers = {str(h.get("name")): str(h.get("value", "")) for h in spec.get("headers") or []}
    body = spec.get("body")
    request = urllib.request.Request(
        url,
        data=None if body is None else str(body).encode(),
        headers=headers,
        method=method,
    )
    timeout = float(spec.get("timeoutSeconds") or LOOPBACK_TIMEOUT_SECONDS)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read().decode(errors="replace"), _headers(answer))
    except urllib.error.HTTPError as answer:
        return Response(answer.code, answer.read().decode(errors="replace"), _headers(answer))
    except (urllib.error.URLError, TimeoutError) as exc:
        raise OSError(f'{method.capitalize()} "{url}": {exc}') from exc


def _headers(answer: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in answer.headers.items():
        out.setdefault(key, []).append(value)
    return out


def outcome(spec: Obj, response: Response) -> tuple[str, str]:
    """(phase, message) of the node for a response."""
    condition = str(spec.get("successCondition") or "")
    if not condition:
        if 200 <= response.status_code < 300:
            return "Succeeded", ""
        return "Failed", f"received non-2xx response code: {response.status_code}"
    env = {
        "request": {
            "method": spec.get("method") or "",
            "url": spec.get("url") or "",
            "body": spec.get("body") or "",
            "headers": {
                str(h.get("name")): [str(h.get("value", ""))] for h in spec.get("headers") or []
            },
        },
        "response": {
            "statusCode": response.status_code,
            "body": response.body,
            "headers": response.headers,
        },
    }
    try:
        result = exprlang.evaluate(condition, env)
    except exprlang.ExprError as exc:
        return "Failed", str(exc)
    if result is not True:
        return "Failed", f"successCondition '{condition}' evaluated false"
    return "Succeeded", ""
