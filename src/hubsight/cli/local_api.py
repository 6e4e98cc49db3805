"""The API of the ``hubsight run`` that holds a data directory, reached over its Unix socket.

ClickHouse lets one process hold a data directory; while ``hubsight run`` is that process, read
commands such as ``search`` ask it instead of opening the store themselves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from hubsight.errors import (
    ConfigError,
    HubsightError,
    NotFoundError,
    QueryError,
    QuerySyntaxError,
)
from hubsight.service import SOCKET_FILE
from hubsight.store.audit import cli_actor
from hubsight.web.auditing import ACTOR_HEADER
from hubsight.web.responses import ERROR_KIND_HEADER


class LocalApi:
    """JSON requests to the running service's API."""

    def __init__(self, data_dir: Path, timeout_s: float = 120.0) -> None:
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(data_dir / SOCKET_FILE)),
            base_url="http://hubsight",
            timeout=timeout_s,
            # The service records changes made over its socket as this OS user's.
            headers={ACTOR_HEADER: cli_actor()},
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send a request; a JSON answer, or the service's error raised as a ``HubsightError``."""
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise HubsightError(
                f"`hubsight run` holds this data directory but its API did not answer: {exc}",
                hint="wait for it to finish starting, or stop it and run the command again",
            ) from None
        try:
            payload = response.json() if response.content else None
        except ValueError:
            # Not the API's own answer: a failure no handler caught, which `run` logged.
            raise HubsightError(
                f"`hubsight run` failed the request (HTTP {response.status_code})",
                hint="see the log of `hubsight run` for what failed",
            ) from None
        if response.status_code < 400:
            return payload
        error = payload if isinstance(payload, dict) else {}
        message = str(error.get("error") or f"the API answered {response.status_code}")
        hint = str(error.get("hint") or "")
        if "line" in error and "column" in error and body is not None:
            raise QuerySyntaxError(
                message,
                query=str(body.get("query", "")),
                line=int(error["line"]),
                column=int(error["column"]),
                hint=hint,
            )
        if response.status_code == 404:
            raise NotFoundError(message, hint=hint)
        if response.headers.get(ERROR_KIND_HEADER) == "usage":
            # Bad input, as the command would have found it alone: the same exit code (2).
            raise ConfigError(message, hint=hint)
        raise QueryError(message, hint=hint)

    def search(self, body: dict[str, Any], poll_s: float = 0.2) -> dict[str, Any]:
        """Run a search, waiting for it when it outlives the first request."""
        answer: dict[str, Any] = self.call("POST", "/api/v1/search", body)
        while answer.get("status") == "running":
            time.sleep(poll_s)
            answer = self.call("GET", f"/api/v1/search/{answer['id']}")
        return answer

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
