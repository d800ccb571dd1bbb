"""The Kubernetes protobuf codec of the simulated API server, and its generated field tables."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import k8s_protobuf
from simulated_k8s_cluster.k8s_protobuf import (
    MAGIC,
    ProtobufError,
    UnsupportedKind,
    decode,
    encode,
    is_protobuf,
    wants_protobuf,
)
from simulated_k8s_cluster.k8s_protobuf_tables import MESSAGES
from simulated_k8s_cluster.resources import ApiError

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "gen-protobuf-tables"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    """One field: a varint for ints, length-delimited for bytes."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return MAGIC + _field(1, type_meta) + _field(2, raw)


JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {
        "name": "etl",
        "namespace": "batch",
        "labels": {"app": "etl", "team": ""},
        "annotations": {"note": "a,b=c"},
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": False}
        ],
        "managedFields": [
            {
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "batch/v1",
                "time": "2024-05-01T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:backoffLimit": {}}},
            }
        ],
    },
    "spec": {
        "backoffLimit": 0,
        "suspend": False,
        "activeDeadlineSeconds": 9_000_000_000,
        "selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": ["a", "b"]}]},
        "template": {
            "metadata": {"labels": {"app": "etl"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 0,
                "securityContext": {"runAsUser": 0, "fsGroup": -1},
                "volumes": [
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
                ],
                "containers": [
                    {
                        "name": "main",
                        "image": "etl:1.0",
                        "command": ["sh", "-c", "echo ünïcode"],
                        "env": [{"name": "EMPTY", "value": ""}, {"name": "X", "value": "1"}],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "1.5Gi"},
                            "requests": {"nvidia.com/gpu": "1"},
                        },
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 10,
                        },
                        "readinessProbe": {"tcpSocket": {"port": 8080}},
                    }
                ],
            },
        },
    },
    "status": {},
}


def test_a_job_survives_the_round_trip() -> None:
    data = encode(JOB)
    assert data.startswith(MAGIC)
    expected = copy.deepcopy(JOB)
    # an empty string is Go's zero value: the JSON of the decoded object leaves it out
    del expected["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    assert decode(data) == expected


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s"},
                "data": {"key": "AAEC/w==", "empty": ""},
                "type": "Opaque",
            },
            "binary data stays base64, an empty value stays",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"a": "1", "": "empty key"},
                "binaryData": {"b": "3q2+7w=="},
                "immutable": False,
            },
            "a pointer false is kept",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "e.1"},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Started",
                "eventTime": "2024-05-01T10:00:00.123456Z",
                "firstTimestamp": "2024-05-01T10:00:00Z",
                "count": 3,
                "series": {"count": 2, "lastObservedTime": "2024-05-01T10:00:01.000001Z"},
            },
            "MicroTime keeps microseconds",
        ),
        (
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "metadata": {},
                "spec": {
                    "resourceAttributes": {"verb": "create", "group": "batch", "resource": "jobs"},
                    "user": "alice",
                    "groups": ["devs"],
                    "extra": {"scopes": ["a", "b"], "none": []},
                },
                "status": {"allowed": False, "reason": "no rule"},
            },
            "extra values are bare lists",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Failure",
                "message": 'jobs.batch "x" already exists',
                "reason": "AlreadyExists",
                "details": {"name": "x", "group": "batch", "kind": "jobs"},
                "code": 409,
            },
            "meta/v1 kinds under v1",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n"},
                "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
                "status": {
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                        }
                    ],
                },
            },
            "quantities in maps",
        ),
    ],
)
def test_kinds_survive_the_round_trip(obj: dict[str, Any], message: str) -> None:
    assert decode(encode(obj)) == obj, message


def test_lists_survive_the_round_trip() -> None:
    pod = {"metadata": {"name": "p", "resourceVersion": "7"}, "spec": {"containers": []}}
    listed = {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "9", "continue": "abc"},
        "items": [pod, copy.deepcopy(pod)],
    }
    decoded = decode(encode(listed))
    assert decoded["items"] == [{"metadata": {"name": "p", "resourceVersion": "7"}, "spec": {}}] * 2
    assert decoded["metadata"] == {"resourceVersion": "9", "continue": "abc"}


def test_int_or_string_keeps_its_side() -> None:
    for port in (0, 8080, "http", ""):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "c", "image": "i", "livenessProbe": {"httpGet": {"port": port}}}
                ]
            },
        }
        decoded = decode(encode(pod))
        assert decoded["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] == port


def test_zero_values_go_leaves_out_are_dropped_pointers_kept() -> None:
    """What Go's encoder always writes (a non-pointer field) but its JSON leaves out when zero
    (omitempty) is not in the object; a pointer field written as zero is."""
    job_spec = _field(7, 0) + _field(10, 0)  # backoffLimit: 0, suspend: false (pointers)
    meta = _field(1, b"j") + _field(2, b"") + _field(4, b"") + _field(7, 0)  # generation 0
    meta += _field(8, b"")  # a zero creationTimestamp
    raw = _field(1, meta) + _field(2, job_spec) + _field(3, b"")
    assert decode(_envelope("batch/v1", "Job", raw)) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"backoffLimit": 0, "suspend": False},
        "status": {},
    }


def test_the_wire_details_go_writes() -> None:
    # a negative int32 is ten bytes of two's complement; unknown fields are skipped; map entries
    # may leave out a zero key or value; repeated numbers may come packed
    security = _field(5, -1)  # fsGroup (int64)
    security += _field(6, (1 << 64) - 5)  # runAsGroup as ten bytes: -5
    spec = _field(14, security) + _field(99, b"from a newer release") + _field(98, 7)
    spec += _field(7, _field(2, b"only-a-value"))  # nodeSelector entry without its key
    raw = _field(2, spec)
    pod = decode(_envelope("v1", "Pod", raw))
    assert pod["spec"]["securityContext"] == {"fsGroup": -1, "runAsGroup": -5}
    assert pod["spec"]["nodeSelector"] == {"": "only-a-value"}
    ssar_status = _field(1, 1) + _field(2, b"because")
    review = decode(
        _envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", _field(3, ssar_status))
    )
    assert review["status"] == {"allowed": True, "reason": "because"}


def test_packed_repeated_numbers_are_read() -> None:
    # the SELinux/Windows fields have none; supplementalGroups is a repeated int64
    packed = b"".join(_varint(v) for v in (1000, 2000, -1))
    security = _field(4, packed)
    pod = decode(_envelope("v1", "Pod", _field(2, _field(14, security))))
    assert pod["spec"]["securityContext"]["supplementalGroups"] == [1000, 2000, -1]
    unpacked = _field(4, 1000) + _field(4, 2000)
    pod = decode(_envelope("v1", "Pod", _field(2, _field(14, unpacked))))
    assert pod["spec"]["securityContext"]["supplementalGroups"] == [1000, 2000]


def test_times_and_durations() -> None:
    assert k8s_protobuf._format_time(0, 0, micro=False) is None
    assert k8s_protobuf._format_time(1714557600, 999_999_999, micro=False) == "2024-05-01T10:00:00Z"
    assert k8s_protobuf._format_time(-1, 0, micro=True) == "1969-12-31T23:59:59.000000Z"
    for text, expected in [
        ("2024-05-01T10:00:00.1Z", (1714557600, 100_000)),
        ("2024-05-01T10:00:00.123456789Z", (1714557600, 123_456)),
        ("2024-05-01T12:00:00+02:00", (1714557600, 0)),
    ]:
        moment = k8s_protobuf._parse_time(text)
        assert (int(moment.timestamp()), moment.microsecond) == expected
    with pytest.raises(ProtobufError, match="invalid time"):
        k8s_protobuf._parse_time("yesterday")
    for nanos, text in [
        (0, "0s"),
        (1_500_000, "1.5ms"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9 + 500_000_000, "1h0m0.5s"),
        (-2 * 10**9, "-2s"),
    ]:
        assert k8s_protobuf._format_duration(nanos) == text
        assert k8s_protobuf._parse_duration(text) == nanos


def test_media_types() -> None:
    assert is_protobuf("application/vnd.kubernetes.protobuf")
    assert is_protobuf("application/vnd.kubernetes.protobuf; charset=binary")
    assert not is_protobuf("application/json")
    pb = "application/vnd.kubernetes.protobuf"
    assert wants_protobuf(pb)
    assert wants_protobuf(f"{pb},application/json")  # what kubectl sends: the first choice
    assert wants_protobuf(f"{pb}, */*")
    assert wants_protobuf(f"application/json;q=0.5, {pb}")
    assert not wants_protobuf(f"application/json, {pb}")
    assert not wants_protobuf(f"*/*, {pb}")
    assert not wants_protobuf(f"{pb};q=0, application/json")
    assert not wants_protobuf(f"{pb};as=Table;v=v1;g=meta.k8s.io, application/json")
    assert not wants_protobuf("application/json")
    assert not wants_protobuf("")


def test_bodies_that_are_not_protobuf_of_a_known_kind() -> None:
    with pytest.raises(ProtobufError, match="magic"):
        decode(b'{"kind": "Job"}')
    with pytest.raises(ProtobufError, match="past the end"):
        decode(MAGIC + _field(2, b"abc")[:-1])
    workload = _envelope("kueue.x-k8s.io/v1beta1", "Workload", b"")
    with pytest.raises(UnsupportedKind, match="Workload"):
        decode(workload)
    # the routes of custom resources take no protobuf (415); a kind without a table sent to a
    # built-in resource is a bad request, as on a real API server
    with pytest.raises(ApiError) as error:
        k8s_protobuf.read_body(workload, "/apis/kueue.x-k8s.io/v1beta1/namespaces/a/workloads")
    assert error.value.code == 415
    assert error.value.status()["reason"] == "UnsupportedMediaType"
    assert error.value.message.startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json"
    )
    with pytest.raises(ApiError) as error:
        k8s_protobuf.read_body(workload, "/api/v1/namespaces/a/configmaps")
    assert (error.value.code, error.value.reason) == (400, "BadRequest")
    assert 'no kind "Workload" is registered for version "kueue.x-k8s.io/v1beta1"' in str(
        error.value.message
    )
    with pytest.raises(ApiError) as error:
        k8s_protobuf.read_body(b"k8s\x00\xff", "/apis/batch/v1/namespaces/a/jobs")
    assert error.value.code == 400
    job = k8s_protobuf.read_body(encode(JOB), "/apis/batch/v1/namespaces/a/jobs")
    assert job["metadata"]["name"] == "etl"


def test_the_served_builtin_kinds_have_tables() -> None:
    from simulated_k8s_cluster.resources import BUILTIN_RESOURCES

    for resource in BUILTIN_RESOURCES:
        assert k8s_protobuf.message_name(resource.api_version, resource.kind) in MESSAGES
        if not resource.verbs:  # listable
            assert k8s_protobuf.message_name(resource.api_version, f"{resource.kind}List")


def test_the_tables_are_what_the_generator_writes() -> None:
    if shutil.which("go") is None:
        pytest.skip("the tables are generated from Go modules and Go is not installed")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
