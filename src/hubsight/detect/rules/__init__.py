"""The shipped rule set, listed explicitly: adding a rule is one class and one line here."""

from __future__ import annotations

from typing import Any

from hubsight.detect.base import Rule
from hubsight.detect.rules import (
    admin,
    auth_baseline,
    auth_signals,
    auth_volume,
    azure_activity,
    data_exposure,
    dataplane,
    network,
    pim,
    platform,
    thirdparty,
)

BUILTIN_RULES: tuple[type[Rule[Any]], ...] = (
    *auth_volume.RULES,
    *auth_signals.RULES,
    *auth_baseline.RULES,
    *admin.RULES,
    *pim.RULES,
    *azure_activity.RULES,
    *network.RULES,
    *data_exposure.RULES,
    *dataplane.RULES,
    *thirdparty.RULES,
    *platform.RULES,
)
