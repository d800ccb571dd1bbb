"""Kubernetes protobuf bodies (``application/vnd.kubernetes.protobuf``) to and from JSON objects.

The wire format: the 4-byte magic ``k8s\\x00`` then a ``runtime.Unknown`` message whose
``typeMeta`` names the kind and whose ``raw`` is the kind's own message. Field numbers, types and
JSON names come from :mod:`.k8s_protobuf_tables` (generated from k8s.io/api). Custom resources
have no protobuf form (as on a real API server): their bodies are refused with 415.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .k8s_protobuf_tables import KINDS, LISTS, MESSAGES
from .resources import ApiError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
_TIME = f"{_META}.Time"
_MICRO_TIME = f"{_META}.MicroTime"
_DURATION = f"{_META}.Duration"
_FIELDS_V1 = f"{_META}.FieldsV1"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_JSON_BYTES = {_FIELDS_V1, _RAW_EXTENSION}

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_VARINT_TYPES = {"bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64"}
_FIXED = {"fixed32": "<I", "sfixed32": "<i", "float": "<f", "fixed64": "<Q", "sfixed64": "<q"}
_FIXED["double"] = "<d"

Obj = dict[str, Any]
_Field = tuple[int, str, str, str]
_INDEX: dict[str, dict[int, _Field]] = {}


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf message this server can read."""


class UnsupportedKind(ProtobufError):
    """A kind without a protobuf form here (custom resources are JSON-only)."""


def is_protobuf(content_type: str) -> bool:
    """Whether a ``Content-Type`` header names the Kubernetes protobuf encoding."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def wants_protobuf(accept: str) -> bool:
    """Whether protobuf is the client's first choice among what the server can answer in: the
    media types of an ``Accept`` header by quality, then in their order (``*/*`` means JSON)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media_type, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif key.strip() == "as":  # a Table or other transformation: never protobuf here
                quality = 0.0
        if media_type and quality > 0:
            ranked.append((-quality, position, media_type.lower()))
    for _quality, _position, media_type in sorted(ranked):
        if media_type == MEDIA_TYPE:
            return True
        if media_type in ("application/json", "application/yaml", "application/*", "*/*"):
            return False
    return False


def message_name(api_version: str, kind: str) -> str | None:
    """The protobuf message of a kind, or None when it has none here (``Status`` and
    ``DeleteOptions`` come typed with any built-in group version)."""
    package = KINDS.get(api_version)
    for name in (f"{package}.{kind}", f"{_META}.{kind}") if package else ():
        if name in MESSAGES:
            return name
    return None


def decode(data: bytes) -> Obj:
    """A protobuf request body (magic + ``runtime.Unknown``) as the JSON object it stands for."""
    if not data.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    envelope = _decode_message(_UNKNOWN, data[len(MAGIC) :])
    api_version, kind = envelope.get("apiVersion", ""), envelope.get("kind", "")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"content encoding {envelope['contentEncoding']!r} is not supported")
    name = message_name(api_version, kind)
    if name is None:
        raise UnsupportedKind(
            f"{kind or 'an object without a kind'} in version "
            f'"{api_version.rsplit("/", 1)[-1]}" cannot be handled as protobuf: no kind '
            f'"{kind}" is registered for version "{api_version}" (custom resources are JSON only)'
        )
    raw = base64.b64decode(envelope.get("raw", ""))
    obj = _decode_message(name, raw)
    if kind.endswith("List"):
        obj.setdefault("items", [])  # a list is never null
    return {"apiVersion": api_version, "kind": kind, **obj}


def encode(obj: Obj) -> bytes:
    """A JSON object (with ``apiVersion`` and ``kind``) as a protobuf body."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    name = message_name(api_version, kind)
    if name is None:
        raise UnsupportedKind(f"{kind} ({api_version}) has no protobuf form")
    envelope = {
        "apiVersion": api_version,
        "kind": kind,
        "raw": base64.b64encode(_encode_message(name, obj)).decode(),
        "contentEncoding": "",
        "contentType": "",
    }
    return MAGIC + _encode_message(_UNKNOWN, envelope)


# --- the wire ------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers are ten bytes of two's complement
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _BYTES:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError(f"field {number} runs past the end of its message")
            value, pos = data[pos : pos + length], pos + length
        elif wire == _FIXED64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == _FIXED32:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} (field {number})")
        if pos > len(data):
            raise ProtobufError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _index(message: str) -> dict[int, _Field]:
    index = _INDEX.get(message)
    if index is None:
        index = _INDEX[message] = {field[0]: field for field in MESSAGES[message]}
    return index


# --- decoding ------------------------------------------------------------------------------


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(type_: str, wire: int, value: Any) -> Any:
    if type_ == "string":
        return bytes(value).decode("utf-8")
    if type_ == "bytes":
        return base64.b64encode(value).decode()
    if type_ in _FIXED:
        return struct.unpack(_FIXED[type_], value)[0]
    if wire != _VARINT:
        raise ProtobufError(f"a {type_} sent with wire type {wire}")
    if type_ == "bool":
        return bool(value)
    if type_ in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if type_ == "int32":
        return _signed(value, 32)
    if type_ == "int64":
        return _signed(value, 64)
    return value


def _packed(type_: str, data: bytes) -> list[Any]:
    if type_ in _FIXED:
        size = struct.calcsize(_FIXED[type_])
        return [_scalar(type_, _FIXED32, data[i : i + size]) for i in range(0, len(data), size)]
    values, pos = [], 0
    while pos < len(data):
        value, pos = _read_varint(data, pos)
        values.append(_scalar(type_, _VARINT, value))
    return values


def _value(type_: str, wire: int, value: Any) -> Any:
    if type_ not in MESSAGES:
        return _scalar(type_, wire, value)
    if wire != _BYTES:
        raise ProtobufError(f"a {type_.rsplit('.', 1)[-1]} sent with wire type {wire}")
    return _special(type_, value)


def _special(type_: str, data: bytes) -> Any:
    if type_ in (_TIME, _MICRO_TIME):
        moment = _decode_message(type_, data)
        seconds, nanos = moment.get("seconds", 0), moment.get("nanos", 0)
        return _format_time(seconds, nanos, micro=type_ == _MICRO_TIME)
    if type_ == _QUANTITY:
        return _decode_message(type_, data).get("string", "0")
    if type_ == _INT_OR_STRING:
        either = _decode_message(type_, data)
        if either.get("type", 0) == 1:
            return either.get("strVal", "")
        return either.get("intVal", 0)
    if type_ == _DURATION:
        return _format_duration(_decode_message(type_, data).get("duration", 0))
    if type_ in _JSON_BYTES:
        raw = next((bytes(v) for n, _w, v in _fields(data) if n == 1), b"")
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise ProtobufError(f"embedded object is not JSON: {exc}") from exc
    if type_ in LISTS:
        return _decode_message(type_, data).get("items", [])
    return _decode_message(type_, data)


def _decode_message(message: str, data: bytes) -> Obj:
    index = _index(message)
    out: Obj = {}
    for number, wire, value in _fields(data):
        field = index.get(number)
        if field is None:
            continue  # a field this table does not know (as proto2 readers do)
        _number, name, type_, flags = field
        if "m" in flags:
            key_type, value_type = type_.split(",")
            entry = {n: (w, v) for n, w, v in _fields(value)}
            key = _value(key_type, *entry[1]) if 1 in entry else _zero(key_type)
            item = _value(value_type, *entry[2]) if 2 in entry else _zero(value_type)
            out.setdefault(name, {})[key] = item
        elif "r" in flags:
            items = out.setdefault(name, [])
            if wire == _BYTES and type_ not in MESSAGES and type_ not in ("string", "bytes"):
                items.extend(_packed(type_, value))
            else:
                items.append(_value(type_, wire, value))
        elif "i" in flags:
            inner = _value(type_, wire, value)
            if isinstance(inner, dict):
                out.update(inner)
        else:
            out[name] = _value(type_, wire, value)
    for _number, name, _type, flags in MESSAGES[message]:
        if name not in out:
            continue
        value = out[name]
        # a zero value Go's JSON leaves out (omitempty on a field that is not a pointer)
        dropped = "o" in flags and "p" not in flags and value in ("", 0, False)
        if value is None or (dropped and not isinstance(value, (list, dict))):
            del out[name]
    return out


def _zero(type_: str) -> Any:
    if type_ in MESSAGES:
        return _special(type_, b"")
    return {"string": "", "bytes": "", "bool": False}.get(type_, 0)


def _format_time(seconds: int, nanos: int, micro: bool) -> str | None:
    if seconds == 0 and nanos == 0:
        return None  # the zero time: null in JSON
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"


def _format_duration(nanos: int) -> str:
    """Go's ``time.Duration.String`` for the durations Kubernetes uses."""
    if nanos == 0:
        return "0s"
    sign, nanos = ("-" if nanos < 0 else ""), abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{sign}{_decimal(nanos, size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return f"{sign}{text}{_decimal(rest, 1_000_000_000)}s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0") if fraction else ""
    return f"{whole}.{digits}" if digits else str(whole)


# --- encoding ------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_UNITS |= {"m": 60_000_000_000, "h": 3_600_000_000_000}


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _key(number, _BYTES) + _varint(len(payload)) + payload


def _encode_scalar(number: int, type_: str, value: Any) -> bytes:
    if type_ == "string":
        return _length_delimited(number, str(value).encode("utf-8"))
    if type_ == "bytes":
        return _length_delimited(number, base64.b64decode(value))
    if type_ in _FIXED:
        wire = _FIXED64 if struct.calcsize(_FIXED[type_]) == 8 else _FIXED32
        return _key(number, wire) + struct.pack(_FIXED[type_], value)
    if type_ in ("sint32", "sint64"):
        return _key(number, _VARINT) + _varint((value << 1) ^ (value >> 63))
    if type_ not in _VARINT_TYPES:
        raise ProtobufError(f"unknown scalar type {type_}")
    return _key(number, _VARINT) + _varint(int(value))


def _encode_value(number: int, type_: str, value: Any) -> bytes:
    if type_ not in MESSAGES:
        return _encode_scalar(number, type_, value)
    return _length_delimited(number, _encode_special(type_, value))


def _encode_special(type_: str, value: Any) -> bytes:
    if type_ in (_TIME, _MICRO_TIME):
        moment = _parse_time(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = int(moment.replace(microsecond=0).timestamp())
        nanos = moment.microsecond * 1000 if type_ == _MICRO_TIME else 0
        return _encode_message(type_, {"seconds": seconds, "nanos": nanos})
    if type_ == _QUANTITY:
        return _encode_message(type_, {"string": str(value)})
    if type_ == _INT_OR_STRING:
        if isinstance(value, str):
            return _encode_message(type_, {"type": 1, "intVal": 0, "strVal": value})
        return _encode_message(type_, {"type": 0, "intVal": int(value), "strVal": ""})
    if type_ == _DURATION:
        return _encode_message(type_, {"duration": _parse_duration(str(value))})
    if type_ in _JSON_BYTES:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return _length_delimited(1, raw)
    if type_ in LISTS:
        return _encode_message(type_, {"items": value})
    if not isinstance(value, dict):
        raise ProtobufError(f"a {type_.rsplit('.', 1)[-1]} must be an object, not {value!r}")
    return _encode_message(type_, value)


def _encode_message(message: str, obj: Obj) -> bytes:
    out = bytearray()
    for number, name, type_, flags in MESSAGES[message]:
        if "i" in flags:
            out += _length_delimited(number, _encode_special(type_, obj))
            continue
        value = obj.get(name)
        if value is None:
            continue
        if "m" in flags:
            key_type, value_type = type_.split(",")
            for key in sorted(value):
                entry = _encode_value(1, key_type, key) + _encode_value(2, value_type, value[key])
                out += _length_delimited(number, entry)
        elif "r" in flags:
            for item in value:
                out += _encode_value(number, type_, item)
        else:
            out += _encode_value(number, type_, value)
    return bytes(out)


_TIME_TEXT = re.compile(r"^(.+?[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:?\d\d)?$")


def _parse_time(text: str) -> datetime:
    """RFC 3339 with any number of fraction digits (what Python 3.10 cannot read by itself)."""
    match = _TIME_TEXT.match(text.strip())
    if match is None:
        raise ProtobufError(f"invalid time {text!r}")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z", "z") else zone
    return datetime.fromisoformat(f"{base}.{(fraction or '').ljust(6, '0')[:6]}{zone}")


def _parse_duration(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    parts = _DURATION_PART.findall(body)
    if body in ("0", "") or not parts:
        if body in ("0", ""):
            return 0
        raise ProtobufError(f"invalid duration {text!r}")
    total = sum(float(amount) * _DURATION_UNITS[unit] for amount, unit in parts)
    return sign * round(total)


# --- HTTP ----------------------------------------------------------------------------------

UNSUPPORTED_BODY = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json, application/yaml"
)


def read_body(data: bytes, path: str) -> Obj:
    """A protobuf request body sent to ``path`` as its JSON object, or the :class:`ApiError` a
    client gets: 415 on the routes of custom resources (JSON only), 400 for what is not a
    protobuf message of a kind with a table here."""
    parts = [p for p in path.split("/") if p]
    group_version = "/".join(parts[1:2] if parts[:1] == ["api"] else parts[1:3])
    if group_version not in KINDS:
        raise ApiError(
            415, f"{UNSUPPORTED_BODY} (protobuf is served for built-in kinds only, not {path})"
        )
    try:
        return decode(data)
    except UnsupportedKind as exc:
        raise ApiError(400, str(exc)) from exc
    except (ProtobufError, UnicodeDecodeError, struct.error, KeyError, ValueError) as exc:
        raise ApiError(400, f"the object provided is unrecognized (protobuf: {exc})") from exc


def _json_acceptable(accept: str) -> bool:
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(types & {"application/json", "application/*", "*/*", ""})


@web.middleware
async def negotiate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer in protobuf when the client prefers it (objects that have a protobuf form only;
    tables, discovery, custom resources and streams stay JSON, as on a real API server)."""
    response = await handler(request)
    accept = request.headers.get("Accept", "")
    if (
        not wants_protobuf(accept)
        or not isinstance(response, web.Response)
        or response.content_type != "application/json"
        or response.text is None
    ):
        return response
    try:
        body = json.loads(response.text)
        data = encode(body) if isinstance(body, dict) else None
    except (ProtobufError, ValueError, TypeError, AttributeError, KeyError):
        data = None  # no protobuf form (custom resources, tables, discovery)
    status = response.status
    if data is None and not _json_acceptable(accept) and status < 400:
        message = "only the following media types are accepted: application/json, application/yaml"
        data, status = encode(ApiError(406, message).status()), 406
    if data is None:
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    headers.pop("Content-Length", None)
    return web.Response(body=data, status=status, headers=headers, content_type=MEDIA_TYPE)
