"""X-Forwarded-For is believed only from the proxies HUBSIGHT_TRUSTED_PROXIES names."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hubsight.cli.run_cmd import TRUSTED_PROXIES_ENV, _tcp_config


def _client_seen(monkeypatch: pytest.MonkeyPatch, proxies: str | None, peer: str) -> str:
    """The client address the app sees for a request from ``peer`` claiming 203.0.113.9."""
    if proxies is None:
        monkeypatch.delenv(TRUSTED_PROXIES_ENV, raising=False)
    else:
        monkeypatch.setenv(TRUSTED_PROXIES_ENV, proxies)
    seen: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    config = _tcp_config(app, "127.0.0.1", 0)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(b"x-forwarded-for", b"203.0.113.9")], "client": (peer, 50000),
        "server": ("127.0.0.1", 8080),
    }  # fmt: skip

    async def nothing() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def drop(_message: Any) -> None:
        return None

    # A thread of its own: the browser tests' Playwright keeps an event loop running on the main
    # thread for the rest of the session, and asyncio.run refuses to start beside it.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, config.loaded_app(scope, nothing, drop)).result()
    return seen[0]


def test_a_forged_header_from_loopback_is_not_believed_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _client_seen(monkeypatch, None, "127.0.0.1") == "127.0.0.1"


def test_a_configured_proxy_is_believed_and_no_one_else(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _client_seen(monkeypatch, "10.0.0.5", "10.0.0.5") == "203.0.113.9"
    assert _client_seen(monkeypatch, "10.0.0.5", "127.0.0.1") == "127.0.0.1"
