"""``hubsight rules list | enable | disable | test | import sigma``."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path
from typing import Any

import click

from hubsight.cli.source_cmd import format_table
from hubsight.cli.trail import record_cli
from hubsight.detect.base import RuleMeta
from hubsight.detect.db import DetectDB
from hubsight.detect.families import FAMILIES, family_of, family_title, tactics_of
from hubsight.detect.ruleset import (
    build_rule,
    rule_class,
    rule_classes,
    rules_dir_default,
    run_example,
)
from hubsight.detect.settings import DetectConfig, SettingsStore, effective
from hubsight.detect.sigma import load_sigma_rules
from hubsight.errors import ConfigError, HubsightError


@click.group("rules")
def rules() -> None:
    """Detection rules: list, switch on and off, test, import."""


@rules.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--by-family", is_flag=True, help="Group the table by family, with ATT&CK tactics.")
@click.pass_obj
def list_rules(data_dir: Path, as_json: bool, by_family: bool) -> None:
    """Every rule (built-in, shipped content, imported Sigma): severity, ATT&CK, state."""
    config = DetectConfig.load(data_dir)
    stored = SettingsStore(DetectDB.in_dir(data_dir)).all()
    folder = rules_dir_default(data_dir)
    imported = [r.rule for r in load_sigma_rules(folder) if r.rule] if folder.is_dir() else []
    listed: list[tuple[RuleMeta, dict[str, Any]]] = [
        (
            cls.meta,
            build_rule(cls, effective(config, stored, cls.meta.id).thresholds).config.model_dump(
                mode="json"
            ),
        )
        for cls in rule_classes()
    ]
    listed += [(rule.meta, {}) for rule in imported]
    rows: list[tuple[str, ...]] = []
    groups: dict[str, list[tuple[str, ...]]] = {key: [] for key in FAMILIES}
    for meta, thresholds in listed:
        enabled = effective(config, stored, meta.id).enabled is not False
        family = family_of(meta)
        if as_json:
            doc = {
                "id": meta.id,
                "title": meta.title,
                "severity": meta.severity.value,
                "technique": meta.technique,
                "tactics": list(tactics_of(meta)),
                "family": family,
                "log_sets": sorted(str(s) for s in meta.log_sets),
                "enabled": enabled,
                "notable": meta.notable,
                "thresholds": thresholds,
            }
            click.echo(json.dumps(doc))
            continue
        state = "on" if enabled else "off"
        if by_family:
            tactics = ",".join(tactics_of(meta)) or "-"
            groups.setdefault(family, []).append(
                (meta.id, state, meta.severity.value, meta.technique, tactics, meta.title)
            )
        else:
            rows.append((meta.id, state, meta.severity.value, meta.technique, meta.title))
    if rows:
        click.echo(format_table(("RULE", "STATE", "SEVERITY", "ATT&CK", "TITLE"), rows))
    header = ("RULE", "STATE", "SEVERITY", "ATT&CK", "TACTICS", "TITLE")
    shown = [(family, members) for family, members in groups.items() if members]
    for n, (family, members) in enumerate(shown):
        if n:
            click.echo("")
        click.echo(f"{family_title(family)} ({family}, {len(members)} rules)")
        click.echo(format_table(header, members))


def _switch(data_dir: Path, rule_id: str, enabled: bool) -> None:
    # Imported Sigma rules and custom alerts are switched by id too; shipped ids are checked.
    if not rule_id.startswith(("sigma.", "custom.")):
        rule_class(rule_id)
    elif rule_id.startswith("sigma."):
        _warn_unless_imported(data_dir, rule_id)
    settings = SettingsStore(DetectDB.in_dir(data_dir))
    stored = settings.all().get(rule_id)
    settings.set_enabled(rule_id, enabled)
    was = stored.enabled if stored is not None else None
    record_cli(data_dir, "rule.update", rule_id, changes={"enabled": [was, enabled]})
    state = "enabled" if enabled else "disabled"
    click.echo(f"{rule_id} {state} (applies to a running hubsight within seconds)")


def _warn_unless_imported(data_dir: Path, rule_id: str) -> None:
    """A mistyped Sigma id was switched without a word; it still is (a folder given to
    `detect --replay --rules` may hold it), with a warning naming the nearest imported id."""
    folder = rules_dir_default(data_dir)
    loads = load_sigma_rules(folder) if folder.is_dir() else []
    imported = sorted({r.rule.meta.id for r in loads if r.rule is not None})
    if rule_id in imported:
        return
    near = difflib.get_close_matches(rule_id, imported, n=1)
    click.echo(
        f"warning: no Sigma rule imported into {folder} has the id {rule_id!r}"
        + (f" (did you mean {near[0]!r}?)" if near else "")
        + "; switched all the same, for a `detect --replay --rules` folder that may hold it",
        err=True,
    )


@rules.command("enable")
@click.argument("rule_id")
@click.pass_obj
def enable(data_dir: Path, rule_id: str) -> None:
    """Switch a rule on."""
    _switch(data_dir, rule_id, True)


@rules.command("disable")
@click.argument("rule_id")
@click.pass_obj
def disable(data_dir: Path, rule_id: str) -> None:
    """Switch a rule off."""
    _switch(data_dir, rule_id, False)


@rules.command("test")
@click.argument("rule_ids", nargs=-1)
@click.pass_obj
def test(data_dir: Path, rule_ids: tuple[str, ...]) -> None:
    """Run rules' own examples (all shipped rules when none is named) with the configured settings.

    Shipped Sigma rules run their example records through the parser, then the rule.
    """
    config = DetectConfig.load(data_dir)
    stored = SettingsStore(DetectDB.in_dir(data_dir)).all()
    classes = [rule_class(r) for r in rule_ids] if rule_ids else list(rule_classes())
    failures = 0
    for cls in classes:
        rule = build_rule(cls, effective(config, stored, cls.meta.id).thresholds)
        for example in cls.examples():
            ok = example.met([a.severity for a in run_example(rule, example)])
            failures += not ok
            expected = "fires" if example.fires else "stays quiet"
            if example.alerts is not None:
                expected += f", {example.alerts} alert{'s' * (example.alerts != 1)}"
            if example.severity is not None:
                expected += f", {example.severity.value.lower()}"
            click.echo(f"{'ok  ' if ok else 'FAIL'} {cls.meta.id}: {example.name} ({expected})")
    if failures:
        raise HubsightError(
            f"{failures} example(s) did not behave as expected",
            hint="thresholds changed in detect.toml or with the API can make examples fail",
        )


@rules.group("import")
def import_group() -> None:
    """Import rules written for other tools."""


@import_group.command("sigma")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule file.")
@click.pass_obj
def import_sigma(data_dir: Path, folder: Path, as_json: bool) -> None:
    """Load the Sigma rules under FOLDER (azure product); keep the files with a rule that loads.

    One line per YAML document: a file may hold several rules (a correlation and its base rules).
    """
    target = rules_dir_default(data_dir) / "sigma"
    results = load_sigma_rules(folder)
    if not results:
        raise ConfigError(
            f"no .yml or .yaml files under {folder}", hint="point at a Sigma rules folder"
        )
    loaded = [r.rule_id for r in results if r.loaded]
    for result in results:
        if result.loaded:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.path, target / result.path.name)
        doc = {
            "path": str(result.path),
            "document": result.document,
            "loaded": result.loaded,
            "reason": result.reason,
            "rule_id": result.rule_id,
        }
        if as_json:
            click.echo(json.dumps(doc))
        else:
            state = "loaded" if doc["loaded"] else "skipped"
            click.echo(f"{state}\t{result.path}\t{result.rule_id or '-'}\t{result.reason}")
    if loaded:
        record_cli(data_dir, "rule.import", str(folder), loaded=loaded)


from hubsight.cli.coverage_cmd import coverage_cmd  # noqa: E402 - registers on the group above
from hubsight.cli.hunt_cmd import hunt_cmd  # noqa: E402 - registers on the group defined above

rules.add_command(hunt_cmd)
rules.add_command(coverage_cmd)
