"""A real OpenID Connect provider on loopback (tools/oidc_provider.mjs), for tests and run_local.

panva's `oidc-provider` from node_modules, with its development login form: any login name
is accepted with any password, and the users named in the configuration get their groups.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from tools.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "oidc_provider.mjs"
DEFAULT_USERS = {
    "admin": {"groups": ["admins"], "name": "Ada Admin", "email": "admin@example.test"},
    "viewer": {"groups": ["viewers"], "name": "Vic Viewer", "email": "viewer@example.test"},
}


class OIDCProvider:
    """One provider process with one client."""

    def __init__(
        self,
        root: Path,
        redirect_uris: Sequence[str],
        *,
        client_id: str = "cluster-manager",
        client_secret: str = "local-client-secret",  # noqa: S107 - a local test provider
        users: Mapping[str, Mapping[str, object]] | None = None,
        groups_claim: str = "mcm-idp-groups",
        port: int | None = None,
    ):
        """Describe the provider; nothing starts before `start()`."""
        self.root = root
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.client_secret = client_secret
        self.config = {
            "issuer": self.issuer,
            "port": self.port,
            "clients": [
                {
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "redirect_uris": list(redirect_uris),
                }
            ],
            "users": dict(users or DEFAULT_USERS),
            "groups_claim": groups_claim,
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The workload settings that point the cluster manager at this provider."""
        return {
            "MCM_OIDC_ISSUER": self.issuer,
            "MCM_OIDC_CLIENT_ID": self.client_id,
            "MCM_OIDC_CLIENT_SECRET": self.client_secret,
        }

    def start(self) -> OIDCProvider:
        """Start node and wait until the provider listens."""
        node = shutil.which("node")
        if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                "node and node_modules/oidc-provider are needed: run scripts/bootstrap"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "oidc-provider.json"
        config.write_text(json.dumps(self.config))
        log = (self.root / "oidc-provider.log").open("ab")
        self._process = subprocess.Popen(
            [node, str(SCRIPT), str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
            self._check_discovery()
        except Exception:
            self.stop()
            raise
        return self

    def _check_discovery(self) -> None:
        """Make sure it is our provider that answers (not another process on the port)."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        for _ in range(50):
            if self._process is not None and self._process.poll() is not None:
                log = (self.root / "oidc-provider.log").read_text(errors="replace")
                raise RuntimeError(f"the OIDC provider exited: {log[-1000:]}")
            try:
                if requests.get(url, timeout=2).json().get("issuer") == self.issuer:
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no OIDC provider of ours answers at {url}")

    def stop(self) -> None:
        """Stop the provider (its in-memory grants and sessions are gone)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
