"""``pods/exec`` and ``pods/attach`` over the websocket channel protocols.

The API server side of what ``kubectl exec`` / ``kubectl attach`` and the Python clients'
``stream()`` speak: a ``GET`` (or ``POST``) with ``Upgrade: websocket`` on
``/api/v1/namespaces/{ns}/pods/{name}/exec?command=…&container=…&stdin=…&stdout=…&stderr=…&tty=…``
(``attach`` takes the same options but ``command``), answered ``101`` with one of the
subprotocols ``v5.channel.k8s.io``, ``v4.channel.k8s.io``, ``v3.channel.k8s.io``,
``v2.channel.k8s.io`` or ``channel.k8s.io`` (the first the client offers). Every binary frame
starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 terminal resize; with
``v5.channel.k8s.io`` a frame ``[255, n]`` closes channel ``n`` (the client's way to end
stdin). When the process ends the server writes its status on the error channel — with v4 and
v5 a ``Status`` object: ``{"metadata": {}, "status": "Success"}``, or ``Failure`` with reason
``NonZeroExitCode`` and the exit code in ``details.causes[0].message`` (cause reason
``ExitCode``), or ``InternalError`` when the program does not exist in the container — and
closes the connection. With ``tty`` everything is written on stdout, newlines as ``\\r\\n``
(there is no terminal: nothing is echoed, no prompt, resizes are ignored).

Errors before the upgrade are the API server's (``404`` for a missing pod, ``400`` for a
container that is not the pod's or a pod not on a node, ``403`` from the ``rbac`` section) and
the kubelet's, passed through as plain text: ``500 container not found ("name")`` for a
container that is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import secrets
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from .controllers.kubelet import AttachView, ExecView, Kubelet, StreamError
from .resources import PODS, ApiError
from .shell import IO, SHELLS, Shell, Text
from .state import ClusterState

STREAM_SUBRESOURCES = frozenset({"exec", "attach"})
PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_STATUS_PROTOCOLS = ("v4.channel.k8s.io", "v5.channel.k8s.io")
_POLL = 0.02
"""Wall seconds between checks of the container (still running?) and of new attach output."""


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _go_list(argv: list[str]) -> str:
    """A command as Go's ``%v`` prints a ``[]string``."""
    return "[" + " ".join(argv) + "]"


class _Channels:
    """The server's end of one channel-protocol websocket."""

    def __init__(self, ws: web.WebSocketResponse, stdout: bool, stderr: bool, tty: bool) -> None:
        self.ws = ws
        self.protocol = ws.ws_protocol or "channel.k8s.io"
        self.stdout, self.stderr, self.tty = stdout, stderr, tty
        self.stdin: asyncio.Queue[str | None] = asyncio.Queue()
        self.gone = asyncio.Event()
        """The client closed the connection."""

    async def send(self, channel: int, text: str) -> None:
        if not text or self.ws.closed:
            return
        data = text.encode()
        if self.tty:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with contextlib.suppress(ConnectionResetError):
            await self.ws.send_bytes(bytes([channel]) + data)

    async def out(self, text: str) -> None:
        if self.stdout:
            await self.send(STDOUT, text)

    async def err(self, text: str) -> None:
        if self.tty:
            await self.out(text)
        elif self.stderr:
            await self.send(STDERR, text)

    async def status(self, status: dict[str, Any]) -> None:
        """The process's end, on the error channel."""
        if self.protocol in _STATUS_PROTOCOLS:
            await self.send(ERROR, json.dumps(status, separators=(",", ":")))
        elif status.get("status") != "Success":
            await self.send(ERROR, str(status.get("message", "")))

    async def receive(self) -> None:
        """Read the client's frames until it closes: stdin data, stdin's close, resizes."""
        try:
            async for message in self.ws:
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data = message.data if isinstance(message.data, bytes) else message.data.encode()
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == CLOSE and self.protocol == PROTOCOLS[0]:
                    if payload[:1] == bytes([STDIN]):
                        self.stdin.put_nowait(None)
                elif channel == STDIN and payload:
                    self.stdin.put_nowait(payload.decode(errors="replace"))
        finally:
            self.stdin.put_nowait(None)
            self.gone.set()


class _StreamStdin:
    """Standard input from the stdin channel, read to its end (the client closes it)."""

    def __init__(self, channels: _Channels | None) -> None:
        self.channels = channels
        self.done = channels is None

    async def chunks(self) -> AsyncIterator[str]:
        while not self.done and self.channels is not None:
            chunk = await self.channels.stdin.get()
            if chunk is None:
                self.done = True
                return
            yield chunk

    async def lines(self) -> AsyncIterator[str]:
        """Complete lines (and what is left at the end)."""
        pending = ""
        async for chunk in self.chunks():
            pending += chunk
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                yield line + "\n"
        if pending:
            yield pending

    async def read(self) -> str:
        return "".join([chunk async for chunk in self.chunks()])


def _success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def _exit_status(argv: list[str], code: int) -> dict[str, Any]:
    if code == 0:
        return _success()
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: error executing command "
            f"{_go_list(argv)}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _not_executable(argv: list[str], exec_id: str) -> dict[str, Any]:
    program = argv[0]
    if "/" in program:
        why = f"stat {program}: no such file or directory"
    else:
        why = "executable file not found in $PATH"
    error = (
        f"error executing command in container: failed to exec in container: failed to start exec "
        f'"{exec_id}": OCI runtime exec failed: exec failed: unable to start container process: '
        f'exec: "{program}": {why}: unknown'
    )
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {error}",
        "reason": "InternalError",
        "details": {"causes": [{"message": error}]},
        "code": 500,
    }


class StreamServer:
    """Serves ``pods/exec`` and ``pods/attach`` for one cluster."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def _kubelet(self) -> Kubelet:
        source = self.state.log_source
        if not isinstance(source, Kubelet):
            raise ApiError(400, "no kubelet is running in this simulated cluster")
        return source

    async def serve(
        self, request: web.Request, namespace: str, name: str, subresource: str
    ) -> web.StreamResponse:
        """Answer one exec or attach request (already authenticated and authorized)."""
        query = request.query
        container = query.get("container")
        stdin, stdout = _bool(query.get("stdin")), _bool(query.get("stdout"))
        stderr, tty = _bool(query.get("stderr")), _bool(query.get("tty"))
        argv = list(query.getall("command", [])) if subresource == "exec" else []
        pod = self.state.store.require(PODS, namespace, name)
        kubelet = self._kubelet()
        if subresource == "exec" and not argv:
            raise ApiError(400, "you must specify at least one command for the container")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
        try:
            view: ExecView | AttachView
            if subresource == "exec":
                view = kubelet.exec_session(pod, container, argv)
            else:
                view = kubelet.attach_target(pod, container)
        except StreamError as exc:
            return web.Response(status=500, text=str(exc), content_type="text/plain")
        try:
            if not (stdin or stdout or stderr):
                return web.Response(
                    status=400,
                    text="you must specify at least 1 of stdin, stdout, stderr",
                    content_type="text/plain",
                )
            if not ws.can_prepare(request).ok:
                raise ApiError(400, "Upgrade request required")
            await ws.prepare(request)
            channels = _Channels(ws, stdout, stderr, tty)
            if isinstance(view, ExecView):
                await self._exec(view, channels, argv, stdin)
            else:
                await self._attach(view, channels)
            return ws
        finally:
            if isinstance(view, ExecView):
                view.close()

    async def _supervise(
        self, work: asyncio.Task[Any], view: ExecView | AttachView, channels: _Channels
    ) -> str | None:
        """Wait for ``work``; cancel it when the container stops (``"stopped"``), the session
        is signalled (``"signalled"``) or the client goes away (``"gone"``)."""
        while not work.done():
            reason = None
            if not view.alive():
                reason = "stopped"
            elif isinstance(view, ExecView) and view.signalled() is not None:
                reason = "signalled"
            elif channels.gone.is_set():
                reason = "gone"
            if reason is not None:
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                return reason
            await asyncio.wait({work}, timeout=_POLL)
        return None

    async def _exec(
        self, view: ExecView, channels: _Channels, argv: list[str], stdin: bool
    ) -> None:
        receiver = asyncio.create_task(channels.receive())
        source = _StreamStdin(channels if stdin else None)
        io = IO(source if stdin else Text(), channels.out, channels.err)
        program = posixpath.basename(argv[0])
        interactive = program in SHELLS and stdin and all(a.startswith("-") for a in argv[1:])
        interactive = interactive and "-c" not in argv[1:]

        async def run() -> int | None:
            if interactive:
                shell = Shell(view, program)
                return await shell.run_interactive(source.lines(), io)
            return await Shell(view, program).run_argv(argv, io)

        work = asyncio.create_task(run())
        try:
            ended = await self._supervise(work, view, channels)
            if ended == "stopped":
                code: int | None = 137
            elif ended == "signalled":
                signal = view.signalled()
                assert signal is not None
                code = view.exit_code(signal)
            else:
                code = work.result()
            if channels.gone.is_set():
                return
            if code is None:
                await channels.status(_not_executable(argv, secrets.token_hex(32)))
            else:
                await channels.status(_exit_status(argv, code))
            await channels.ws.close()
        finally:
            if not work.done():
                work.cancel()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver

    async def _attach(self, view: AttachView, channels: _Channels) -> None:
        receiver = asyncio.create_task(channels.receive())
        sent = view.attached_at

        async def follow() -> None:
            nonlocal sent
            while True:
                sent += await self._send_output(view, channels, sent)
                await asyncio.sleep(_POLL)

        work = asyncio.create_task(follow())
        try:
            ended = await self._supervise(work, view, channels)
            if ended == "gone":
                return
            await self._send_output(view, channels, sent)
            await channels.status(_success())
            await channels.ws.close()
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver

    @staticmethod
    async def _send_output(view: AttachView, channels: _Channels, since: int) -> int:
        """Send the main process's lines from the ``since``-th on; how many were sent."""
        lines = view.output(since)
        if lines:
            await channels.out("".join(f"{line}\n" for line in lines))
        return len(lines)
