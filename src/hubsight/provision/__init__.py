"""`hubsight azure setup`: prints the Azure side of connecting hubsight; never runs it.

``plan`` checks the user's names and derives every Azure name and ID; ``azcli`` renders them as a
bash script of ``az`` commands, ``bicep`` as a template plus the lines that deploy it.
"""

from __future__ import annotations

from typing import Literal

from hubsight.provision import azcli, bicep
from hubsight.provision.plan import SetupPlan

Format = Literal["az", "bicep"]


def render(plan: SetupPlan, form: Format) -> str:
    """The setup in the format asked for."""
    return azcli.render(plan) if form == "az" else bicep.render(plan)


__all__ = ["Format", "SetupPlan", "render"]
