"""Every source profile kind has a transport, every store scheme opens, every target a channel."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from hubsight.detect.notify import CHANNELS, channel_for
from hubsight.detect.targets import KINDS, parse_target
from hubsight.errors import ConfigError
from hubsight.probe import probe_source
from hubsight.sources.config import Profile, make_source
from hubsight.sources.kafka import KafkaDriver
from hubsight.sources.memory import MemoryBroker
from hubsight.sources.registry import DRIVERS, driver_for
from hubsight.store.backends import StoreSettings, open_store


def test_every_profile_kind_has_exactly_one_driver() -> None:
    union = typing.get_args(Profile)[0]
    kinds = {cls.model_fields["kind"].default for cls in typing.get_args(union)}
    assert kinds == set(DRIVERS) == {"eventhubs", "kafka"}
    source = make_source(
        {"name": "relay", "profile": {"kind": "kafka", "bootstrap": "h:9092"}, "topics": ["t"]}
    )
    assert isinstance(driver_for(source), KafkaDriver)


def test_every_target_kind_has_a_channel() -> None:
    assert set(CHANNELS) == set(KINDS) == {"webhook", "syslog", "smtp"}
    target = parse_target({"kind": "syslog", "name": "siem", "host": "h"})
    assert channel_for(target).name == "syslog:siem"


def test_an_unknown_store_scheme_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(StoreSettings(data_dir=tmp_path, url="postgres://db/hubsight"))
    assert "'postgres'" in caught.value.message
    assert "embedded" in caught.value.hint


def test_a_probe_runs_the_drivers_steps_and_skips_after_a_failure() -> None:
    broker = MemoryBroker()
    source = make_source(
        {"name": "m", "profile": {"kind": "kafka", "bootstrap": "h:9092"}, "topics": ["t"]}
    )
    steps = broker.driver().checks(source, 1.0)
    assert [name for name, _ in steps] == ["topic"]
    assert steps[0][1]().status == "failed"
    broker.create_topic("t", 2)
    assert steps[0][1]().detail == "2 partitions"
    # probe_source uses the registry's driver: Kafka's six steps, the first failing on DNS.
    unresolvable = make_source(
        {
            "name": "k",
            "profile": {"kind": "kafka", "bootstrap": "no-such-host.invalid:9092"},
            "topics": ["t"],
        }
    )
    found = [(s.name, s.status) for s in probe_source(unresolvable, timeout=2)]
    assert found == [("dns", "failed")] + [
        (name, "skipped") for name in ("tcp", "tls", "sasl", "topic", "first_message")
    ]
