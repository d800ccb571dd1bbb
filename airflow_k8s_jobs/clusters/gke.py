"""GKE: the control plane's address and CA from ``google-cloud-container``, tokens from ADC.

* :func:`select_endpoint` picks the public, private or DNS endpoint of a ``container_v1.Cluster``
  (pure, unit-tested on constructed protos).
* :func:`cluster_endpoint` fetches the cluster once per process and caches the result
  (the endpoint and CA of a cluster change only when it is rebuilt or its CA rotated).
* :class:`GoogleTokenSource` hands out an OAuth2 access token and refreshes it only when it is
  missing or expires within ``margin`` seconds — never once per request. One source per
  credential identity per process, shared by the sync and the async clients, so a trigger that
  waits for hours keeps a valid token without asking Google on every Kubernetes call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s_jobs.errors import InvalidInputError, PermanentError, TransientError

from .settings import ClusterSettings

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_REFRESH_MARGIN = 300.0
"""Refresh a token this many seconds before it expires."""


def _utcnow() -> dt.datetime:
    # google-auth keeps ``expiry`` as a naive UTC datetime.
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class GoogleTokenSource:
    """An access token from google-auth credentials, refreshed shortly before it expires.

    ``token()`` (sync) and ``atoken()`` (async; the refresh runs in a thread) return the
    cached token unless it is missing or expires within ``margin`` seconds. ``invalidate()``
    forces the next call to refresh (after a 401). ``clock`` returns naive UTC datetimes.
    """

    def __init__(
        self,
        credentials: Any,
        *,
        margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], dt.datetime] = _utcnow,
        request_factory: Callable[[], Any] | None = None,
    ) -> None:
        self._credentials = credentials
        self._margin = dt.timedelta(seconds=margin)
        self._clock = clock
        self._request_factory = request_factory
        self._lock = threading.Lock()
        self._invalid = False
        self.refreshes = 0
        """How many times the credentials were refreshed."""

    def __repr__(self) -> str:
        expiry = getattr(self._credentials, "expiry", None)
        return f"<GoogleTokenSource expiry={expiry} refreshes={self.refreshes}>"

    @property
    def credentials(self) -> Any:
        """The google-auth credentials (for other Google APIs, e.g. ``get_cluster``)."""
        return self._credentials

    def needs_refresh(self) -> bool:
        creds = self._credentials
        if self._invalid or not creds.token:
            return True
        expiry = creds.expiry
        return expiry is not None and self._clock() >= expiry - self._margin

    def invalidate(self, refused: str | None = None) -> None:
        """Make the next ``token()`` / ``atoken()`` refresh (the server refused the token).

        With ``refused`` (the token the server refused), only when it is still the current
        one: many clients sharing this source then cost one refresh, not one each.
        """
        if refused is None or refused == self._credentials.token:
            self._invalid = True

    def token(self) -> str:
        if self.needs_refresh():
            with self._lock:
                if self.needs_refresh():  # another thread may have refreshed meanwhile
                    self._refresh()
        return str(self._credentials.token)

    async def atoken(self) -> str:
        if self.needs_refresh():
            await asyncio.to_thread(self.token)
        return str(self._credentials.token)

    def _refresh(self) -> None:
        request = self._request_factory() if self._request_factory else _default_request()
        try:
            self._credentials.refresh(request)
        except Exception as exc:
            # google-auth's messages describe the identity, not the token.
            raise TransientError(
                f"Could not get a Google access token for the GKE cluster: {exc}. Check the "
                "Application Default Credentials (and the impersonation chain, if any)."
            ) from None
        self._invalid = False
        self.refreshes += 1


def _default_request() -> Any:
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


def google_credentials(
    impersonation_chain: tuple[str, ...] = (), gcp_conn_id: str | None = None
) -> Any:
    """The credentials of an Airflow Google Cloud connection (``gcp_conn_id``) or Application
    Default Credentials, impersonating the last account of the chain if any."""
    credentials = _connection_credentials(gcp_conn_id) if gcp_conn_id else _default_credentials()
    if impersonation_chain:
        from google.auth import impersonated_credentials

        credentials = impersonated_credentials.Credentials(
            source_credentials=credentials,
            target_principal=impersonation_chain[-1],
            delegates=list(impersonation_chain[:-1]) or None,
            target_scopes=[CLOUD_PLATFORM_SCOPE],
        )
    return credentials


def _default_credentials() -> Any:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as exc:
        raise PermanentError(
            f"No Google Application Default Credentials: {exc}. On Cloud Composer the "
            "environment's service account is used; elsewhere set GOOGLE_APPLICATION_CREDENTIALS "
            "or run `gcloud auth application-default login`, or name an Airflow Google Cloud "
            "connection with gcp_conn_id."
        ) from None
    return credentials


def _connection_credentials(gcp_conn_id: str) -> Any:
    """What the Google provider's hook makes of an Airflow Google Cloud connection (key file,
    key JSON, credential configuration, its own impersonation chain and scopes)."""
    try:
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
    except ImportError:
        raise InvalidInputError(
            f"gcp_conn_id={gcp_conn_id!r} needs the Google provider "
            "(apache-airflow-providers-google, included in Cloud Composer images): install it, "
            "or remove gcp_conn_id to use Application Default Credentials."
        ) from None
    from airflow.exceptions import AirflowException, AirflowNotFoundException

    try:
        return GoogleBaseHook(gcp_conn_id=gcp_conn_id).get_credentials()
    except AirflowNotFoundException:
        raise InvalidInputError(
            f"The Google Cloud connection {gcp_conn_id!r} (gcp_conn_id) is not defined: create "
            "it, or remove gcp_conn_id to use Application Default Credentials."
        ) from None
    except AirflowException as exc:
        raise InvalidInputError(
            f"The Google Cloud connection {gcp_conn_id!r} (gcp_conn_id) gives no credentials: {exc}"
        ) from None


GoogleIdentity = tuple[str | None, tuple[str, ...]]
"""(gcp_conn_id, impersonation chain): whose tokens reach a GKE cluster."""

_token_sources: dict[GoogleIdentity, GoogleTokenSource] = {}
_token_sources_lock = threading.Lock()


def token_source_for(
    impersonation_chain: tuple[str, ...] = (), gcp_conn_id: str | None = None
) -> GoogleTokenSource:
    """The process-wide token source for an identity: ADC or an Airflow Google Cloud
    connection, impersonating a chain or not."""
    identity: GoogleIdentity = (gcp_conn_id, impersonation_chain)
    with _token_sources_lock:
        source = _token_sources.get(identity)
        if source is None:
            source = GoogleTokenSource(google_credentials(impersonation_chain, gcp_conn_id))
            _token_sources[identity] = source
        return source


@dataclass(frozen=True)
class GkeEndpoint:
    """Where a GKE control plane answers and which CA signs its certificate.

    ``ca_pem`` is ``None`` for the DNS endpoint, whose certificate is publicly trusted.
    """

    host: str
    ca_pem: bytes | None


def select_endpoint(cluster: Any, settings: ClusterSettings) -> GkeEndpoint:
    """Pick the endpoint (public, private or DNS) and CA from a ``container_v1.Cluster``."""
    name = settings.display_name
    if settings.use_dns_endpoint:
        dns = cluster.control_plane_endpoints_config.dns_endpoint_config
        if not dns.endpoint:
            raise InvalidInputError(
                f"{name} has no DNS-based control plane endpoint (connection "
                f"{settings.conn_id!r} sets use_dns_endpoint): enable it on the cluster "
                "(gcloud container clusters update --enable-dns-access) or unset the option."
            )
        return GkeEndpoint(host=f"https://{dns.endpoint}", ca_pem=None)
    ip_config = cluster.control_plane_endpoints_config.ip_endpoints_config
    if settings.use_internal_ip:
        address = cluster.private_cluster_config.private_endpoint or ip_config.private_endpoint
        if not address:
            raise InvalidInputError(
                f"{name} has no private endpoint (connection {settings.conn_id!r} sets "
                "use_internal_ip): unset use_internal_ip or use a private cluster."
            )
    else:
        address = cluster.endpoint or ip_config.public_endpoint
        if not address:
            raise InvalidInputError(
                f"{name} has no public endpoint: set use_internal_ip (private endpoint, from "
                "inside the VPC) or use_dns_endpoint in connection "
                f"{settings.conn_id!r}."
            )
    ca_b64 = cluster.master_auth.cluster_ca_certificate
    try:
        ca_pem = base64.b64decode(ca_b64, validate=True) if ca_b64 else b""
    except (binascii.Error, ValueError):
        ca_pem = b""
    if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise PermanentError(
            f"{name}: the cluster's CA certificate (masterAuth.clusterCaCertificate) is missing "
            "or not a base64 PEM certificate."
        )
    return GkeEndpoint(host=f"https://{address}", ca_pem=ca_pem)


_endpoints: dict[tuple[str, bool, bool], GkeEndpoint] = {}
_endpoints_lock = threading.Lock()


def cluster_endpoint(settings: ClusterSettings, credentials: Any) -> GkeEndpoint:
    """The cluster's endpoint and CA, fetched once per process (``get_cluster``)."""
    key = (settings.gke_cluster_name, settings.use_internal_ip, settings.use_dns_endpoint)
    with _endpoints_lock:
        cached = _endpoints.get(key)
    if cached is not None:
        return cached
    cluster = _get_cluster(settings, credentials)
    endpoint = select_endpoint(cluster, settings)
    with _endpoints_lock:
        _endpoints[key] = endpoint
    return endpoint


def forget_endpoint(settings: ClusterSettings) -> None:
    """Drop the cached endpoint (e.g. after TLS errors when the CA was rotated)."""
    key = (settings.gke_cluster_name, settings.use_internal_ip, settings.use_dns_endpoint)
    with _endpoints_lock:
        _endpoints.pop(key, None)


def _get_cluster(settings: ClusterSettings, credentials: Any) -> Any:
    from google.api_core import exceptions as gexc
    from google.cloud import container_v1

    client = container_v1.ClusterManagerClient(credentials=credentials)
    try:
        return client.get_cluster(name=settings.gke_cluster_name, timeout=settings.request_timeout)
    except (gexc.NotFound, gexc.PermissionDenied, gexc.Unauthenticated) as exc:
        raise PermanentError(
            f"Cannot read {settings.display_name} (connection {settings.conn_id!r}): "
            f"{exc.message}. Check the project, location and cluster name, and that the "
            "service account has roles/container.clusterViewer (or container.developer)."
        ) from None
    except gexc.GoogleAPIError as exc:
        raise TransientError(
            f"Could not read {settings.display_name} from the GKE API: {exc}"
        ) from None
    finally:
        transport = getattr(client, "transport", None)
        if transport is not None and hasattr(transport, "close"):
            transport.close()
