"""``hubsight detect --replay`` prints a notable that a later file moved only once, where it
ended up (the withdrawn one is not printed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.rules.auth_baseline import NewCountryConfig

SAMPLE = Path(__file__).parents[1] / "data" / "azure" / "SignInLogs" / "success-mfa-push.json"
# The replay hands the engine 5,000 events at a time: this many fill the first file's batch.
FILLERS = 5000


def _signin(sample: dict[str, Any], at: str, user: str, country: str, ip: str) -> dict[str, Any]:
    record = copy.deepcopy(sample)
    props = record["properties"]
    props["id"] = f"{user}-{at}"
    props["createdDateTime"] = at
    props["userPrincipalName"] = user
    # A session of each user's own: the sample's one session id on 5,000 fillers made the shipped
    # one-session-from-many-addresses correlation recount one huge window at every event.
    props["sessionId"] = f"session-{user}"
    props["ipAddress"] = record["callerIpAddress"] = ip
    props["location"]["countryOrRegion"] = record["location"] = country
    return record


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"records": records}) + "\n")
    return path


def test_replay_prints_a_moved_notable_once_where_it_ended(tmp_path: Path) -> None:
    sample = json.loads(SAMPLE.read_text())
    user = "adele.vance@contoso.com"
    # Days 20519 and 20520 of the epoch fall in different 90-day dedup buckets of the rule.
    assert NewCountryConfig().dedup_minutes == 90 * 1440
    home = _signin(sample, "2026-03-06T12:00:00Z", user, "GB", "81.2.69.160")
    later = _signin(sample, "2026-03-08T01:00:00Z", user, "NG", "102.89.0.2")
    earlier = _signin(sample, "2026-03-07T23:00:00Z", user, "NG", "102.89.0.1")
    fillers = [
        _signin(
            sample, f"2026-03-07T{n % 24:02d}:00:00Z", f"user{n}@contoso.com", "GB", "81.2.69.1"
        )
        for n in range(FILLERS)
    ]
    first = _write(tmp_path / "first.json", [home, later, *fillers])
    second = _write(tmp_path / "second.json", [earlier])

    result = CliRunner().invoke(
        cli,
        [
            *("--data-dir", str(tmp_path / "d"), "detect", "--replay", "--learning-days", "0"),
            *("--input", str(first), str(second)),
        ],
    )

    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.output.splitlines()]
    notables = [a for a in alerts if a["rule_id"] == "auth.new_country"]
    assert [(a["user"], a["source_ip"], a["first_event_time"]) for a in notables] == [
        (user, "102.89.0.1", "2026-03-07T23:00:00+00:00")
    ]
