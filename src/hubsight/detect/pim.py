"""What a PIM activation record says (who activated which Entra role), and what it teaches.

Entra ID writes "Add member to role completed (PIM activation)" (``loggedByService`` PIM,
category RoleManagement; the audit activity reference, PIM section) when a user's activation of
a role they are eligible for takes effect. The record names the role as a target of type
``Role`` (its display name) beside the user (``User``) and the request (``Request``); the parser
keeps only the first target as ``target_resource``, so the role is read from the record itself.

The engine feeds every successful activation to the activating user's own baseline (kind
``pim_role``, the role's display name) after the rules saw it, as it feeds sign-ins: a rule
asking "activated before?" learns of an activation only from those before it by event time.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from hubsight.detect.baseline import UserBaseline
from hubsight.parsing.event import Event, LogSet

PIM_ACTIVATION = "Add member to role completed (PIM activation)"
ROLE_KIND = "pim_role"
_ACTIVATION = PIM_ACTIVATION.upper()


class Activation(NamedTuple):
    """A successful PIM activation: the user (lower-cased UPN) and the role's display name."""

    user: str
    role: str


class _Target(msgspec.Struct):
    type: str | None = None
    displayName: str | None = None


class _Properties(msgspec.Struct):
    targetResources: list[_Target] | None = None


class _Record(msgspec.Struct):
    properties: _Properties | None = None


_DECODER = msgspec.json.Decoder(_Record)


def is_activation(operation: str | None) -> bool:
    """Whether an audit activity is a completed PIM activation (any case, padding ignored)."""
    return operation is not None and operation.strip().upper() == _ACTIVATION


def activation(event: Event) -> Activation | None:
    """Who activated which role, for a successful PIM activation naming both; else None."""
    if event.log_set is not LogSet.CLOUD_SERVICE_ADMIN_ACTIVITY or event.result != "SUCCESS":
        return None
    if not is_activation(event.operation):
        return None
    # The role went to the user the record targets; the initiator is the same user, unless
    # the PIM service itself is named as initiator.
    user = event.target_user or event.user
    role = _role(event)
    return Activation(user, role) if user and role else None


def _role(event: Event) -> str | None:
    if event.target_type is not None and event.target_type.lower() == "role":
        return event.target_resource
    try:
        record = _DECODER.decode(event.raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    targets = record.properties.targetResources if record.properties else None
    for target in targets or ():
        if (target.type or "").lower() == "role" and target.displayName:
            return target.displayName
    return None


def observe_activation(
    baselines: dict[str, UserBaseline], event: Event, ts: float, horizon: float
) -> str | None:
    """Teach the activating user's baseline the role of a successful PIM activation ``event``.

    Returns the subject whose baseline changed (None: the event is no such activation).
    """
    found = activation(event)
    if found is None:
        return None
    baseline = baselines.get(found.user)
    if baseline is None:
        baseline = baselines[found.user] = UserBaseline()
    baseline.observe(ROLE_KIND, found.role, ts, horizon)
    return found.user
