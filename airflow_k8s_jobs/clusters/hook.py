"""``KubeClusterHook``: an Airflow connection → configured sync and async Kubernetes clients.

The worker uses :meth:`KubeClusterHook.api_client` (``kubernetes``), the triggerer
:meth:`KubeClusterHook.async_api_client` (``kubernetes_asyncio``); both are built from the same
:class:`ClusterSettings`, and for GKE share one process-wide token source, so neither asks
Google for a token on every call. Triggers are given only the connection id and resolve the
credentials themselves (trigger arguments are stored in Airflow's database).

Request timeouts: ``settings.request_timeout`` applies to every call that does not pass
``_request_timeout`` and reads the whole answer; streaming calls (``_preload_content=False``:
watches, followed logs) get none by default and must pass their own.

A 401 means the credentials went stale (a rotated kubeconfig token, a revoked GKE token):
:meth:`refresh_credentials` / :meth:`arefresh_credentials` reload them into the client's
configuration in place; :class:`~airflow_k8s_jobs.retrying.RetryPolicy` calls them on a 401 and
repeats the request once.

:meth:`KubeClusterHook.test_connection` is what Airflow's "Test connection" (UI, REST API and
``airflow connections test``) calls: it reaches the API server and asks it, with
``SelfSubjectAccessReview`` requests, what this identity may do.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import kubernetes_asyncio
from airflow.providers.common.compat.sdk import BaseHook
from asgiref.sync import sync_to_async

from airflow_k8s_jobs.errors import (
    InvalidInputError,
    PermanentError,
)
from airflow_k8s_jobs.kube import WatchScope

from . import gke
from .fields import CONNECTION_FIELDS, DEFAULTS, HIDDEN_FIELDS
from .settings import CONN_TYPE, ClusterSettings

T = TypeVar("T")

_TOKEN_KEYS = ("BearerToken", "authorization")  # kubernetes >= 36 / older clients


class _SyncApiClient(kubernetes.client.ApiClient):
    """``kubernetes.client.ApiClient`` with a default timeout for non-streaming calls."""

    default_request_timeout: float | None = None

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        _default_timeout(kwargs, self.default_request_timeout)
        return super().call_api(*args, **kwargs)


class _AsyncApiClient(kubernetes_asyncio.client.ApiClient):
    """``kubernetes_asyncio.client.ApiClient`` with a default timeout for non-streaming calls."""

    default_request_timeout: float | None = None

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        _default_timeout(kwargs, self.default_request_timeout)
        return super().call_api(*args, **kwargs)


def _default_timeout(kwargs: dict[str, Any], timeout: float | None) -> None:
    if timeout and kwargs.get("_request_timeout") is None and kwargs.get("_preload_content", True):
        kwargs["_request_timeout"] = timeout


def _set_token(configuration: Any, token: str) -> None:
    for key in _TOKEN_KEYS:
        configuration.api_key[key] = token
        configuration.api_key_prefix[key] = "Bearer"


def _current_token(configuration: Any) -> str | None:
    """The bearer token ``configuration`` sends (None: none)."""
    return next(
        (configuration.api_key.get(k) for k in _TOKEN_KEYS if k in configuration.api_key), None
    )


def _ca_file(pem: bytes) -> str:
    """A file holding a cluster CA (public data), one per distinct certificate."""
    digest = hashlib.sha256(pem).hexdigest()[:24]
    path = Path(tempfile.gettempdir()) / f"airflow-k8s-jobs-ca-{digest}.pem"
    if not path.exists() or path.read_bytes() != pem:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        os.replace(tmp, path)
    return str(path)


def configure_gke_sync(
    configuration: Any, endpoint: gke.GkeEndpoint, tokens: gke.GoogleTokenSource
) -> None:
    """Point a ``kubernetes.client.Configuration`` at a GKE endpoint with a refreshing token."""
    _configure_endpoint(configuration, endpoint)

    def refresh(config: Any) -> None:
        _set_token(config, tokens.token())

    _set_token(configuration, "")  # the token itself is set by the hook before each request
    configuration.refresh_api_key_hook = refresh


def configure_gke_async(
    configuration: Any, endpoint: gke.GkeEndpoint, tokens: gke.GoogleTokenSource
) -> None:
    """Same for a ``kubernetes_asyncio`` configuration.

    From kubernetes_asyncio 33.3 the key hook may be a coroutine, so a token refresh does not
    block the event loop; older releases call it synchronously, and get a synchronous hook (it
    blocks only when the token is really refreshed, about once an hour).
    """
    _configure_endpoint(configuration, endpoint)

    async def refresh(config: Any) -> None:
        _set_token(config, await tokens.atoken())

    def refresh_blocking(config: Any) -> None:
        _set_token(config, tokens.token())

    _set_token(configuration, "")
    hook_may_be_async = inspect.iscoroutinefunction(type(configuration).get_api_key_with_prefix)
    configuration.refresh_api_key_hook = refresh if hook_may_be_async else refresh_blocking


def _configure_endpoint(configuration: Any, endpoint: gke.GkeEndpoint) -> None:
    configuration.host = endpoint.host
    configuration.verify_ssl = True
    configuration.ssl_ca_cert = _ca_file(endpoint.ca_pem) if endpoint.ca_pem else None


def _kubeconfig_file(settings: ClusterSettings) -> str:
    # The libraries read $KUBECONFIG once, at import; read it when the client is built.
    return settings.kubeconfig_path or os.environ.get("KUBECONFIG") or "~/.kube/config"


def _config_error(settings: ClusterSettings, exc: Exception) -> InvalidInputError:
    # ConfigException messages name keys and files, never their secret values.
    return InvalidInputError(
        f"Cannot load {settings.display_name} for connection {settings.conn_id!r}: "
        f"{str(exc).rstrip('. ')}. "
        "Check the connection's kubeconfig / context settings."
    )


def load_sync_configuration(settings: ClusterSettings, configuration: Any) -> None:
    """Load credentials and endpoint for ``settings`` into a ``kubernetes`` configuration."""
    try:
        if settings.kind == "kubeconfig":
            if settings.kubeconfig is not None:
                kubernetes.config.load_kube_config_from_dict(
                    settings.kubeconfig,
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            else:
                kubernetes.config.load_kube_config(
                    config_file=_kubeconfig_file(settings),
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        elif settings.kind == "in_cluster":
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            tokens = gke.token_source_for(settings.impersonation_chain, settings.gcp_conn_id)
            endpoint = gke.cluster_endpoint(settings, tokens.credentials)
            configure_gke_sync(configuration, endpoint, tokens)
    except kubernetes.config.ConfigException as exc:
        raise _config_error(settings, exc) from None
    if not settings.verify_ssl:
        configuration.verify_ssl = False
        warn_unverified(settings)


_WARNED_UNVERIFIED: set[str] = set()


def warn_unverified(settings: ClusterSettings) -> None:
    """Log once per connection (and process) that its API server's certificate is not checked."""
    if settings.conn_id in _WARNED_UNVERIFIED:
        return
    _WARNED_UNVERIFIED.add(settings.conn_id)
    logging.getLogger(__name__).warning(
        "Connection %r turns TLS verification off (verify_ssl=false / disable_verify_ssl): the "
        "API server of %s is not authenticated, and its token could be sent to anyone in the "
        "network path. Give the connection the cluster's CA certificate instead.",
        settings.conn_id,
        settings.display_name,
    )


async def load_async_configuration(settings: ClusterSettings, configuration: Any) -> None:
    """Load credentials and endpoint for ``settings`` into a ``kubernetes_asyncio`` one."""
    try:
        if settings.kind == "kubeconfig":
            if settings.kubeconfig is not None:
                await kubernetes_asyncio.config.load_kube_config_from_dict(
                    settings.kubeconfig,
                    context=settings.context,
                    client_configuration=configuration,
                )
            else:
                await kubernetes_asyncio.config.load_kube_config(
                    config_file=_kubeconfig_file(settings),
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        elif settings.kind == "in_cluster":
            kubernetes_asyncio.config.load_incluster_config(client_configuration=configuration)
        else:
            # ADC discovery and get_cluster block; the results are cached per process.
            tokens = await asyncio.to_thread(
                gke.token_source_for, settings.impersonation_chain, settings.gcp_conn_id
            )
            endpoint = await asyncio.to_thread(gke.cluster_endpoint, settings, tokens.credentials)
            configure_gke_async(configuration, endpoint, tokens)
    except kubernetes_asyncio.config.ConfigException as exc:
        raise _config_error(settings, exc) from None
    if not settings.verify_ssl:
        configuration.verify_ssl = False
        warn_unverified(settings)


class KubeClusterHook(BaseHook):
    """Reach the Kubernetes cluster an Airflow connection describes.

    :param cluster_conn_id: a ``k8sjobs`` connection (GKE, kubeconfig or in-cluster)
        or a cncf ``kubernetes`` connection.
    """

    conn_name_attr = "cluster_conn_id"
    default_conn_name = "k8sjobs_default"
    conn_type = CONN_TYPE
    hook_name = "Kubernetes cluster (airflow-k8s-jobs)"

    def __init__(self, cluster_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cluster_conn_id = cluster_conn_id
        self._api_client: _SyncApiClient | None = None

    def __repr__(self) -> str:
        return f"<KubeClusterHook cluster_conn_id={self.cluster_conn_id!r}>"

    # -- connection form (Airflow 2; Airflow 3.2+ reads it from the provider info) --------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form."""
        from flask_appbuilder.fieldwidgets import (  # type: ignore[import-not-found,unused-ignore]
            BS3PasswordFieldWidget,
            BS3TextFieldWidget,
        )
        from flask_babel import lazy_gettext  # type: ignore[import-not-found,unused-ignore]
        from wtforms import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            BooleanField,
            PasswordField,
            StringField,
        )

        widgets: dict[str, Any] = {}
        for name, (label, kind, description) in CONNECTION_FIELDS.items():
            text = lazy_gettext(label)
            if kind == "boolean":
                widgets[name] = BooleanField(
                    text, description=description, default=DEFAULTS.get(name, False)
                )
            elif kind == "password":
                widgets[name] = PasswordField(
                    text, description=description, widget=BS3PasswordFieldWidget()
                )
            else:
                widgets[name] = StringField(
                    text, description=description, widget=BS3TextFieldWidget()
                )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the standard fields: everything lives in the extras."""
        return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": {}}

    # -- settings ---------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ClusterSettings:
        """The parsed connection (reads it through Airflow's secrets backends)."""
        try:
            conn = self.get_connection(self.cluster_conn_id)
        except Exception as exc:
            raise self._missing(exc) from exc
        return ClusterSettings.from_connection(conn)

    async def asettings(self) -> ClusterSettings:
        """The parsed connection, fetched without blocking the event loop (triggerer)."""
        if "settings" in self.__dict__:
            cached: ClusterSettings = self.__dict__["settings"]
            return cached
        try:
            conn, extras = await self._aconnection_and_extras()
        except Exception as exc:
            raise await sync_to_async(self._missing)(exc) from exc
        settings = ClusterSettings.from_parts(conn.conn_id, conn.conn_type, extras)
        self.__dict__["settings"] = settings
        return settings

    async def _aconnection_and_extras(self) -> tuple[Any, dict[str, Any]]:
        """Read the connection and its extras without blocking the event loop.

        common-compat >= 1.21 knows the safest way for the running Airflow. Older releases
        (Composer pins 1.13 and 1.18) either lack it or call ``BaseHook.aget_connection``, which
        before Airflow 3.3.2 can fail with ``DeadlockImminentError``; there the synchronous
        reads run in a worker thread, where blocking on the task supervisor is safe.
        """
        try:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )
        except ImportError:
            conn = await sync_to_async(self.get_connection)(self.cluster_conn_id)
            extras = await sync_to_async(lambda: conn.extra_dejson)()
            return conn, dict(extras)
        conn = await get_async_connection(self.cluster_conn_id, hook=self)
        return conn, dict(await get_async_extra_dejson(conn))

    def _missing(self, exc: Exception) -> Exception:
        """The error to raise when Airflow could not give us the connection.

        Airflow's secrets lookup logs and skips a backend that raises, then reports the
        connection as missing; a backend that failed is named here instead, with its error.
        """
        if not _is_not_found(exc):
            return exc
        failures = _unreadable_in_backends(self.cluster_conn_id)
        if failures:
            causes = "; ".join(f"{backend}: {error}" for backend, error in failures)
            hint = (
                " That is the known failure of Airflow 2.11 with cryptography >= 51 whenever a "
                "fernet key is set: install cryptography<51."
                if "is_encrypted" in causes
                else " Fix that secrets backend (or the connection's value in it)."
            )
            return PermanentError(
                f"Connection {self.cluster_conn_id!r} could not be read: {causes}.{hint}"
            )
        return InvalidInputError(
            f"Connection {self.cluster_conn_id!r} is not defined: create it (Admin → "
            f"Connections, type {self.hook_name!r}) or set "
            f"AIRFLOW_CONN_{self.cluster_conn_id.upper()}."
        )

    # -- clients ----------------------------------------------------------------------------------

    def api_client(self) -> kubernetes.client.ApiClient:
        """A ``kubernetes`` client for this cluster, created once per hook."""
        if self._api_client is None:
            settings = self.settings
            configuration = type.__call__(kubernetes.client.Configuration)
            load_sync_configuration(settings, configuration)
            client = _SyncApiClient(configuration=configuration)
            client.default_request_timeout = settings.request_timeout
            self._api_client = client
        return self._api_client

    async def async_api_client(self) -> kubernetes_asyncio.client.ApiClient:
        """A new ``kubernetes_asyncio`` client for this cluster; the caller closes it."""
        settings = await self.asettings()
        configuration = type.__call__(kubernetes_asyncio.client.Configuration)
        await load_async_configuration(settings, configuration)
        client = _AsyncApiClient(configuration=configuration)
        client.default_request_timeout = settings.request_timeout
        return client

    async def awatch_scope(self) -> WatchScope:
        """How waiting tasks watch this cluster (the connection's ``watch_scope``)."""
        return (await self.asettings()).watch_scope

    def close(self) -> None:
        """Close the cached sync client."""
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None

    # -- stale credentials (401) ------------------------------------------------------------------

    def refresh_credentials(self, client: kubernetes.client.ApiClient) -> None:
        """Reload credentials into ``client.configuration`` in place (after a 401).

        A kubeconfig is read again (its token may have been rotated), in-cluster the token
        file, and a GKE token is fetched anew.
        """
        settings = self.settings
        if settings.kind == "gke":
            tokens = gke.token_source_for(settings.impersonation_chain, settings.gcp_conn_id)
            tokens.invalidate(refused=_current_token(client.configuration))
            _set_token(client.configuration, tokens.token())
        else:
            load_sync_configuration(settings, client.configuration)
        self.log.info("Reloaded the credentials of %s.", settings.display_name)

    async def arefresh_credentials(self, client: kubernetes_asyncio.client.ApiClient) -> None:
        """The async counterpart of :meth:`refresh_credentials`."""
        settings = await self.asettings()
        if settings.kind == "gke":
            tokens = await asyncio.to_thread(
                gke.token_source_for, settings.impersonation_chain, settings.gcp_conn_id
            )
            tokens.invalidate(refused=_current_token(client.configuration))
            _set_token(client.configuration, await tokens.atoken())
        else:
            await load_async_configuration(settings, client.configuration)
        self.log.info("Reloaded the credentials of %s.", settings.display_name)

    # -- "Test connection" ------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check that the cluster answers and that this identity may run Jobs there.

        Called by Airflow's "Test connection" (the UI, the REST API and
        ``airflow connections test``). It reads the server version (``GET /version``), then asks
        with ``SelfSubjectAccessReview`` requests, in the connection's default namespace and in
        each of its ``allowed_namespaces``, whether this identity may:

        * create, get, list, watch and delete ``batch`` ``jobs``; get, list and watch ``pods``;
          get ``pods/log``; list and watch ``events`` (what :class:`KubeJobOperator` needs);
        * list and watch ``kueue.x-k8s.io`` ``workloads`` when the cluster serves Kueue's API
          (what a Job sent to a Kueue queue needs; reported, never failing the test);
        * create, get, list, watch and patch ``argoproj.io`` ``workflows``, and get and list
          ``workflowtemplates`` (what :class:`ArgoWorkflowOperator` needs), unless the cluster
          does not serve ``argoproj.io/v1alpha1`` at all, which is reported instead.

        Returns ``(True, message)`` when the API server answered and, in every namespace
        checked, all the Jobs rights are granted. Missing Argo rights are named in the message
        but fail the test only where the identity may *create* Workflows yet may not get, list,
        watch or patch them: :class:`ArgoWorkflowOperator` would then submit Workflows that it
        cannot wait for or stop. Without ``create`` the operator fails at once with a 403 and
        leaves nothing behind, so a connection meant only for Jobs still tests successfully.
        Should the API server refuse ``SelfSubjectAccessReview``, listing Jobs in each namespace
        stands in for the checks, and the message says so.

        ``(False, message)`` for anything else: an unreadable connection or kubeconfig, a server
        that cannot be reached, credentials it rejects (401), or missing Jobs rights. The
        message names the cluster by :attr:`ClusterSettings.display_name`, never a credential,
        and no exception escapes.
        """
        from .access import test_connection

        return test_connection(self)


def _is_not_found(exc: Exception) -> bool:
    return (
        "not defined" in str(exc)
        or "NotFound" in type(exc).__name__
        or "CONNECTION_NOT_FOUND" in str(exc)
    )


def _secrets_backends() -> list[Any]:
    """The secrets backends this Airflow process reads connections from."""
    try:  # Airflow 3 task SDK
        from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

        return list(ensure_secrets_backend_loaded())
    except ImportError:
        pass
    try:  # Airflow 2
        from airflow.configuration import ensure_secrets_loaded

        return list(ensure_secrets_loaded())
    except ImportError:
        return []


def _unreadable_in_backends(conn_id: str) -> list[tuple[str, str]]:
    """Backends that fail (rather than answer "absent") when asked for ``conn_id``."""
    failures = []
    try:
        backends = _secrets_backends()
    except Exception:
        return []
    for backend in backends:
        try:
            backend.get_connection(conn_id=conn_id)
        except Exception as exc:
            if _is_not_found(exc):
                continue
            # The type and message only; never the connection's value.
            message = str(exc).splitlines()[0][:300] if str(exc) else ""
            failures.append((type(backend).__name__, f"{type(exc).__name__}: {message}"))
    return failures
