"""The catalog keeps sources with their secrets encrypted at rest."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hubsight.errors import AlreadyExistsError, ConfigError, NotFoundError
from hubsight.sources.config import make_source
from hubsight.store.catalog import CATALOG_FILE, Catalog
from hubsight.store.vault import KEY_ENV, KEY_FILE

from tests.support import PLANTED_KEY, connection_string, connection_string_of


def _source(name: str = "azure-prod") -> dict[str, object]:
    return {
        "name": name,
        "profile": {
            "kind": "eventhubs",
            "server": "contoso-logs.servicebus.windows.net",
            "connection_string": connection_string(),
        },
    }


def test_round_trip_and_secret_encrypted_on_disk(data_dir: Path) -> None:
    catalog = Catalog(data_dir)
    catalog.add(make_source(_source()))
    loaded = catalog.get("azure-prod")
    assert connection_string_of(loaded) == connection_string()
    for path in data_dir.iterdir():
        if path.is_file() and path.name != KEY_FILE:
            assert PLANTED_KEY.encode() not in path.read_bytes(), path.name
    assert stat.S_IMODE((data_dir / KEY_FILE).stat().st_mode) == 0o600
    assert (data_dir / CATALOG_FILE).exists()


def test_add_twice_remove_and_missing(data_dir: Path) -> None:
    catalog = Catalog(data_dir)
    catalog.add(make_source(_source()))
    with pytest.raises(AlreadyExistsError):
        catalog.add(make_source(_source()))
    versions = catalog.versions()
    catalog.set_enabled("azure-prod", False)
    assert not catalog.get("azure-prod").enabled
    assert catalog.versions()["azure-prod"] == versions["azure-prod"] + 1
    catalog.remove("azure-prod")
    with pytest.raises(NotFoundError, match="no event source named 'azure-prod'"):
        catalog.get("azure-prod")


def test_key_from_environment_and_wrong_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "bm90LWEtZmVybmV0LWtleQ==")
    with pytest.raises(ConfigError, match="not a Fernet key"):
        Catalog(data_dir)
    monkeypatch.setenv(KEY_ENV, "x" * 43 + "=")
    Catalog(data_dir).add(make_source(_source()))
    assert not (data_dir / KEY_FILE).exists()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        Catalog(data_dir).get("azure-prod")
