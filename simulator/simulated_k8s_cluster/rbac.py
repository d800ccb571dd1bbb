"""Authorization in the simulated cluster: the ``rbac`` section's deny rules, the ``403 Forbidden``
a denied request gets, and ``SelfSubjectAccessReview`` answers that agree with both.

The model is "everything is allowed unless a deny rule matches" (a token bound to
``cluster-admin`` with some rights taken away). Shapes and wording follow the API server:
``k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`` (``forbiddenMessage``),
``apimachinery/pkg/api/errors.NewForbidden`` and
``pkg/registry/authorization/selfsubjectaccessreview/rest.go``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import DenyRule, RbacConfig
from .resources import ApiError

Obj = dict[str, Any]

API_VERSION = "authorization.k8s.io/v1"
_ATTRIBUTE_KEYS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")


@dataclass(frozen=True)
class Attributes:
    """What a request (or a review's ``resourceAttributes``) asks to do."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    """``""``: cluster-scoped, or across all namespaces."""
    name: str = ""


def _quote(value: str) -> str:
    """Go's ``%q`` for the plain strings found here."""
    return json.dumps(value)


def _any(patterns: tuple[str, ...], value: str) -> bool:
    return value == "*" or "*" in patterns or value in patterns


def _resource_matches(patterns: tuple[str, ...], attrs: Attributes) -> bool:
    if attrs.resource == "*":
        return True
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for pattern in patterns:
        if pattern in ("*", combined):
            return True
        if attrs.subresource and pattern == f"*/{attrs.subresource}":
            return True
    return False


def rule_matches(rule: DenyRule, attrs: Attributes) -> bool:
    """Whether ``rule`` takes away what ``attrs`` asks for (``*`` in either matches anything)."""
    if not _any(rule.verbs, attrs.verb) or not _any(rule.groups, attrs.group):
        return False
    if not _resource_matches(rule.resources, attrs):
        return False
    if (rule.scope == "cluster" and attrs.namespace) or (
        rule.scope == "namespace" and not attrs.namespace
    ):
        return False
    if rule.namespaces and attrs.namespace:
        return _any(rule.namespaces, attrs.namespace)
    return True


class Authorizer:
    """Decides requests and reviews for the one identity the cluster's tokens stand for."""

    def __init__(self, config: RbacConfig, default_user: str) -> None:
        self.config = config
        self.user = config.user or default_user

    def denial(self, attrs: Attributes) -> DenyRule | None:
        """The first deny rule matching ``attrs``, if any."""
        for rule in self.config.deny:
            if rule_matches(rule, attrs):
                return rule
        return None

    def check(self, attrs: Attributes) -> None:
        """Raise the API server's ``403 Forbidden`` when ``attrs`` is denied."""
        if self.denial(attrs) is not None:
            raise forbidden(self.user, attrs)

    def review(self, body: Any) -> Obj:
        """Answer a ``SelfSubjectAccessReview`` (the object the API server returns)."""
        if not isinstance(body, dict):
            raise ApiError(400, "the object provided is unrecognized")
        spec = body.get("spec")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise ApiError(400, _decode_error("spec", "SelfSubjectAccessReviewSpec", spec))
        resource_attrs = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        causes: list[tuple[str, str]] = []
        if resource_attrs is not None and non_resource is not None:
            causes.append(
                (
                    "spec.nonResourceAttributes",
                    f"Invalid value: {_go_value(non_resource)}: cannot be specified in "
                    "combination with resourceAttributes",
                )
            )
        if resource_attrs is None and non_resource is None:
            causes.append(
                (
                    "spec",
                    "Invalid value: null: exactly one of nonResourceAttributes or "
                    "resourceAttributes must be specified",
                )
            )
        metadata = {
            k: v
            for k, v in (body.get("metadata") or {}).items()
            if v not in (None, "", [], {}) and k != "managedFields"
        }
        if metadata:
            causes.append(("metadata", f"Invalid value: {_go_value(metadata)}: must be empty"))
        if causes:
            raise _invalid(causes)
        echoed: Obj = {}
        if resource_attrs is not None:
            attributes = _attributes(resource_attrs, "spec.resourceAttributes")
            echoed["resourceAttributes"] = {
                k: resource_attrs[k] for k in _ATTRIBUTE_KEYS if resource_attrs.get(k)
            }
            allowed = self.denial(attributes) is None
        else:
            if not isinstance(non_resource, dict):
                raise ApiError(
                    400,
                    _decode_error(
                        "spec.nonResourceAttributes", "NonResourceAttributes", non_resource
                    ),
                )
            echoed["nonResourceAttributes"] = {
                k: non_resource[k] for k in ("path", "verb") if non_resource.get(k)
            }
            allowed = True  # deny rules name resources; non-resource paths stay allowed
        status: Obj = {"allowed": allowed}
        if allowed:
            # RBAC's wording; no reason when no rule allows (RBAC has "no opinion" then).
            status["reason"] = (
                'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole '
                f'"cluster-admin" to User {_quote(self.user)}'
            )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": API_VERSION,
            "metadata": {"creationTimestamp": None},
            "spec": echoed,
            "status": status,
        }


def forbidden(user: str, attrs: Attributes) -> ApiError:
    """The ``403`` the API server sends when the authorizer does not allow ``attrs``."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        scope = f"in the namespace {_quote(attrs.namespace)}"
    else:
        scope = "at the cluster scope"
    why = (
        f"User {_quote(user)} cannot {attrs.verb} resource {_quote(resource)} "
        f"in API group {_quote(attrs.group)} {scope}"
    )
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    if attrs.name:
        message = f"{qualified} {_quote(attrs.name)} is forbidden: {why}"
    else:
        message = f"{qualified} is forbidden: {why}"
    details = {"name": attrs.name, "group": attrs.group, "kind": attrs.resource}
    return ApiError(
        403, message, reason="Forbidden", details={k: v for k, v in details.items() if v}
    )


def _attributes(value: Any, where: str) -> Attributes:
    if not isinstance(value, dict):
        raise ApiError(400, _decode_error(where, "ResourceAttributes", value))
    for key in _ATTRIBUTE_KEYS:
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            raise ApiError(400, _decode_error(f"{where}.{key}", "string", item))
    return Attributes(
        verb=value.get("verb") or "",
        group=value.get("group") or "",
        resource=value.get("resource") or "",
        subresource=value.get("subresource") or "",
        namespace=value.get("namespace") or "",
        name=value.get("name") or "",
    )


def _go_value(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _decode_error(field: str, go_type: str, value: Any) -> str:
    kinds = {str: "string", bool: "bool", int: "number", float: "number", list: "array"}
    got = kinds.get(type(value), "object")
    return f"json: cannot unmarshal {got} into Go struct field {field} of type {go_type}"


def _invalid(causes: list[tuple[str, str]]) -> ApiError:
    summary = ", ".join(f"{field}: {message}" for field, message in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    # The review's kind is cleared when it is decoded, hence the bare ".authorization.k8s.io".
    return ApiError(
        422,
        f'.authorization.k8s.io "" is invalid: {summary}',
        reason="Invalid",
        details={
            "group": "authorization.k8s.io",
            "causes": [
                {"reason": "FieldValueInvalid", "message": message, "field": field}
                for field, message in causes
            ],
        },
    )
