"""What every Azure parser is built with: the run's GeoIP lookups and the users it has met.

Both are per-run state handed to each parser by ``build_registry``, never module globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubsight.parsing.geoip import GeoIP

# Enough for the users of a large tenant; past it the map starts again (like the GeoIP caches)
# rather than grow without bound on a stream of made-up ids.
_KNOWN_USERS_LIMIT = 200_000


@dataclass(slots=True)
class KnownUsers:
    """Entra user object ids mapped to their UPN, learned from the sign-ins parsed so far.

    Graph activity and resource logs name the caller by object id only; a sign-in of the same
    user (usually minutes earlier in the same stream) names both.
    """

    limit: int = _KNOWN_USERS_LIMIT
    _upns: dict[str, str] = field(default_factory=dict, repr=False)

    def learn(self, user_id: str | None, upn: str | None) -> None:
        """Remember that ``user_id`` signs in as ``upn`` (both as Entra wrote them)."""
        if not user_id or not upn or "@" not in upn:
            return
        key = user_id.lower()
        if self._upns.get(key) == upn:
            return
        if len(self._upns) >= self.limit:
            self._upns.clear()
        self._upns[key] = upn

    def upn_of(self, user_id: str | None) -> str | None:
        """The UPN last seen signing in with ``user_id``, or None."""
        return self._upns.get(user_id.lower()) if user_id else None


@dataclass(frozen=True, slots=True)
class ParserDeps:
    """The shared state a parser module's class is built with."""

    geoip: GeoIP = field(default_factory=GeoIP)
    users: KnownUsers = field(default_factory=KnownUsers)
