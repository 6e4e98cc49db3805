"""The pySigma processing pipeline that fits Sigma's ``azure`` rules to Event Hub records.

For each logsource service (``fields.SERVICES``), conditioned on ``product: azure`` and that
service: reject a rule naming a field the service's records do not have (all such fields in one
reason), then map every field onto its record paths (several paths become an OR). PIM rules
also get the condition that the audit record was logged by PIM. A rule of any other logsource
is rejected first, naming its logsource.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    PreprocessingTransformation,
)
from sigma.processing.transformations.base import FieldMappingTransformationBase
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaFieldReference

from hubsight.detect.sigma.fields import SERVICES, Service

PRODUCT = "azure"
# Privileged Identity Management writes its activity to the audit log under this service name.
PIM_LOGGED_BY = "PIM"


@dataclass
class RejectOtherLogsources(PreprocessingTransformation):
    """Fails a rule whose logsource is not one of the supported azure services."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        """Raise, naming the rule's logsource and the supported ones."""
        super().apply(rule)
        wanted = ", ".join(f"{PRODUCT}/{name}" for name in sorted(SERVICES))
        if isinstance(rule, SigmaCorrelationRule):
            raise SigmaTransformationError(f"correlation rules are not supported; use {wanted}")
        source = rule.logsource
        if source.product is None:
            raise SigmaTransformationError(f"logsource has no product (supported: {wanted})")
        if source.product.lower() != PRODUCT:
            raise SigmaTransformationError(
                f"logsource product {source.product!r} is not {PRODUCT} (supported: {wanted})"
            )
        raise SigmaTransformationError(
            f"logsource service {source.service!r} is not supported (supported: {wanted})"
        )


@dataclass
class RejectUnknownFields(PreprocessingTransformation):
    """Fails a rule naming fields that its service's records do not have, listing them all."""

    service: Service

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        """Raise when any field of the rule's detections has no place in the records."""
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        unknown = sorted(
            {
                name
                for detection in rule.detection.detections.values()
                for name in _field_names(detection)
                if self.service.paths(name) is None
            }
        )
        explained = [
            self.service.absent[n.lower()] for n in unknown if n.lower() in self.service.absent
        ]
        if explained:
            raise SigmaTransformationError(explained[0])
        if unknown:
            noun = "field {} is" if len(unknown) == 1 else "fields {} are"
            raise SigmaTransformationError(
                f"{noun.format(', '.join(unknown))} not in {self.service.records} "
                f"({PRODUCT}/{self.service.name}); use {self.service.columns_hint}"
            )


def _field_names(detection: SigmaDetection) -> Iterator[str]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _field_names(item)
            continue
        if isinstance(item, SigmaDetectionItem):
            if item.field is not None:
                yield item.field
            yield from (v.field for v in item.value if isinstance(v, SigmaFieldReference))


@dataclass
class AzureFieldMapping(FieldMappingTransformationBase):
    """Maps Sigma field names (any case) onto the record paths of one service."""

    service: Service

    def apply_field_name(self, field: str | None) -> str | list[str] | None:
        """The record path(s) of ``field``; None leaves keywords and unknown names alone."""
        if field is None:
            return None
        paths = self.service.paths(field)
        if paths is None:
            return None
        return paths[0] if len(paths) == 1 else list(paths)


def _only(service: Service) -> list[RuleProcessingCondition]:
    # A condition belongs to one processing item: each item gets its own.
    return [LogsourceCondition(product=PRODUCT, service=service.name)]


def azure_pipeline() -> ProcessingPipeline:
    """A fresh pipeline (pySigma pipelines keep per-rule state, so one per loader)."""
    items = [
        ProcessingItem(
            identifier="hubsight_azure_logsource",
            transformation=RejectOtherLogsources(),
            rule_conditions=[LogsourceCondition(product=PRODUCT, service=s) for s in SERVICES],
            rule_condition_linking=any,
            rule_condition_negation=True,
        )
    ]
    for service in SERVICES.values():
        items.append(
            ProcessingItem(
                identifier=f"hubsight_azure_{service.name}_known_fields",
                transformation=RejectUnknownFields(service=service),
                rule_conditions=_only(service),
            )
        )
        if service.name == "pim":
            items.append(
                ProcessingItem(
                    identifier="hubsight_azure_pim_logged_by",
                    transformation=AddConditionTransformation(
                        conditions={"LoggedByService": PIM_LOGGED_BY}, name="hubsight_pim"
                    ),
                    rule_conditions=_only(service),
                )
            )
        items.append(
            ProcessingItem(
                identifier=f"hubsight_azure_{service.name}_field_mapping",
                transformation=AzureFieldMapping(service=service),
                rule_conditions=_only(service),
            )
        )
    return ProcessingPipeline(name="hubsight: azure logsources on Event Hub records", items=items)
