"""Housekeeping of API tokens: one that ended over ``ENDED_TOKENS_KEPT_DAYS`` ago is deleted.

An expired or revoked token stays listed for a while so that its owner sees why a script stopped
(and the 401 names it); after that it is only clutter, and a row that names an account's
automation. ``hubsight run`` sweeps once a minute; each deletion is an audit entry by
``hubsight`` via ``housekeeping``, so that the trail says where a token went.
"""

from __future__ import annotations

from hubsight.store.audit import AuditLog
from hubsight.store.credentials import epoch_iso
from hubsight.store.tokens import DAY_S, ENDED_TOKENS_KEPT_DAYS, TokenInfo
from hubsight.store.users import UserStore

ACTOR = "hubsight"
VIA = "housekeeping"


def sweep_tokens(users: UserStore, audit: AuditLog) -> list[TokenInfo]:
    """Delete the tokens that ended over ``ENDED_TOKENS_KEPT_DAYS`` ago, each recorded; those."""
    cutoff = users.now() - ENDED_TOKENS_KEPT_DAYS * DAY_S
    ended = [t for t in users.tokens() if t.ended_at < cutoff]
    for token in ended:
        # Recorded first: a sweep cut short leaves an entry for a token still there (deleted,
        # and recorded again, next time), never a token gone without an entry.
        audit.record(
            actor=ACTOR,
            via=VIA,
            action="token.delete",
            target=token.name,
            details={
                "id": token.id,
                "label": token.label,
                "reason": "revoked" if token.revoked_at is not None else "expired",
                "ended_at": epoch_iso(token.ended_at),
                "kept_days": ENDED_TOKENS_KEPT_DAYS,
            },
        )
        users.delete_token(token.id)
    return ended
