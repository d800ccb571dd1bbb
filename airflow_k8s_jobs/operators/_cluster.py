"""The Airflow glue of an operator that submits one object: its connection's hook (cached), the
namespace it may use, the worker's API requests, and rendering its template fields and manifest
(shown as the ``rendered_manifest`` template field)."""

from __future__ import annotations

from typing import Any, ClassVar

import jinja2

from .._compat import BaseOperator, Context
from ..clusters import KubeClusterHook
from ..errors import NotFound
from ..kube import Resource, request_sync
from ..manifests.names import TaskInstanceKey
from ..retrying import API_RETRY
from ..templating import RENDERED_MANIFEST, jinja_errors_in, manifest_yaml
from ._common import bad_input_is_final, task_instance_key


class ClusterOperator(BaseOperator):
    """An operator that builds one :attr:`resource` object (:meth:`build_manifest`) for a
    connection's cluster; :class:`~airflow_k8s_jobs.operators.base.SubmitAndWaitOperator`
    submits it and waits."""

    resource: ClassVar[Resource]
    # The cached hook holds API clients: never deep-copied with the operator.
    shallow_copy_attrs: Any = ("_kube_hook",)

    def __init__(
        self,
        *,
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespace: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_conn_id = cluster_conn_id
        self.namespace = namespace
        self.deferrable = deferrable
        self._target: Any = None
        self.rendered_manifest: str | None = None

    # --- the cluster --------------------------------------------------------------------------

    def _hook(self) -> KubeClusterHook:
        """The connection's hook, made once per operator instance."""
        hook = self.__dict__.get("_kube_hook")
        if hook is None or hook.cluster_conn_id != self.cluster_conn_id:
            hook = KubeClusterHook(self.cluster_conn_id)
            self.__dict__["_kube_hook"] = hook
        return hook

    def _key(self, context: Context) -> TaskInstanceKey:
        return task_instance_key(context)

    def _target_namespace(self) -> str:
        """``namespace`` (or the connection's), checked against the connection's allow-list."""
        settings = self._hook().settings
        namespace = self.namespace or settings.default_namespace
        settings.check_namespace(namespace)
        return namespace

    def _where(self, namespace: str, name: str) -> str:
        return f"{self.resource.kind} {namespace}/{name} on {self._hook().settings.display_name}"

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """One API request of the worker, following the retry policy."""
        hook = self._hook()
        api = hook.api_client()
        kwargs.setdefault("timeout", hook.settings.request_timeout)
        return API_RETRY.call(
            lambda: request_sync(api, method, path, what=what, **kwargs),
            refresh=lambda: hook.refresh_credentials(api),
        )

    def _get(self, path: str, what: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when there is none."""
        try:
            return dict(self._request("GET", path, what=what))
        except NotFound:
            return None

    def _unless_gone(self, method: str, path: str, *, what: str, **kwargs: Any) -> bool:
        """One request (see :meth:`_request`); False when the object is gone (404)."""
        try:
            self._request(method, path, what=what, **kwargs)
        except NotFound:
            return False
        return True

    # --- rendering ----------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Airflow renders every template field through here, mapped tasks included.
        env = self._template_env(jinja_env)
        for field in [f for f in template_fields if f != RENDERED_MANIFEST]:
            with bad_input_is_final(), jinja_errors_in(f"task {self.task_id}, argument {field}"):
                super()._do_render_template_fields(parent, [field], context, env, seen_oids)
        if parent is self:
            with bad_input_is_final():
                self._render_manifest(context, env)
            self.rendered_manifest = self._preview(context)

    def _template_env(self, env: jinja2.Environment) -> jinja2.Environment:
        return env

    def _render_manifest(self, context: Context, env: jinja2.Environment) -> None:
        """Read and render a manifest argument once the template fields are rendered."""

    def _preview(self, context: Context) -> str | None:
        """The manifest this try submits, as YAML; None while it cannot be built (``execute``
        then reports why)."""
        try:
            manifest = self._preview_manifest(context)
        except Exception as exc:
            self.log.debug("The %s manifest cannot be built yet: %s", self.resource.kind, exc)
            return None
        return manifest_yaml(manifest)

    def _preview_manifest(self, context: Context) -> dict[str, Any]:
        return self.build_manifest(context)[0]

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The manifest this task instance try submits, and its namespace."""
        raise NotImplementedError
