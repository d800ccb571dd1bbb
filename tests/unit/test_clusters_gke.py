"""GKE: token refresh once per expiry (real google-auth credentials), endpoint/CA selection."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any

import pytest
from google.cloud import container_v1
from google.oauth2.credentials import Credentials

from airflow_k8s_jobs.clusters import ClusterSettings
from airflow_k8s_jobs.clusters.gke import GkeEndpoint, GoogleTokenSource, select_endpoint
from airflow_k8s_jobs.errors import InvalidInputError, PermanentError, TransientError

TOKEN_LIFETIME = dt.timedelta(hours=1)


class Clock:
    """Naive UTC time that only moves when told to (starts at the real now)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


class Issuer:
    """A refresh handler for google-auth: a new token valid for an hour of the clock's time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0

    def __call__(self, request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        self.calls += 1
        return f"token-{self.calls}", self.clock() + TOKEN_LIFETIME


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> Issuer:
    return Issuer(clock)


@pytest.fixture
def source(clock: Clock, issuer: Issuer) -> GoogleTokenSource:
    credentials = Credentials(token=None, refresh_handler=issuer)
    return GoogleTokenSource(credentials, clock=clock, request_factory=lambda: None)


def test_token_is_refreshed_once_per_expiry_not_per_request(
    source: GoogleTokenSource, issuer: Issuer, clock: Clock
) -> None:
    # 1,000 requests spread over the first 54 minutes of a one-hour token: one refresh.
    for _ in range(1000):
        assert source.token() == "token-1"
        clock.advance(seconds=3.24)
    assert issuer.calls == 1
    # Within 5 minutes of the expiry the next request refreshes, once.
    clock.advance(minutes=1, seconds=1)
    assert [source.token() for _ in range(100)] == ["token-2"] * 100
    assert issuer.calls == 2
    # Three more hours of requests every 10 s: one refresh per token lifetime (minus the margin).
    for _ in range(3 * 360):
        source.token()
        clock.advance(seconds=10)
    assert issuer.calls == 5  # token-2 refreshed 55, 110 and 165 minutes after it came
    assert source.refreshes == issuer.calls


async def test_async_token_shares_the_source(
    source: GoogleTokenSource, issuer: Issuer, clock: Clock
) -> None:
    tokens = await asyncio.gather(*(source.atoken() for _ in range(50)))
    assert set(tokens) == {"token-1"}
    assert source.token() == "token-1"
    assert issuer.calls == 1
    clock.advance(minutes=56)
    assert await source.atoken() == "token-2"
    assert issuer.calls == 2


def test_invalidate_forces_one_refresh(source: GoogleTokenSource, issuer: Issuer) -> None:
    source.token()
    source.invalidate()
    assert source.token() == "token-2"
    assert source.token() == "token-2"
    assert issuer.calls == 2


def test_clients_refused_the_same_token_cost_one_refresh(
    source: GoogleTokenSource, issuer: Issuer
) -> None:
    refused = source.token()
    source.invalidate(refused=refused)  # the first client refused: refresh
    assert source.token() == "token-2"
    source.invalidate(refused=refused)  # the others refused the old token: no new refresh
    source.invalidate(refused=refused)
    assert source.token() == "token-2"
    assert issuer.calls == 2
    source.invalidate(refused="token-2")  # the new token refused too: refresh again
    assert source.token() == "token-3"
    assert issuer.calls == 3


def test_refresh_failure_is_transient_and_does_not_leak(clock: Clock) -> None:
    def failing(request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        raise RuntimeError("metadata server unreachable")

    source = GoogleTokenSource(
        Credentials(token=None, refresh_handler=failing), clock=clock, request_factory=lambda: None
    )
    with pytest.raises(TransientError, match="metadata server unreachable"):
        source.token()


def test_repr_has_no_token(source: GoogleTokenSource) -> None:
    token = source.token()
    assert token not in repr(source)


# -- endpoint and CA -----------------------------------------------------------------------------

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def gke_settings(**extra: Any) -> ClusterSettings:
    return ClusterSettings.from_parts(
        "gke",
        "k8sjobs",
        {"project": "p", "location": "europe-west1", "cluster": "c", **extra},
    )


def make_cluster(**kwargs: Any) -> container_v1.Cluster:
    return container_v1.Cluster(
        name="c",
        endpoint=kwargs.get("endpoint", "34.1.2.3"),
        master_auth=container_v1.MasterAuth(
            cluster_ca_certificate=kwargs.get("ca", base64.b64encode(CA_PEM).decode())
        ),
        private_cluster_config=container_v1.PrivateClusterConfig(
            private_endpoint=kwargs.get("private", "10.0.0.2")
        ),
        control_plane_endpoints_config=container_v1.ControlPlaneEndpointsConfig(
            dns_endpoint_config=container_v1.ControlPlaneEndpointsConfig.DNSEndpointConfig(
                endpoint=kwargs.get("dns", "gke-abc123.europe-west1.gke.goog"),
            ),
            ip_endpoints_config=container_v1.ControlPlaneEndpointsConfig.IPEndpointsConfig(
                public_endpoint=kwargs.get("ip_public", ""),
                private_endpoint=kwargs.get("ip_private", ""),
            ),
        ),
    )


def test_public_endpoint_with_ca() -> None:
    assert select_endpoint(make_cluster(), gke_settings()) == GkeEndpoint(
        "https://34.1.2.3", CA_PEM
    )


def test_private_endpoint_with_ca() -> None:
    endpoint = select_endpoint(make_cluster(), gke_settings(use_internal_ip=True))
    assert endpoint == GkeEndpoint("https://10.0.0.2", CA_PEM)


def test_private_endpoint_from_ip_endpoints_config() -> None:
    cluster = make_cluster(private="", ip_private="10.9.0.2")
    assert select_endpoint(cluster, gke_settings(use_internal_ip=True)).host == "https://10.9.0.2"


def test_dns_endpoint_uses_system_cas() -> None:
    endpoint = select_endpoint(make_cluster(), gke_settings(use_dns_endpoint=True))
    assert endpoint == GkeEndpoint("https://gke-abc123.europe-west1.gke.goog", None)


@pytest.mark.parametrize(
    ("cluster", "options", "expected"),
    [
        (make_cluster(dns=""), {"use_dns_endpoint": True}, "no DNS-based control plane endpoint"),
        (make_cluster(private=""), {"use_internal_ip": True}, "no private endpoint"),
        (make_cluster(endpoint=""), {}, "no public endpoint"),
    ],
)
def test_missing_endpoint_says_what_to_change(
    cluster: container_v1.Cluster, options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidInputError, match=expected) as info:
        select_endpoint(cluster, gke_settings(**options))
    assert "GKE cluster p/europe-west1/c" in str(info.value)


@pytest.mark.parametrize("ca", ["", "not base64!", base64.b64encode(b"garbage").decode()])
def test_bad_ca_is_permanent(ca: str) -> None:
    with pytest.raises(PermanentError, match="CA certificate"):
        select_endpoint(make_cluster(ca=ca), gke_settings())
