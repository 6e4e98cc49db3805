"""The detection content hubsight ships: Sigma rules by family, each with its own examples.

    <family>/<rule>.yml             one Sigma rule; its ``name`` is the hubsight rule id
    <family>/<rule>.examples.json   records it must fire on and stay quiet on (``examples.py``)
    records/<shape>.json            the complete Event Hub records the examples are built from

The rules load with the loader of imported Sigma rules (``hubsight.detect.sigma``) and become
rule classes like the built-in ones: switched, tuned and excepted by id, tested by
``hubsight rules test``. A shipped rule that does not load is a defect of the package, so
loading raises ``RuleError`` naming the file instead of skipping it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, cast

from hubsight.detect.base import EventKind, Example, Finding, Rule, RuleContext, Severity
from hubsight.detect.content.examples import examples_path, load_examples
from hubsight.detect.families import FAMILIES
from hubsight.detect.sigma import SigmaCorrelation, SigmaDetection, SigmaLoad, SigmaLoader
from hubsight.detect.sigma.condition import Condition
from hubsight.detect.sigma.detection import SigmaConfig
from hubsight.detect.sigma.index import Indexed, Requirement
from hubsight.errors import RuleError
from hubsight.parsing.event import Event

CONTENT_DIR = Path(__file__).parent
_SUFFIX = ".yml"


class ShippedRule(Indexed, Rule[SigmaConfig]):
    """A Sigma rule of the shipped content, built from its config alone like a built-in rule.

    The converted rule (``loaded``, one per process) does the work; it keeps no state of its
    own (a correlation's windows live in the engine's context), so every engine shares it.
    """

    config_type = SigmaConfig
    loaded: ClassVar[SigmaDetection | SigmaCorrelation]
    examples_file: ClassVar[Path]
    # Where the rule is: its file and its document in it (hunting and LEQL read them).
    path: ClassVar[Path]
    document: ClassVar[int]

    def reads(self, kind: EventKind) -> bool:
        """What the converted rule reads."""
        return self.loaded.reads(kind)

    @property
    def requirement(self) -> Requirement:
        """What every record the converted rule matches carries (none known for correlations)."""
        loaded = self.loaded
        return loaded.requirement if isinstance(loaded, SigmaDetection) else ()

    @property
    def condition(self) -> Condition | None:
        """The converted rule's condition as its kind's matcher compiles it (None for
        correlations; see ``Indexed``)."""
        loaded = self.loaded
        return loaded.condition if isinstance(loaded, SigmaDetection) else None

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """The converted rule's findings."""
        return self.loaded.evaluate(event, ctx)

    def found(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """The converted rule's finding of an event its condition holds on (only a single-event
        rule has a condition, so only it is ever asked)."""
        return cast(SigmaDetection, self.loaded).found(event, ctx)

    def check(self, now: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """The converted rule's findings on the passing of time."""
        return self.loaded.check(now, ctx)

    def retention(self) -> timedelta:
        """How far back the converted rule's windows look."""
        return self.loaded.retention()

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``<rule>.examples.json``, parsed."""
        return load_examples(cls.examples_file)


@functools.cache
def content_rules() -> tuple[type[Rule[Any]], ...]:
    """Every shipped rule class, by family then file name (loaded once per process)."""
    classes: list[type[Rule[Any]]] = []
    for family in FAMILIES:
        folder = CONTENT_DIR / family
        if folder.is_dir():
            # One loader per family: a correlation names base rules of its own family.
            loads = SigmaLoader().load_files(sorted(folder.glob(f"*{_SUFFIX}")))
            classes += [_shipped(load, family) for load in loads if load.rule or not load.loaded]
    return tuple(classes)


def _shipped(load: SigmaLoad, family: str) -> type[ShippedRule]:
    if load.rule is None:
        raise RuleError(
            f"shipped rule {load.path} (document {load.document}) does not load: {load.reason}",
            hint="fix the rule file; shipped content must always load",
        )
    if not load.name or not load.name.startswith(f"{family}."):
        raise RuleError(
            f"shipped rule {load.path} (document {load.document}) has no name starting with "
            f"{family!r}.",
            hint="the Sigma 'name' of a shipped rule is its id: <family>.<what>",
        )
    # Informational rules note what is routine in most tenants: on the actor's timeline and in
    # later alerts about them, not alerted alone.
    notable = load.rule.meta.severity is Severity.INFO
    meta = replace(load.rule.meta, id=load.name, family=family, notable=notable)
    attributes = {
        "meta": meta,
        "loaded": load.rule,
        "examples_file": examples_path(load.path),
        "path": load.path,
        "document": load.document,
    }
    return cast(type[ShippedRule], type(f"Shipped_{load.name}", (ShippedRule,), attributes))
