"""PIM activations: a privileged role a user had not activated in the baseline horizon.

In a tenant using Privileged Identity Management, administrators activate the roles they are
eligible for (Global Administrator included) every day by design, so an alert per activation
is noise. What a SOC wants to see is the unusual one: a user activating a privileged role they
had not activated in the horizon (90 days) before, as an attacker holding an eligible admin's
account does. The roles a user activated are their baseline (``detect/pim.py``); like the other
first-seen rules this one judges by event time, keeps first activations for the lateness, and a
late, earlier activation of the same role withdraws the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from hubsight.detect.base import (
    EventKind,
    Example,
    Finding,
    Rule,
    RuleConfig,
    RuleContext,
    RuleMeta,
    Severity,
)
from hubsight.detect.baseline import from_epoch
from hubsight.detect.content.examples import load_examples
from hubsight.detect.pim import PIM_ACTIVATION, ROLE_KIND, Activation, is_activation
from hubsight.detect.rules.admin import privileged_activation
from hubsight.detect.rules.signals import ADMIN_LOG_SETS, SUCCESS, entry_of
from hubsight.detect.windows import Entry
from hubsight.parsing.event import Event

EXAMPLES_DIR = Path(__file__).parent / "examples"


class PimActivationUnusual(Rule[RuleConfig]):
    """A privileged role activated in PIM by a user who had not activated it in the horizon."""

    meta = RuleMeta(
        id="entra.pim_activation_unusual",
        title="Privileged role activated in PIM, not activated by the user before",
        description='A successful PIM activation ("Add member to role completed (PIM '
        'activation)") of a privileged Entra role (Global Administrator, Privileged Role '
        "Administrator and the others `admin.privileged_role_granted` watches) by a user who "
        "had not activated that role in the baseline horizon (90 days) before it, by event "
        "time. Activating it again within the horizon raises nothing: routine activations of "
        "PIM are not alerts, and a grant of a role is `admin.privileged_role_granted`'s. Silent "
        "during the learning period, which learns the roles activated in it. A late, earlier "
        "activation of the role withdraws the alert; one arriving later than the lateness "
        "(24 h) is not judged.",
        severity=Severity.MEDIUM,
        technique="T1078.004",
        log_sets=ADMIN_LOG_SETS,
        runbook="Ask the user, on a channel other than their account, why they activated the "
        "role now (the justification is in the record's additionalDetails); review what they "
        "did while it was active (Log Search by user over the activation's hours). If they "
        "did not activate it, remove the active assignment, revoke their sessions and reset "
        "their credentials and MFA methods.",
        uses_baseline=True,
        windowed=True,
        results=frozenset({SUCCESS}),
        family="entra",
    )
    # The audit activity it waits for (checked against Microsoft's reference by the tests).
    operations = frozenset({PIM_ACTIVATION})

    def reads(self, kind: EventKind) -> bool:
        """Successful PIM activations only."""
        return super().reads(kind) and is_activation(kind.operation)

    def evaluate(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """Fire when the user had not activated the role in the horizon; revise later ones."""
        found = privileged_activation(event)
        if found is None:
            return
        at = event.timestamp
        # Corrections first: an alert moving to this activation is then replaced, not merged.
        yield from self._corrections(found, at, ctx)
        horizon = ctx.baseline_horizon
        if ctx.baseline(found.user).seen(ROLE_KIND, found.role, at, horizon):
            return
        # Kept for the lateness: a late, earlier activation may still show it was not the first.
        entry = entry_of(event, f"{found.role}\t{event.source_ip or ''}")
        ctx.window(found.user).add(entry)
        if not ctx.learning(at):
            yield self._finding(found, entry, ctx)

    def correct(self, event: Event, ctx: RuleContext) -> Iterable[Finding]:
        """What an excepted activation changes about later first activations."""
        found = privileged_activation(event)
        return () if found is None else self._corrections(found, event.timestamp, ctx)

    def _corrections(self, found: Activation, at: datetime, ctx: RuleContext) -> Iterable[Finding]:
        """Withdraw the alerts of later first activations of the role that ``at`` precedes."""
        baseline = ctx.baseline(found.user)
        # Only an activation earlier than some role's latest first one can change anything.
        if not baseline.starts_after(ROLE_KIND, at):
            return
        horizon = ctx.baseline_horizon
        ts = at.timestamp()
        for later in ctx.window(found.user).between(ts, ts + horizon.total_seconds()):
            if later.ts == ts or later.value.split("\t", 1)[0] != found.role:
                continue
            then = from_epoch(later.ts)
            # Known then already: an earlier correction withdrew it, or it never fired.
            if baseline.seen(ROLE_KIND, found.role, then, horizon) or ctx.learning(then):
                continue
            yield self._finding(found, later, ctx, retract=True)

    def _finding(
        self, found: Activation, entry: Entry, ctx: RuleContext, *, retract: bool = False
    ) -> Finding:
        horizon = ctx.baseline_horizon
        known = ctx.baseline(found.user).known(ROLE_KIND, from_epoch(entry.ts), horizon)
        ip = entry.value.split("\t", 1)[1]
        return Finding(
            entity=f"{found.user}|{found.role}",
            title=f"{found.user} activated {found.role} in PIM, not activated in "
            f"{horizon.days} days before",
            at=from_epoch(entry.ts),
            evidence=[entry.ref],
            user=found.user,
            source_ip=ip or None,
            baseline=f"roles this user activated in {horizon.days} days: "
            f"{', '.join(known) or 'none'}; now: {found.role}",
            retract=retract,
        )

    @classmethod
    def examples(cls) -> Sequence[Example]:
        """The records of ``examples/pim_activation_unusual.examples.json``, parsed."""
        return load_examples(EXAMPLES_DIR / "pim_activation_unusual.examples.json")


RULES = (PimActivationUnusual,)
