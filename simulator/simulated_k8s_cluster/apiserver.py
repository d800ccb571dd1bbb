"""The HTTP face of the simulated cluster: the Kubernetes REST API over aiohttp.

Speaks the wire protocol the official clients use: JSON bodies, ``Status`` errors, chunked
watch streams of ``{"type", "object"}`` lines, ``410 Gone`` for expired resource versions,
``limit``/``continue`` paging, the three patch types, ``DeleteOptions``, dry runs and strict
field validation. Requests the ``rbac`` section denies get ``403 Forbidden``, and
``SelfSubjectAccessReview`` answers the same question (see :mod:`.rbac`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import copy
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from . import admission, apply, k8s_protobuf, openapi, patching, schema, tables
from .rbac import Attributes, Authorizer
from .resources import (
    NAMESPACES,
    NODES,
    PODS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    ApiError,
    ResourceType,
    not_found,
)
from .selectors import object_filter, parse_field_selector, parse_label_selector
from .state import ClusterState
from .store import ResourceVersionTooOld, Watcher
from .streams import STREAM_SUBRESOURCES, StreamServer

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_REQUEST_TOKEN: contextvars.ContextVar[str] = contextvars.ContextVar("request_token", default="")
"""The bearer token of the request being served (for per-client request counters)."""

_UNAUTHENTICATED = {"/version", "/healthz", "/livez", "/readyz"}
WATCH_BATCH = 500
"""Most watch events sent in one write."""
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class Route:
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def counted_resource(self) -> str:
        return (
            f"{self.resource.plural}/{self.subresource}"
            if self.subresource
            else self.resource.plural
        )


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _reset(transport: asyncio.Transport) -> None:
    """Close the connection with a TCP RST (linger 0), as a crashed peer or middlebox does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.status(), status=error.code, headers=error.headers or None)


class ApiServer:
    """aiohttp application serving one :class:`ClusterState`."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._watch_tasks: set[asyncio.Task[Any]] = set()
        self._open_watches: dict[asyncio.Transport, Watcher] = {}
        self._resetting_until = 0.0
        self.authorizer = Authorizer(state.config.rbac, state.config.cluster_name)
        self.streams = StreamServer(state)

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=16 * 1024 * 1024, middlewares=[k8s_protobuf.negotiate]
        )
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_response_prepare.append(self._date_header)
        return app

    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        """``Date`` from the cluster's clock (the wall clock unless time is manual)."""
        response.headers["Date"] = format_datetime(self.state.clock.utcnow(), usegmt=True)

    # --- dispatch --------------------------------------------------------------------------

    def reset_connections(self, seconds: float) -> None:
        """Reset every open watch connection now, and every connection that sends a request
        during the next ``seconds`` wall seconds (TCP RST, no answer)."""
        self._resetting_until = max(self._resetting_until, time.monotonic() + seconds)
        for transport, watcher in list(self._open_watches.items()):
            _reset(transport)
            watcher.close()  # the stream's handler ends at once
            self.state.store.close_watch(watcher)
        self._open_watches.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._resetting_until and time.monotonic() < self._resetting_until:
            self.state.counters.add("reset", "connections")
            if request.transport is not None:
                _reset(request.transport)
            return web.Response(status=500)  # never sent: the connection is gone
        try:
            return await self._handle(request)
        except ApiError as error:
            return _error_response(error)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # never a bare traceback on the wire
            log.exception("simulated API server failed on %s %s", request.method, request.path)
            return _error_response(ApiError(500, f"simulated API server error: {exc}"))

    def _authenticate(self, request: web.Request) -> None:
        _REQUEST_TOKEN.set("")
        if request.path in _UNAUTHENTICATED:
            return
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token not in self.state.tokens and token not in self.state.client_counters:
            raise ApiError(401, "Unauthorized")
        _REQUEST_TOKEN.set(token)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._authenticate(request)
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            self._count_and_fault("discovery", "version", None)
            return _json_response(self._version())
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        parts = [p for p in path.split("/") if p]
        if parts == ["openapi", "v2"]:
            self._count_and_fault("discovery", "openapi/v2", None)
            return self._openapi_v2(request)
        if parts[:2] == ["openapi", "v3"]:
            self._count_and_fault("discovery", "openapi/v3", None)
            document = self._openapi_v3(parts[2:])
            if document is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _json_response(document)
        discovery = self._discovery(parts)
        if discovery is not None:
            self._count_and_fault("discovery", "/".join(parts[:3]), None)
            return _json_response(discovery)
        route = self._route(parts)
        if route.resource is PODS and route.subresource in STREAM_SUBRESOURCES:
            return await self._stream(request, route)
        verb = self._verb(request, route)
        selector = request.query.get("labelSelector", "")
        self._count_and_fault(
            verb, route.counted_resource, route.namespace, selector, dry_run=_dry_run(request)
        )
        self._authorize(request, route, verb)
        if route.resource is SELF_SUBJECT_ACCESS_REVIEWS and verb == "create":
            return await self._access_review(request, route)
        handler = None if route.resource.verbs else self._handlers().get(verb)
        if handler is None:
            raise ApiError(
                405,
                f"the server does not allow this method on the requested "
                f"resource ({request.method} {route.counted_resource})",
            )
        response = await handler(request, route)
        held = self.state.faults.take_hold(verb, route.counted_resource, _dry_run(request))
        if held:
            await asyncio.sleep(held)  # done, but the client hears of it only now
        return response

    async def _stream(self, request: web.Request, route: Route) -> web.StreamResponse:
        """``pods/exec`` and ``pods/attach``: ``get`` for a websocket ``GET``, ``create`` for a
        ``POST``; from 1.35 (``AuthorizePodWebsocketUpgradeCreatePermission``) a websocket
        upgrade needs ``create`` too."""
        if request.method not in ("GET", "POST") or route.name is None:
            raise ApiError(
                405,
                f"the server does not allow this method on the requested "
                f"resource ({request.method} {route.counted_resource})",
            )
        verb = "get" if request.method == "GET" else "create"
        self._count_and_fault(verb, route.counted_resource, route.namespace)
        self._authorize(request, route, verb)
        major, minor = (int(p) for p in self.state.config.kubernetes_version.split(".")[:2])
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if verb == "get" and upgrade and (major, minor) >= (1, 35):
            self._authorize(request, route, "create")
        return await self.streams.serve(
            request, route.namespace or "", route.name, route.subresource or ""
        )

    def _handlers(self) -> dict[str, Callable[[web.Request, Route], Awaitable[web.StreamResponse]]]:
        return {
            "get": self._get,
            "list": self._list,
            "watch": self._watch,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }

    def _authorize(self, request: web.Request, route: Route, verb: str) -> None:
        """``403`` when the ``rbac`` section denies this request (attributes as the API server's
        RequestInfo derives them)."""
        if verb == "unsupported":
            return
        name = route.name or ""
        if not name and verb in ("list", "watch"):
            name = _name_from_field_selector(request.query.get("fieldSelector"))
        namespace = route.namespace or ""
        if route.resource is NAMESPACES and route.name:
            namespace = route.name
        self.authorizer.check(
            Attributes(
                verb=verb,
                group=route.resource.group,
                resource=route.resource.plural,
                subresource=route.subresource or "",
                namespace=namespace,
                name=name,
            )
        )

    async def _access_review(self, request: web.Request, route: Route) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, dict):
            self._check_kind(body, route)
        return _json_response(self.authorizer.review(body), status=201)

    def _count_and_fault(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        label_selector: str = "",
        dry_run: bool = False,
    ) -> None:
        self.state.counters.add(verb, resource, dry_run)
        client = self.state.client_counters.get(_REQUEST_TOKEN.get())
        if client is not None:
            client.add(verb, resource, dry_run)
        rule = self.state.faults.take(verb, resource, namespace, label_selector)
        if rule is None:
            return
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        messages = {
            429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected fault",
            503: "the server is currently unable to handle the request",
        }
        details = {"retryAfterSeconds": rule.retry_after} if rule.retry_after is not None else None
        raise ApiError(
            rule.status,
            messages.get(rule.status, "injected fault"),
            details=details,
            headers=headers,
        )

    def _route(self, parts: list[str]) -> Route:
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (group == "" and len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
        ):
            namespace, rest = rest[1], rest[2:]
        resource = self.state.registry.find(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        if namespace is not None and not resource.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        streamed = resource is PODS and sub in STREAM_SUBRESOURCES
        if sub is not None and sub not in resource.subresources and not streamed:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(resource, namespace, name, sub)

    @staticmethod
    def _verb(request: web.Request, route: Route) -> str:
        method = request.method
        if method == "GET":
            if route.name is None:
                return "watch" if _bool(request.query.get("watch")) else "list"
            return "get"
        if method == "POST":
            return "create" if route.name is None else "unsupported"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if route.name is not None else "deletecollection"
        return "unsupported"

    # --- discovery -------------------------------------------------------------------------

    def _version(self) -> Obj:
        major, minor, *_ = self.state.config.kubernetes_version.split(".")
        return {
            "major": major,
            "minor": minor,
            "emulationMajor": major,
            "emulationMinor": minor,
            "minCompatibilityMajor": major,
            "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
            "gitVersion": f"v{self.state.config.kubernetes_version}-sim",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _openapi_v3(self, parts: list[str]) -> Obj | None:
        """``/openapi/v3``: the index of group versions, and each one's document (see
        :mod:`.openapi`)."""
        registry = self.state.registry
        documents = {
            (g, v): openapi.v3_document(
                registry.in_group_version(g, v), self._version()["gitVersion"]
            )
            for g, versions in registry.groups().items()
            for v in versions
        }
        if not parts:
            return openapi.v3_index(documents)
        for (group, version), document in documents.items():
            if parts == (["apis", group, version] if group else ["api", version]):
                return document
        return None

    def _openapi_v2(self, request: web.Request) -> web.Response:
        """``/openapi/v2`` as JSON; a client that accepts only protobuf gets ``406``."""
        accept = request.headers.get("Accept", "*/*")
        if not any(
            kind.split(";")[0].strip() in ("application/json", "application/*", "*/*", "")
            for kind in accept.split(",")
        ):
            raise ApiError(406, f"only application/json is served here, not {accept}")
        registry = self.state.registry
        resources = [
            r
            for g, versions in registry.groups().items()
            for v in versions
            for r in registry.in_group_version(g, v)
        ]
        return _json_response(openapi.v2_document(resources, self._version()["gitVersion"]))

    def _discovery(self, parts: list[str]) -> Obj | None:
        registry = self.state.registry
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
                ],
            }
        if parts == ["apis"]:
            groups = []
            for group, versions in sorted(registry.groups().items()):
                if not group:
                    continue
                entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if len(parts) == 2 and parts[0] == "apis":
            served = registry.groups().get(parts[1])
            if not served:
                return None
            entries = [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in served]
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": parts[1],
                "versions": entries,
                "preferredVersion": entries[0],
            }
        if parts[:1] == ["api"] and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            return None
        resources = registry.in_group_version(group, version)
        if not resources:
            return None
        listed: list[Obj] = []
        for r in resources:
            verbs = list(r.verbs) or list(_VERBS)
            entry: Obj = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            listed.append(entry)
            streamed = STREAM_SUBRESOURCES if r is PODS else frozenset()
            for sub in sorted(r.subresources | streamed):
                kind, verbs = r.kind, ["get", "patch", "update"]
                if sub == "log":
                    kind, verbs = "Pod", ["get"]
                elif sub in streamed:
                    kind, verbs = f"Pod{sub.capitalize()}Options", ["create", "get"]
                listed.append(
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": kind,
                        "verbs": verbs,
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": listed,
        }

    # --- reading ---------------------------------------------------------------------------

    async def _get(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None
        if route.subresource == "log":
            return await self._log(request, route)
        obj = self.state.store.require(route.resource, route.namespace or "", route.name)
        if route.subresource is None and self._wants_table(request, route):
            metadata = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return _json_response(self._table(request, route, [obj], metadata))
        return _json_response(obj)

    @staticmethod
    def _wants_table(request: web.Request, route: Route) -> bool:
        return not route.resource.custom and tables.wants_table(request.headers.get("Accept", ""))

    def _table(self, request: web.Request, route: Route, objects: list[Obj], metadata: Obj) -> Obj:
        return tables.table(
            route.resource,
            objects,
            self.state.clock,
            metadata,
            request.query.get("includeObject", "Metadata"),
        )

    def _filter(self, request: web.Request, resource: ResourceType) -> Any:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), resource)
        return object_filter(labels, fields)

    async def _list(self, request: web.Request, route: Route) -> web.StreamResponse:
        store = self.state.store
        matches = self._filter(request, route.resource)
        limit = int(request.query.get("limit") or 0)
        token = request.query.get("continue")
        start_after = ""
        snapshot_rv = store.resource_version
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                snapshot_rv, start_after = int(decoded["rv"]), decoded["start"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, f"continue key is not valid: {exc}") from exc
            if snapshot_rv < store.oldest_resource_version:
                raise ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list.",
                    reason="Expired",
                )
        items: list[Obj] = []
        remaining = 0
        next_token = None
        for obj in store.objects(route.resource, route.namespace, ordered=True):
            key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            if start_after and key <= start_after:
                continue
            if not matches(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
        metadata: Obj = {"resourceVersion": str(snapshot_rv if token else store.resource_version)}
        if remaining:
            last = items[-1]["metadata"]
            next_key = f"{last.get('namespace', '')}/{last['name']}"
            next_token = base64.urlsafe_b64encode(
                json.dumps({"rv": snapshot_rv, "start": next_key}).encode()
            ).decode()
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = remaining
        if self._wants_table(request, route):
            return _json_response(self._table(request, route, items, metadata))
        body = {
            "kind": f"{route.resource.kind}List",
            "apiVersion": route.resource.api_version,
            "metadata": metadata,
            "items": [self._list_item(obj, route.resource) for obj in items],
        }
        return _json_response(body)

    @staticmethod
    def _list_item(obj: Obj, resource: ResourceType) -> Obj:
        if resource.custom:
            return obj
        return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}

    def _validate_watch_options(self, request: web.Request) -> None:
        """kube-apiserver's checks of a watch's ``sendInitialEvents`` and
        ``resourceVersionMatch`` (apimachinery ``validateWatchOptions``): 422 Invalid."""
        match = request.query.get("resourceVersionMatch", "")
        send_initial = "sendInitialEvents" in request.query
        problems = []
        if send_initial:
            if match != "NotOlderThan":
                problems.append(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                    "resourceVersionMatch to NotOlderThan"
                )
            if not self.state.config.watch_list_enabled:
                problems.append(
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch "
                    "unless the WatchList feature gate is enabled"
                )
        if match:
            if not send_initial:
                problems.append(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for "
                    "watch unless sendInitialEvents is provided"
                )
            if match != "NotOlderThan":
                problems.append(
                    f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                    '"NotOlderThan"'
                )
        if problems:
            detail = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            raise ApiError(422, f'ListOptions.meta.k8s.io "" is invalid: {detail}')

    async def _watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        store = self.state.store
        self._validate_watch_options(request)
        matches = self._filter(request, route.resource)
        timeout = request.query.get("timeoutSeconds")
        timeout_seconds = float(timeout) if timeout else 1800.0
        bookmarks = _bool(request.query.get("allowWatchBookmarks"))
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        transport = request.transport
        requested_rv = request.query.get("resourceVersion")
        send_initial = _bool(request.query.get("sendInitialEvents"))
        initial = send_initial or not requested_rv or requested_rv == "0"
        try:
            watcher = store.open_watch(
                route.resource, route.namespace, matches, None if send_initial else requested_rv
            )
        except ResourceVersionTooOld as gone:
            status = ApiError(410, str(gone), reason="Expired").status()
            await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            await response.write_eof()
            return response
        if transport is not None:
            self._open_watches[transport] = watcher
        loop = asyncio.get_running_loop()
        opened = loop.time()
        deadline = opened + timeout_seconds
        interval = self.state.config.bookmark_interval_seconds

        def next_bookmark_after(now: float) -> float:
            # Periodically, and once two seconds before the watch times out (as kube-apiserver).
            pre_timeout = deadline - 2.0
            return pre_timeout if now <= pre_timeout < now + interval else now + interval

        next_bookmark = next_bookmark_after(opened)
        try:
            if initial:
                # The current state as ADDED events, then (with bookmarks) the bookmark that
                # marks their end.
                lines = []
                for _ in range(watcher.queue.qsize()):
                    item = watcher.queue.get_nowait()
                    if item is None:
                        break
                    lines.append(json.dumps({"type": item[0], "object": item[1]}).encode())
                    if len(lines) >= WATCH_BATCH:
                        await response.write(b"\n".join(lines) + b"\n")
                        lines = []
                if lines:
                    await response.write(b"\n".join(lines) + b"\n")
                if bookmarks:
                    await response.write(self._bookmark(route.resource, initial_events_end=True))
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - now))
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except asyncio.TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark:
                        await response.write(self._bookmark(route.resource))
                        next_bookmark = next_bookmark_after(loop.time())
                    continue
                # Whatever else is queued goes out in the same write: a burst of changes (a
                # thousand Jobs finishing) costs one write per burst, not one per event.
                lines, ended = [], False
                while item is not None:
                    event_type, obj = item
                    lines.append(json.dumps({"type": event_type, "object": obj}).encode())
                    if watcher.queue.empty() or len(lines) >= WATCH_BATCH:
                        break
                    item = watcher.queue.get_nowait()
                else:
                    ended = True
                if lines:
                    await response.write(b"\n".join(lines) + b"\n")
                if ended:
                    break
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.close_watch(watcher)
            if transport is not None:
                self._open_watches.pop(transport, None)
        return response

    def _bookmark(self, resource: ResourceType, initial_events_end: bool = False) -> bytes:
        metadata: Obj = {"resourceVersion": str(self.state.store.resource_version)}
        if initial_events_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

    async def _log(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None
        source = self.state.log_source
        if source is None:
            raise ApiError(400, "no kubelet is running in this simulated cluster")
        container = request.query.get("container")
        previous = _bool(request.query.get("previous"))
        follow = _bool(request.query.get("follow"))
        timestamps = _bool(request.query.get("timestamps"))
        tail = request.query.get("tailLines")
        since = request.query.get("sinceSeconds")
        limit_bytes = request.query.get("limitBytes")
        store = self.state.store
        clock = self.state.clock

        def snapshot() -> tuple[list[tuple[float, str]], bool]:
            # The stored pod, read only (a followed log looks at it 20 times a second).
            pod = store.peek(PODS, route.namespace or "", route.name or "")
            if pod is None:
                raise not_found(PODS, route.name or "")
            return source.lines(pod, container, previous)

        def render(lines: list[tuple[float, str]]) -> str:
            cutoff = clock.log_cutoff(since, request.query.get("sinceTime"))
            if cutoff is not None:
                lines = [entry for entry in lines if entry[0] >= cutoff]
            out = []
            for at, text in lines:
                out.append(f"{clock.micro_timestamp(at)} {text}" if timestamps else text)
            return "".join(f"{line}\n" for line in out)

        lines, finished = snapshot()
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not follow or finished:
            text = render(lines)
            if limit_bytes:
                text = text.encode()[: int(limit_bytes)].decode(errors="ignore")
            return web.Response(body=text.encode(), headers={"Content-Type": "text/plain"})
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = len(lines)
        await response.write(render(lines).encode())
        try:
            while not finished:
                await asyncio.sleep(0.05)
                try:
                    all_lines, finished = snapshot()
                except ApiError:
                    break
                if len(all_lines) > sent:
                    await response.write(render(all_lines[sent:]).encode())
                    sent = len(all_lines)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    # --- writing ---------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        if k8s_protobuf.is_protobuf(request.headers.get("Content-Type", "")):
            return k8s_protobuf.read_body(await request.read(), request.path)
        text = await request.text()
        if not text:
            raise ApiError(400, "the body of the request was empty")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"the object provided is unrecognized ({exc})") from exc

    def _check_kind(self, obj: Obj, route: Route) -> None:
        resource = route.resource
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != resource.api_version:
            raise ApiError(
                400,
                f"the API version in the data ({api_version}) does not match "
                f"the expected API version ({resource.api_version})",
            )
        if kind and kind != resource.kind:
            raise ApiError(
                400,
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})",
            )

    def _prune(
        self, request: web.Request, obj: Obj, resource: ResourceType
    ) -> dict[str, str] | None:
        """Drop unknown fields; ``fieldValidation=Strict`` rejects them instead."""
        if resource.custom:
            return None
        definition = schema.kind_definition(resource.api_version, resource.kind)
        if definition is None:
            return None
        unknown = schema.prune(obj, definition)
        if not unknown:
            return None
        mode = request.query.get("fieldValidation", "Warn")
        if mode == "Strict":
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise ApiError(
                400,
                f'{resource.kind} in version "{resource.version}" cannot be handled as a '
                f"{resource.kind}: strict decoding error: {listed}",
            )
        if mode == "Ignore":
            return None
        return {"Warning": ", ".join(f'299 - "unknown field \\"{u}\\""' for u in unknown)}

    async def _create(self, request: web.Request, route: Route) -> web.StreamResponse:
        obj = await self._body(request)
        if not isinstance(obj, dict):
            raise ApiError(400, "the object provided is unrecognized")
        self._check_kind(obj, route)
        warnings = self._prune(request, obj, route.resource)
        return await self._create_object(request, route, obj, warnings)

    async def _create_object(
        self,
        request: web.Request,
        route: Route,
        obj: Obj,
        warnings: dict[str, str] | None,
        managed_fields: list[Obj] | None = None,
    ) -> web.StreamResponse:
        store, resource = self.state.store, route.resource
        meta = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise ApiError(400, "resourceVersion should not be set on objects to be created")
        body_ns = meta.get("namespace")
        if resource.namespaced:
            if body_ns and body_ns != route.namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request",
                )
            meta["namespace"] = route.namespace
        for server_field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ):
            meta.pop(server_field, None)
        if managed_fields:
            meta["managedFields"] = managed_fields
        if "status" in resource.subresources and resource is not NODES:
            obj["status"] = {}  # nodes alone may be created with a status (nodeStrategy)
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(10):
                meta["name"] = admission.generate_name(meta["generateName"])
                if store.peek(resource, route.namespace or "", meta["name"]) is None:
                    break
        self.state.mutate_on_create(resource, obj)
        admission.admit_create(resource, obj)
        if _dry_run(request):
            store.check_namespace_open(resource, obj)
            obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
            obj["metadata"]["creationTimestamp"] = self.state.clock.timestamp()
            return _json_response(obj, status=201, headers=warnings)
        created = store.create(resource, obj)
        return _json_response(created, status=201, headers=warnings)

    def _merge_for_subresource(self, route: Route, current: Obj, new: Obj) -> Obj:
        """Main resource writes keep status; ``/status`` writes keep everything else."""
        if "status" not in route.resource.subresources:
            return new
        if route.subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
            merged["metadata"]["resourceVersion"] = new.get("metadata", {}).get(
                "resourceVersion", current["metadata"]["resourceVersion"]
            )
            return merged
        new = copy.deepcopy(new)
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
        return new

    async def _write(
        self,
        request: web.Request,
        route: Route,
        current: Obj,
        new: Obj,
        warnings: dict[str, str] | None,
    ) -> web.StreamResponse:
        new = self._merge_for_subresource(route, current, new)
        if route.subresource != "status":
            admission.admit_update(route.resource, current, new)
        if _dry_run(request):
            return _json_response(new, headers=warnings)
        updated = self.state.store.update(route.resource, new, check_version=True)
        return _json_response(updated, headers=warnings)

    async def _update(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None
        if route.subresource == "log":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        current = self.state.store.require(route.resource, route.namespace or "", route.name)
        new = await self._body(request)
        if not isinstance(new, dict):
            raise ApiError(400, "the object provided is unrecognized")
        self._check_kind(new, route)
        warnings = self._prune(request, new, route.resource)
        meta = new.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != route.name:
            raise ApiError(
                400,
                f"the name of the object ({meta['name']}) does not match the "
                f"name on the URL ({route.name})",
            )
        meta["name"] = route.name
        if route.resource.namespaced:
            meta["namespace"] = route.namespace
        if not meta.get("resourceVersion"):
            if route.resource.custom:
                raise ApiError(
                    422,
                    f'{route.resource.qualified_kind} "{route.name}" is invalid: '
                    "metadata.resourceVersion: Invalid value: 0x0: must be "
                    "specified for an update",
                )
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self._write(request, route, current, new, warnings)

    async def _patch(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None
        if request.headers.get("Content-Type", "").split(";")[0].strip() == patching.APPLY_PATCH:
            return await self._apply(request, route)
        current = self.state.store.require(route.resource, route.namespace or "", route.name)
        body = await self._body(request)
        content_type = request.headers.get("Content-Type", "")
        patched = patching.apply_patch(current, body, content_type, route.resource.custom)
        warnings = self._prune(request, patched, route.resource)
        patched.setdefault("metadata", {})
        for immutable in ("name", "namespace", "uid"):
            if immutable in current["metadata"]:
                patched["metadata"][immutable] = current["metadata"][immutable]
        if not patched["metadata"].get("resourceVersion"):
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self._write(request, route, current, patched, warnings)

    async def _apply(self, request: web.Request, route: Route) -> web.StreamResponse:
        """Server-side apply (see :mod:`.apply`): creates the object when absent."""
        assert route.name is not None
        resource = route.resource
        applied = apply.parse(await request.text())
        self._check_kind(applied, route)
        warnings = self._prune(request, applied, resource)
        name = (applied.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise ApiError(
                400,
                f"the name of the object ({name}) does not match the name on the URL "
                f"({route.name})",
            )
        current = self.state.store.peek(resource, route.namespace or "", route.name)
        if current is None and route.subresource:
            current = self.state.store.require(resource, route.namespace or "", route.name)
        result = apply.server_side_apply(
            resource,
            current,
            applied,
            request.query.get("fieldManager", ""),
            _bool(request.query.get("force")),
            self.state.clock.timestamp(),
            route.subresource,
        )
        meta = result["metadata"]
        meta["name"] = route.name
        if current is None:
            managed = meta.get("managedFields")
            return await self._create_object(request, route, result, warnings, managed)
        for immutable in ("namespace", "uid"):
            if immutable in current["metadata"]:
                meta[immutable] = current["metadata"][immutable]
        meta.setdefault("resourceVersion", current["metadata"]["resourceVersion"])
        return await self._write(request, route, current, result, warnings)

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        protobuf = k8s_protobuf.is_protobuf(request.headers.get("Content-Type", ""))
        if protobuf and request.can_read_body:
            options = k8s_protobuf.read_body(await request.read(), request.path)
        text = "" if protobuf else await request.text()
        if text:
            try:
                options = json.loads(text) or {}
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"invalid DeleteOptions: {exc}") from exc
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "orphanDependents" in query:
            options["orphanDependents"] = _bool(query["orphanDependents"])
        if options.get("propagationPolicy") is None and options.get("orphanDependents") is not None:
            options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
        return options

    async def _delete(self, request: web.Request, route: Route) -> web.StreamResponse:
        assert route.name is not None
        options = await self._delete_options(request)
        store = self.state.store
        current = store.require(route.resource, route.namespace or "", route.name)
        if _dry_run(request) or "All" in (options.get("dryRun") or []):
            return _json_response(current)
        preconditions = options.get("preconditions") or {}
        result = store.delete(
            route.resource,
            route.namespace or "",
            route.name,
            propagation=options.get("propagationPolicy"),
            grace_period_seconds=options.get("gracePeriodSeconds"),
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
        )
        if route.resource is NAMESPACES:
            self._empty_namespace(route.name)
        pending = store.peek(route.resource, route.namespace or "", route.name) is not None
        # 202 only when the client asked for cascading deletion with orphanDependents=false
        # and the object is still there (the API server's compatibility rule).
        accepted = pending and options.get("orphanDependents") is False
        if not pending:
            if route.resource is PODS:  # pods return the deleted object, as deleted
                meta = result["metadata"]
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = self.state.clock.timestamp()
                    meta["deletionGracePeriodSeconds"] = 0
            elif not route.resource.custom:
                result = _deleted_status(route.resource, result)
        return _json_response(result, status=202 if accepted else 200)

    def _empty_namespace(self, namespace: str) -> None:
        store = self.state.store
        for resource in list(self.state.registry.types.values()):
            if not resource.namespaced:
                continue
            for obj in list(store.objects(resource, namespace)):
                store.delete(
                    resource,
                    namespace,
                    obj["metadata"]["name"],
                    propagation="Background",
                    grace_period_seconds=0,
                )
        ns = store.get(NAMESPACES, "", namespace)
        if ns is not None:
            ns["metadata"]["finalizers"] = []
            ns["spec"] = {"finalizers": []}
            ns["status"] = {"phase": "Terminating"}
            store.update(NAMESPACES, ns)

    async def _delete_collection(self, request: web.Request, route: Route) -> web.StreamResponse:
        options = await self._delete_options(request)
        store = self.state.store
        matches = self._filter(request, route.resource)
        deleted = []
        for obj in list(store.objects(route.resource, route.namespace)):
            if not matches(obj):
                continue
            meta = obj["metadata"]
            deleted.append(
                store.delete(
                    route.resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    propagation=options.get("propagationPolicy"),
                    grace_period_seconds=options.get("gracePeriodSeconds"),
                )
            )
        body = {
            "kind": f"{route.resource.kind}List",
            "apiVersion": route.resource.api_version,
            "metadata": {"resourceVersion": str(store.resource_version)},
            "items": [self._list_item(o, route.resource) for o in deleted],
        }
        return _json_response(body)


def _deleted_status(resource: ResourceType, obj: Obj) -> Obj:
    """What a DELETE answers when the object is gone at once (built-in types but pods)."""
    details: Obj = {"name": obj["metadata"]["name"]}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    details["uid"] = obj["metadata"].get("uid", "")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _name_from_field_selector(selector: str | None) -> str:
    """``metadata.name=x`` in a list or watch names the object, as in the API server."""
    for term in (selector or "").split(","):
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and key.strip() == "metadata.name":
            return value.strip()
    return ""


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])
