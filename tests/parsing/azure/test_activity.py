"""Activity Log in the Event Hubs shape: the rules behind the samples."""

from __future__ import annotations

from typing import Any

import pytest

from hubsight.parsing.azure.activity import decode_activity, properties_of

from tests.parsing.samples import parse_bytes, resource_record


def _record(properties: object, **top: Any) -> bytes:
    return resource_record(
        "ServiceHealth", "Microsoft.ServiceHealth/incident/action", properties, **top
    )


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        # Nested as Microsoft's mapping documents it, as an object or as JSON in a string.
        ({"eventProperties": {"stage": "Active"}}, "Active"),
        ({"eventProperties": '{"stage": "Active"}'}, "Active"),
        # The envelope's own key wins over the nested one.
        ({"stage": "Resolved", "eventProperties": {"stage": "Active"}}, "Resolved"),
        ({"stage": "Active"}, "Active"),
        ({"eventProperties": "not json"}, None),
        ({"eventProperties": ["a"]}, None),
        ('{"eventProperties": {"stage": "Active"}}', "Active"),
    ],
)
def test_event_properties_are_read_nested_or_flat(properties: object, expected: str | None) -> None:
    props = properties_of(decode_activity(_record(properties)))
    assert props.get("stage") == expected


def test_result_description_is_the_description_when_the_rest_field_is_absent() -> None:
    (event,) = parse_bytes(_record({}, resultDescription="from Event Hubs"))
    assert event["description"] == "from Event Hubs"
    (event,) = parse_bytes(_record({}, resultDescription="eh", description="rest"))
    assert event["description"] == "rest"
