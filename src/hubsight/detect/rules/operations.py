"""Admin-activity rules that match one operation: the declarative part of the rule set.

Each rule is a small class naming the operations it watches (Entra audit activity names or Azure
Resource Manager operation names, compared case-insensitively) and, optionally, markers the raw
record must contain (a role name, a role definition id, a permission). Activity Log writes one
record per phase of an operation (Started, Accepted, Succeeded); the dedup key is the actor and
the target, so the phases of one operation make one alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from hubsight.detect.base import (
    EventKind,
    EventRef,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
    numbered,
)
from hubsight.detect.rules.signals import ADMIN_LOG_SETS, admin
from hubsight.parsing.event import Event


def admin_meta(
    rule_id: str, title: str, severity: Severity, technique: str, runbook: str
) -> RuleMeta:
    """Metadata of an admin-activity rule."""
    return RuleMeta(
        id=rule_id,
        title=title,
        description=f"{title}, from the Cloud Service Admin Activity log set.",
        severity=severity,
        technique=technique,
        log_sets=ADMIN_LOG_SETS,
        runbook=runbook,
    )


class OperationConfig(RuleConfig):
    """Which raw markers qualify a matching operation (any of them; none means all qualify)."""

    markers: tuple[str, ...] = ()


def failed(event: Event) -> bool:
    """Whether an admin operation failed (it changed nothing)."""
    return failed_result(event.result)


def failed_result(result: str | None) -> bool:
    """Whether an admin operation with this result failed."""
    return result is not None and "FAIL" in result.upper()


def target_of(event: Event) -> str:
    """What an admin operation acted on, for titles and dedup keys."""
    return event.target_user or event.target_resource or event.resource_id or "unknown target"


class OperationRule(Rule[OperationConfig]):
    """Fires on a successful operation in ``operations`` whose record holds a marker."""

    config_type = OperationConfig
    operations: ClassVar[frozenset[str]]
    default_markers: ClassVar[tuple[str, ...]] = ()
    # Search markers only in the target's name instead of the whole record.
    markers_in_target: ClassVar[bool] = False
    # Operations that qualify without a marker (a deletion says it all).
    unconditional: ClassVar[frozenset[str]] = frozenset()
    example_raw: ClassVar[bytes] = b"{}"

    def __init__(self, config: OperationConfig) -> None:
        if not config.markers and self.default_markers:
            config = config.model_copy(update={"markers": self.default_markers})
        super().__init__(config)
        self._markers = tuple(m.lower().encode() for m in config.markers)
        self._operations = frozenset(op.upper() for op in self.operations | self.unconditional)
        self._unconditional = frozenset(op.upper() for op in self.unconditional)

    def reads(self, kind: EventKind) -> bool:
        """Only successful ``operations``."""
        return (
            super().reads(kind)
            and not failed_result(kind.result)
            and (kind.operation or "").strip().upper() in self._operations
        )

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Match the operation, the outcome and the markers."""
        # Azure pads some audit activity names with a trailing space.
        operation = (event.operation or "").strip().upper()
        if operation not in self._operations or failed(event):
            return
        marker = None if operation in self._unconditional else self._marker(event)
        if self._markers and marker is None and operation not in self._unconditional:
            return
        actor = event.user or event.initiated_by_app or "unknown actor"
        target = target_of(event)
        detail = f" ({marker})" if marker else ""
        yield Finding(
            entity=f"{actor}|{target}",
            title=f"{self.meta.title}: {actor} on {target}{detail}",
            at=event.timestamp,
            evidence=[EventRef.of(event)],
            user=event.target_user or event.user,
            source_ip=event.source_ip,
            context={"actor": actor, "operation": event.operation, "target": target},
        )

    def _marker(self, event: Event) -> str | None:
        if not self._markers:
            return None
        if self.markers_in_target:
            text = (event.target_resource or "").lower().encode()
        else:
            text = memoryview(event.raw).tobytes().lower()
            if event.modified_properties is not None:
                text += memoryview(event.modified_properties).tobytes().lower()
        for marker, original in zip(self._markers, self.config.markers, strict=True):
            if marker in text:
                return original
        return None

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The operation fires; the same operation failed, or another operation, does not."""
        operation = sorted(cls.operations - cls.unconditional)[0]
        target = "Tenant Admins" if cls.markers_in_target else "target-1"
        hit = admin(0, operation, raw=cls.example_raw, target_resource=target)
        cases = [
            Example(f"{operation} succeeded", [hit], fires=True),
            Example(
                f"{operation} failed",
                [admin(0, operation, raw=cls.example_raw, result="FAILURE")],
                fires=False,
            ),
            Example("an unrelated operation", [admin(0, "Update user")], fires=False),
        ]
        if cls.default_markers:
            cases.append(
                Example(
                    f"{operation} without a marker", numbered([admin(0, operation)]), fires=False
                )
            )
        return cases
