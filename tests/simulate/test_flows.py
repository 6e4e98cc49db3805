"""Records of one request or flow share its correlationId, as Azure writes them: an interrupted
interactive sign-in and the records that finish it, an ARM operation's start and end; token
refreshes are each a request of their own."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from hubsight.simulate import SimulationConfig
from hubsight.simulate.draft import Context
from hubsight.simulate.signins import ANSWERED_AFTER, own_sign_in, sign_in_flow
from hubsight.simulate.tenant import build_tenant

from .runs import DAY_START, Run, simulate

Record = dict[str, Any]
# Interrupts and what may finish the flow after each.
_FINISHES = {50074: {0, 50140, 500121}, 50140: {0}, 16000: {0}}


def _created(record: Record) -> datetime:
    return datetime.fromisoformat(record["properties"]["createdDateTime"])


def _code(record: Record) -> int:
    code: int = record["properties"]["status"]["errorCode"]
    return code


def _sign_ins(seed: int) -> list[Record]:
    config = SimulationConfig(
        seed=seed,
        rate=40,
        users=30,
        start=DAY_START + timedelta(hours=8),
        duration=timedelta(minutes=20),
        categories=("SignInLogs", "NonInteractiveUserSignInLogs"),
    )
    return simulate(config).records()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_interrupted_sign_in_and_what_finishes_it_are_one_flow(seed: int) -> None:
    records = _sign_ins(seed)
    flows: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        assert record["correlationId"] == record["properties"]["correlationId"]
        flows[record["correlationId"]].append(record)
    interrupted = 0
    for flow in flows.values():
        flow.sort(key=_created)
        first = flow[0]
        # One user, app, session and first request through the flow.
        for key in ("userId", "appId", "sessionId", "ipAddress"):
            assert {r["properties"][key] for r in flow} == {first["properties"][key]}
        assert {r["properties"]["originalRequestId"] for r in flow} == {first["properties"]["id"]}
        assert len({r["properties"]["id"] for r in flow}) == len(flow)
        # Every step but the last is an interrupt, answered seconds later.
        for step, following in itertools.pairwise(flow):
            code = _code(step)
            assert code in _FINISHES, f"{code} followed by {_code(following)} in one flow"
            assert _code(following) in _FINISHES[code]
            gap = (_created(following) - _created(step)).total_seconds()
            low, high = ANSWERED_AFTER[code]
            assert low <= gap <= high
            interrupted += 1
        assert _code(flow[-1]) not in _FINISHES, "a flow left at its interrupt"
        if len(flow) > 1:
            assert {r["category"] for r in flow} == {"SignInLogs"}
        if _code(flow[-1]) == 0 and 50074 in {_code(r) for r in flow}:
            finished = flow[-1]["properties"]
            assert finished["authenticationRequirement"] == "multiFactorAuthentication"
            assert finished["status"]["additionalDetails"] == "MFA completed in Azure AD"
    # Interrupts are a few percent of interactive sign-ins, as in real tenants.
    interactive = sum(1 for r in records if r["category"] == "SignInLogs")
    assert 0.03 * interactive < interrupted < 0.12 * interactive


@pytest.mark.parametrize("seed", [1, 2])
def test_token_refreshes_are_requests_of_their_own(seed: int) -> None:
    records = _sign_ins(seed)
    counts = Counter(r["correlationId"] for r in records)
    refreshes = [r for r in records if r["category"] == "NonInteractiveUserSignInLogs"]
    assert len(refreshes) > 100
    for record in refreshes:
        assert counts[record["correlationId"]] == 1
        assert record["properties"]["originalRequestId"] == record["properties"]["id"]


def test_a_flow_after_mfa_ends_with_mfa_done_and_needs_known_interrupts() -> None:
    rng = random.Random(5)
    ctx = Context(rng, build_tenant(random.Random(5), users=20))
    user = ctx.tenant.users[0]
    when = DAY_START + timedelta(hours=9)
    last = own_sign_in(ctx, user, user.devices[0], when, True, 0)
    asked, kmsi, done = (
        d.record["properties"] for d in sign_in_flow(ctx, when, last, (50074, 50140, 0))
    )
    assert asked["authenticationRequirement"] == "multiFactorAuthentication"
    assert [s["succeeded"] for s in asked["authenticationDetails"]] == [True, False]
    # The "Stay signed in?" question comes after MFA was done.
    assert kmsi["authenticationDetails"][-1]["authenticationStepResultDetail"] == (
        "MFA successfully completed"
    )
    assert done["status"] == {"errorCode": 0, "additionalDetails": "MFA completed in Azure AD"}
    with pytest.raises(ValueError, match="50126 does not interrupt a sign-in flow"):
        sign_in_flow(ctx, when, last, (50126, 0))


def test_an_arm_operations_start_and_end_share_its_correlation_id(day: Run) -> None:
    operations: dict[str, list[Record]] = defaultdict(list)
    for record in day.records():
        if record.get("category") == "Administrative":
            operations[record["correlationId"]].append(record)
    assert len(operations) > 50
    for records in operations.values():
        records.sort(key=lambda r: r["time"])
        results = [r["resultType"] for r in records]
        assert results in (
            ["Start", "Success"],
            ["Start", "Failure"],
            ["Start", "Accept", "Success"],
        )
        # Only an asynchronous operation's end is not an HTTP answer.
        assert ("statusCode" in records[-1]["properties"]) == ("Accept" not in results)
        assert len({r["operationName"] for r in records}) == 1
        assert len({r["resourceId"] for r in records}) == 1
    # ARM answers a virtual machine's start 202 Accepted and writes its role assignments at once.
    by_action: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for records in operations.values():
        by_action[records[0]["operationName"]].add(tuple(r["resultType"] for r in records))
    assert by_action["MICROSOFT.COMPUTE/VIRTUALMACHINES/START/ACTION"] == {
        ("Start", "Accept", "Success")
    }
    assert by_action["MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"]
    assert by_action["MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"] <= {
        ("Start", "Success"),
        ("Start", "Failure"),
    }
