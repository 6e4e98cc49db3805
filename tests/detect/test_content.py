"""The shipped Sigma content: every rule complete, loaded as a shipped rule, examples checked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from hubsight.detect.attack import TACTICS, TECHNIQUES
from hubsight.detect.base import Example, Severity
from hubsight.detect.content import CONTENT_DIR, ShippedRule, _shipped, content_rules
from hubsight.detect.content.examples import compose, examples_path, load_base, load_examples
from hubsight.detect.families import FAMILIES, family_of
from hubsight.detect.ruleset import build_rule, build_ruleset, rule_class, rule_classes
from hubsight.detect.settings import DetectConfig, RuleSettings
from hubsight.detect.sigma import SigmaLoader
from hubsight.errors import ConfigError, RuleError
from hubsight.parsing.event import LogSet

RULE_FILES = sorted(p for p in CONTENT_DIR.glob("*/*.yml"))
_LEVELS = {"informational", "low", "medium", "high", "critical"}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rule_file_is_complete(path: Path) -> None:
    # A correlation follows its base rule in the same file; the file's rule is the last one.
    *bases, doc = list(yaml.safe_load_all(path.read_text()))
    family = path.parent.name
    for base in bases:
        assert base["name"].startswith(f"{family}.{path.stem}.")
        assert base["logsource"]["product"] == "azure"
    if bases:
        assert doc["correlation"]["rules"] == [base["name"] for base in bases]
    else:
        assert doc["logsource"]["product"] == "azure"
    assert family in FAMILIES
    assert doc["name"] == f"{family}.{path.stem}"
    assert uuid.UUID(doc["id"])
    assert doc["title"]
    # Why it matters, what to do, and which stage of the operation fires.
    assert "What to do:" in doc["description"]
    assert "Fires on" in doc["description"]
    tags = doc["tags"]
    assert any(t.startswith("attack.t") for t in tags), "an ATT&CK technique"
    assert any(not t.startswith("attack.t") for t in tags), "an ATT&CK tactic"
    assert doc["level"] in _LEVELS
    assert doc["falsepositives"]
    record = json.loads(examples_path(path).read_text())
    assert record["fires"]
    assert record["quiet"]


def test_every_file_is_a_shipped_rule_with_its_family() -> None:
    classes = content_rules()
    assert len(classes) == len(RULE_FILES)
    # The issue's floor: 150 rules shipped in all, the built-in ones included.
    assert len(rule_classes()) >= 150
    for cls in classes:
        assert issubclass(cls, ShippedRule)
        assert family_of(cls.meta) == cls.meta.id.partition(".")[0]
        assert cls.meta.technique.startswith("T")
        assert cls.meta.tactics
        assert rule_class(cls.meta.id) is cls


def test_examples_are_parsed_records_of_the_rule_log_set() -> None:
    cls = rule_class("keyvault.vault_deleted")
    examples = cls.examples()
    for example in examples:
        for event in example.events:
            assert event.log_set is LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY
            assert event.user == "carol.admin@contoso.com"
    # Azure spells operation names in any case; the positives carry two spellings.
    operations = {e.events[0].operation for e in examples if e.fires}
    assert operations == {"MICROSOFT.KEYVAULT/VAULTS/DELETE", "microsoft.keyvault/vaults/delete"}


def test_content_rules_are_switched_and_tuned_like_built_in_ones() -> None:
    stored = {
        "storage.account_deleted": RuleSettings(enabled=False),
        "keyvault.vault_deleted": RuleSettings(thresholds={"dedup_minutes": 5}),
    }
    ruleset = build_ruleset(DetectConfig(), stored)
    assert "storage.account_deleted" in ruleset.disabled
    tuned = next(r for r in ruleset.rules if r.meta.id == "keyvault.vault_deleted")
    assert tuned.config.dedup_minutes == 5
    with pytest.raises(ConfigError, match="dedup_minutes"):
        build_rule(rule_class("keyvault.vault_deleted"), {"dedup_minutes": 0})


def _write_examples(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "rule.examples.json"
    path.write_text(json.dumps(doc))
    return path


def test_an_unknown_example_variable_is_refused(tmp_path: Path) -> None:
    path = _write_examples(
        tmp_path, {"record": "administrative", "fires": [{"name": "x", "operation_name": "a"}]}
    )
    with pytest.raises(RuleError, match="'operation_name' is not one of base record"):
        load_examples(path)


def test_an_example_names_the_severity_its_alerts_must_have(tmp_path: Path) -> None:
    doc = {"record": "administrative", "fires": [{"name": "graded", "severity": "LOW"}]}
    (example,) = load_examples(_write_examples(tmp_path, doc))
    assert example.severity is Severity.LOW
    assert example.met([Severity.LOW])
    assert not example.met([Severity.LOW, Severity.HIGH])
    doc["fires"] = [{"name": "graded", "severity": "urgent"}]
    with pytest.raises(RuleError, match="example 'graded' names severity 'urgent'"):
        load_examples(_write_examples(tmp_path, doc))
    doc["fires"] = [{"name": "counted", "alerts": 2}]
    (counted,) = load_examples(_write_examples(tmp_path, doc))
    assert (counted.alerts, counted.met([Severity.LOW]), counted.met([Severity.LOW] * 2)) == (
        2,
        False,
        True,
    )
    doc["fires"] = [{"name": "counted", "alerts": "two"}]
    with pytest.raises(RuleError, match="example 'counted' expects 'two' alerts"):
        load_examples(_write_examples(tmp_path, doc))


def test_an_example_the_parser_refuses_is_an_error(tmp_path: Path) -> None:
    # Without a category no parser claims the record: a negative example must not pass by that.
    doc = {"record": "administrative", "quiet": [{"name": "no category", "category": None}]}
    with pytest.raises(RuleError, match="example 'no category' is not a record the parser"):
        load_examples(_write_examples(tmp_path, doc))


def test_missing_examples_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="examples cannot be read"):
        load_examples(tmp_path / "none.examples.json")


def test_examples_compose_several_records(tmp_path: Path) -> None:
    doc = {
        "record": "administrative",
        "fires": [
            {"name": "two", "caller": "dave@contoso.com", "records": [{}, {"ip": "1.2.3.4"}]}
        ],
    }
    (example,) = load_examples(_write_examples(tmp_path, doc))
    assert isinstance(example, Example)
    assert [e.user for e in example.events] == ["dave@contoso.com"] * 2
    assert [e.source_ip for e in example.events] == ["52.174.3.10", "1.2.3.4"]
    assert [e.source_offset for e in example.events] == [0, 1]


def test_a_record_of_an_example_may_name_another_base_record(tmp_path: Path) -> None:
    # A sign-in, then a storage request: the example's own variables are the storage record's.
    doc = {
        "record": "storage",
        "fires": [
            {
                "name": "two kinds",
                "auth": "SAS",
                "records": [{"record": "signin", "ip": "81.2.69.160"}, {"caller": "1.2.3.4:5"}],
            }
        ],
    }
    (example,) = load_examples(_write_examples(tmp_path, doc))
    signin, request = example.events
    assert (signin.log_set, signin.source_ip) == (LogSet.INGRESS_AUTHENTICATION, "81.2.69.160")
    assert (request.log_set, request.auth_type) == (LogSet.FILE_ACCESS_ACTIVITY, "SAS")
    assert request.source_ip == "1.2.3.4"
    bad = {"record": "storage", "fires": [{"records": [{"record": "signin", "auth": "SAS"}]}]}
    with pytest.raises(RuleError, match="'auth' is not one of base record 'signin'"):
        load_examples(_write_examples(tmp_path, bad))


def test_json_text_paths_are_sent_as_text_with_the_example_values_inside() -> None:
    # AKS sends the audit event as JSON text in properties.log, and so must the examples.
    base = load_base("kubeaudit")
    spec = {"verb": "patch", "set": {"properties.log.requestObject": {"roleRef": {"name": "x"}}}}
    record = compose(base, spec)
    log = record["properties"]["log"]
    assert isinstance(log, str)
    assert json.loads(log)["verb"] == "patch"
    assert json.loads(log)["requestObject"] == {"roleRef": {"name": "x"}}
    # The base record itself is left as it was for the next example.
    assert isinstance(base.record["properties"]["log"], dict)


def test_kube_audit_rules_read_the_event_in_properties_log() -> None:
    cls = rule_class("aks.exec_into_pod")
    (first, *_) = cls.examples()
    (event,) = first.events
    assert json.loads(bytes(event.raw))["properties"]["log"].startswith("{")
    assert event.operation == "create pods/exec"
    assert event.user == "alice.martin@contoso.com"


def test_a_shipped_rule_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("title: Broken\nlogsource: {product: azure, service: nope}\n")
    (load,) = SigmaLoader().load_file(broken)
    with pytest.raises(RuleError, match="does not load"):
        _shipped(load, "storage")
    (load,) = SigmaLoader().load_file(CONTENT_DIR / "storage" / "account_deleted.yml")
    with pytest.raises(RuleError, match="no name starting with 'keyvault'"):
        _shipped(load, "keyvault")


def test_a_correlation_is_shipped_with_its_window_and_base_rule() -> None:
    cls = rule_class("entra.lockouts_per_user")
    assert cls.meta.windowed
    assert cls.meta.tactics == ("credential-access",)
    assert not any(c.meta.id.startswith("entra.lockouts_per_user.") for c in content_rules())
    fired, *quiet = [e for e in cls.examples()]
    assert fired.fires
    assert len(fired.events) == 5
    assert [len(e.events) for e in quiet if "one short" in e.name] == [4]


def test_informational_rules_are_notables_and_the_others_alert() -> None:
    notables = {c.meta.id for c in content_rules() if c.meta.notable}
    assert "entra.guest_invited" in notables
    assert "keyvault.vault_deleted" not in notables
    for cls in content_rules():
        assert cls.meta.notable is (cls.meta.severity.value == "Info"), cls.meta.id


def test_every_shipped_technique_is_known_with_the_tactics_it_tags() -> None:
    # The rule's tactic tags must be tactics of its technique (the ATT&CK coverage page's map).
    for cls in content_rules():
        name, tactics = TECHNIQUES[cls.meta.technique]
        assert set(cls.meta.tactics) <= {TACTICS[t] for t in tactics}, (cls.meta.id, name)
