"""Every numeric rule setting has a floor and a ceiling, refused one step outside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hubsight.cli.main import cli
from hubsight.detect.engine import EngineOptions
from hubsight.detect.ruleset import build_rule, rule_classes, settings_schema
from hubsight.detect.settings import DetectConfig
from hubsight.errors import ConfigError, SettingError


def _numeric_settings() -> list[Any]:
    """(rule class, setting, its schema) for each numeric setting, one per config type."""
    seen: set[type[Any]] = set()
    found = []
    for cls in rule_classes():
        if cls.config_type in seen:
            continue
        seen.add(cls.config_type)
        for name, prop in settings_schema(cls).items():
            if prop.get("type") in ("integer", "number"):
                found.append(pytest.param(cls, name, prop, id=f"{cls.meta.id}.{name}"))
    return found


NUMERIC = _numeric_settings()


def test_the_walk_covers_counts_windows_and_look_backs() -> None:
    names = {p.values[1] for p in NUMERIC}
    assert {"count", "window_minutes", "dedup_minutes", "window_hours", "lookback_days"} <= names


@pytest.mark.parametrize(("cls", "name", "prop"), NUMERIC)
def test_every_numeric_setting_is_refused_just_below_its_floor(
    cls: Any, name: str, prop: dict[str, Any]
) -> None:
    # A count, window or look-back of 0 (or less) means nothing: each declares where it starts.
    assert "minimum" in prop or "exclusiveMinimum" in prop, f"{name} has no lower bound"
    floor = prop["minimum"] if "minimum" in prop else prop["exclusiveMinimum"]
    assert floor >= 0
    below = floor - 1 if "minimum" in prop else floor
    with pytest.raises(SettingError) as refused:
        build_rule(cls, {name: below})
    assert refused.value.field == name
    assert f"{name} = {below}: " in str(refused.value)
    if "minimum" in prop:
        assert getattr(build_rule(cls, {name: floor}).config, name) == floor
    if "maximum" in prop:
        assert getattr(build_rule(cls, {name: prop["maximum"]}).config, name) == prop["maximum"]
        with pytest.raises(SettingError):
            build_rule(cls, {name: prop["maximum"] + 1})


def test_a_refusal_names_the_setting_the_value_and_the_range() -> None:
    (brute,) = [c for c in rule_classes() if c.meta.id == "auth.brute_force"]
    with pytest.raises(SettingError) as refused:
        build_rule(brute, {"window_minutes": 0})
    assert str(refused.value) == (
        "thresholds of rule auth.brute_force: window_minutes = 0: "
        "Input should be greater than or equal to 1"
    )
    assert refused.value.hint == "a whole number from 1 up to 5256000 (default 10)"
    assert build_rule(brute, {"window_minutes": 1, "count": 1}).config.count == 1


def test_an_infinite_speed_or_distance_is_refused() -> None:
    (travel,) = [c for c in rule_classes() if c.meta.id == "auth.impossible_travel"]
    for thresholds in ({"max_speed_kmh": float("inf")}, {"min_distance_km": float("nan")}):
        with pytest.raises(SettingError):
            build_rule(travel, thresholds)
    assert build_rule(travel, {"min_distance_km": 0}).config.min_distance_km == 0


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("lateness_hours = 0", "lateness_hours = 0: Input should be greater than 0"),
        ("lateness_hours = inf", "lateness_hours = Infinity: "),
        ("lateness_hours = 87601", "lateness_hours = 87601: Input should be less than or equal"),
        ("lateness_hours = 87600", None),
        ("learning_days = -1", "learning_days = -1: Input should be greater than or equal to 0"),
        ("learning_days = 0", None),
        ("baseline_days = 0", "baseline_days = 0: "),
        ("investigation_window_hours = 0.5", None),
    ],
)
def test_detect_toml_timings_have_bounds(tmp_path: Path, line: str, refusal: str | None) -> None:
    (tmp_path / "detect.toml").write_text(line + "\n")
    if refusal is None:
        DetectConfig.load(tmp_path)
        return
    with pytest.raises(ConfigError) as err:
        DetectConfig.load(tmp_path)
    assert refusal in str(err.value)


def test_detect_toml_and_the_engine_cap_windows_alike(tmp_path: Path) -> None:
    # ``hubsight run`` passes detect.toml's cap; backtests and the bench build EngineOptions
    # themselves: both defaults are the one README's Memory table states.
    assert DetectConfig.load(tmp_path).max_window_entries == EngineOptions().max_window_entries
    (tmp_path / "detect.toml").write_text("max_window_entries = 999\n")
    with pytest.raises(ConfigError, match="max_window_entries"):
        DetectConfig.load(tmp_path)


@pytest.mark.parametrize(
    ("minutes", "refused"), [(0, True), (1, False), (5256000, False), (5256001, True)]
)
def test_a_custom_alerts_window_has_the_same_bounds(
    tmp_path: Path, minutes: int, refused: bool
) -> None:
    (tmp_path / "detect.toml").write_text(
        '[[custom]]\nid = "quiet"\ntitle = "Quiet"\nkind = "inactivity"\nquery = "corp"\n'
        f"window_minutes = {minutes}\n"
    )
    if not refused:
        assert DetectConfig.load(tmp_path).custom[0].window_minutes == minutes
        return
    with pytest.raises(ConfigError, match=f"custom.0.window_minutes = {minutes}: "):
        DetectConfig.load(tmp_path)


def test_replays_learning_days_are_refused_beyond_ten_years(tmp_path: Path) -> None:
    # It overflowed a timedelta (a traceback) before.
    args = ["--data-dir", str(tmp_path), "detect", "--replay", "--learning-days", "3651"]
    refused = CliRunner().invoke(cli, [*args, "--input", str(tmp_path)])
    assert refused.exit_code == 2
    assert "'--learning-days': 3651.0 is not in the range 0<=x<=3650" in refused.output
