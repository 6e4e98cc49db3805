"""``hubsight source test``: walk a connection step by step and say where it breaks.

The steps are the transport's (``SourceDriver.checks``); this runs them in order and skips
every step after a failed one, since each step needs what the earlier ones found.
"""

from __future__ import annotations

from hubsight.sources.base import Step
from hubsight.sources.config import SourceConfig
from hubsight.sources.registry import driver_for


def probe_source(config: SourceConfig, timeout: float = 10.0) -> list[Step]:
    """Run every step of ``config``'s transport in order; after a failure the rest are skipped."""
    steps: list[Step] = []
    for name, check in driver_for(config).checks(config, timeout):
        # A skipped step counts as ok, so look at every earlier step, not just the last.
        if any(not step.ok for step in steps):
            steps.append(Step(name, "skipped", "an earlier step failed"))
            continue
        steps.append(check())
    return steps
