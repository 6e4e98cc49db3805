"""``hubsight notify list | test`` over targets of the console and of detect.toml."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pydantic import SecretStr

from hubsight.cli.main import cli
from hubsight.detect.db import DetectDB
from hubsight.detect.targets import SmtpConfig, TargetStore, WebhookConfig
from hubsight.store.vault import Vault

from tests.detect.receivers import http_receiver, smtp_server
from tests.support import PLANTED_PASSWORD


def _run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "notify", *args])
    return result.exit_code, result.output


def test_list_shows_where_each_target_was_set_and_never_a_secret(data_dir: Path) -> None:
    (data_dir / "detect.toml").write_text('[[notify.syslog]]\nhost = "siem.example"\n')
    store = TargetStore(DetectDB.in_dir(data_dir), Vault(data_dir))
    store.add(
        WebhookConfig(
            name="soar",
            url=SecretStr(f"https://soar.example/h?k={PLANTED_PASSWORD}"),
            auth_header=SecretStr(f"Bearer {PLANTED_PASSWORD}"),
        )
    )
    code, output = _run(data_dir, "list")
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "STATE", "SEVERITIES", "SET", "IN", "WHERE"]
    assert lines[1].split() == ["syslog-1", "syslog", "on", "Critical,High", "detect.toml",
                                "udp://siem.example:514"]  # fmt: skip
    assert lines[2].split() == ["soar", "webhook", "on", "Critical,High", "console",
                                "https://soar.example"]  # fmt: skip
    code, output = _run(data_dir, "list", "--json")
    docs = [json.loads(line) for line in output.splitlines()]
    assert [(d["name"], d.get("auth_header")) for d in docs] == [
        ("syslog-1", None),
        ("soar", "set"),
    ]
    assert PLANTED_PASSWORD not in output


def test_test_reports_delivery_or_the_error_with_its_hint(data_dir: Path) -> None:
    store = TargetStore(DetectDB.in_dir(data_dir), Vault(data_dir))
    with smtp_server() as (port, box):
        store.add(
            SmtpConfig(
                name="mail", host="127.0.0.1", port=port, sender="h@contoso.com",
                recipients=("soc@contoso.com",),
            )
        )  # fmt: skip
        code, output = _run(data_dir, "test", "mail")
    assert code == 0, output
    assert output.startswith("delivered to smtp:mail in ")
    assert len(box.mails) == 1
    with http_receiver(404) as (url, _):
        store.add(WebhookConfig(name="hook", url=SecretStr(f"{url}/wrong")))
        code, output = _run(data_dir, "test", "hook")
    assert code == 1
    assert "error: not delivered to webhook:hook: HTTP 404" in output
    assert "hint: the receiver has no such path: check the URL" in output
    code, output = _run(data_dir, "test", "nope")
    assert (code, "no notification target named 'nope'" in output) == (1, True)
