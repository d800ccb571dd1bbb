"""``gcp_conn_id``: a GKE connection that takes its Google identity from an Airflow Google Cloud
connection, through the Google provider's own hook and google-auth, over HTTP.

The Google connection holds a service-account key made here whose ``token_uri`` is a local
OAuth token endpoint: google-auth signs its JWT assertion with the key and exchanges it there,
as it would with Google's.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from airflow_k8s_jobs.clusters import ClusterSettings, gke
from airflow_k8s_jobs.errors import InvalidInputError

pytest.importorskip(
    "airflow.providers.google.common.hooks.base_google",
    reason="gcp_conn_id reads Google connections with the Google provider, which this "
    "environment lacks (the Composer-like environments have it)",
)

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenEndpoint:
    """An OAuth 2.0 token endpoint for the JWT-bearer grant: checks the assertion's RS256
    signature with the service account's public key and answers with a fresh access token."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.claims: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                status, body = endpoint.exchange(form)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def exchange(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        header, payload, signature = form["assertion"][0].split(".")
        try:
            self.public_key.verify(
                b64url_decode(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "bad signature"}
        self.claims.append(json.loads(b64url_decode(payload)))
        return 200, {
            "access_token": f"access-{len(self.claims)}",
            "expires_in": 3600,
            "token_type": "Bearer",
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def endpoint(key: rsa.RSAPrivateKey) -> Iterator[TokenEndpoint]:
    served = TokenEndpoint(key.public_key())
    yield served
    served.close()


@pytest.fixture
def google_conn_id(
    key: rsa.RSAPrivateKey, endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An Airflow Google Cloud connection (from the environment) with a service-account key."""
    conn_id = f"google_jobs_{uuid.uuid4().hex[:8]}"  # token sources are cached per identity
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    keyfile = {
        "type": "service_account",
        "project_id": "batch-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "jobs-runner@batch-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": endpoint.url,
    }
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"keyfile_dict": json.dumps(keyfile), "scope": CLOUD_PLATFORM},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def test_a_gke_connection_takes_its_identity_from_a_google_connection(
    google_conn_id: str, endpoint: TokenEndpoint
) -> None:
    settings = ClusterSettings.from_parts(
        "gke_batch",
        "k8sjobs",
        {
            "project": "p",
            "location": "europe-west1",
            "cluster": "batch",
            "gcp_conn_id": google_conn_id,
        },
    )
    assert settings.gcp_conn_id == google_conn_id
    source = gke.token_source_for(settings.impersonation_chain, settings.gcp_conn_id)
    assert source.token() == "access-1"
    (claims,) = endpoint.claims
    assert claims["iss"] == "jobs-runner@batch-project.iam.gserviceaccount.com"
    assert claims["aud"] == "https://oauth2.googleapis.com/token"  # google-auth's audience
    assert CLOUD_PLATFORM in claims["scope"].split()
    # One token source per identity: asked again, no new exchange while the token is fresh.
    assert gke.token_source_for((), google_conn_id) is source
    assert source.token() == "access-1" and len(endpoint.claims) == 1


def test_a_missing_google_connection_is_named() -> None:
    with pytest.raises(
        InvalidInputError, match="'no_such_google_conn' \\(gcp_conn_id\\) is not defined"
    ):
        gke.token_source_for((), "no_such_google_conn")


def test_gcp_conn_id_only_applies_to_gke() -> None:
    with pytest.raises(InvalidInputError, match="gcp_conn_id only apply to GKE clusters"):
        ClusterSettings.from_parts(
            "kc", "k8sjobs", {"kubeconfig_path": "/tmp/kc.yaml", "gcp_conn_id": "google_default"}
        )
