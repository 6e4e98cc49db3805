"""Print how many Sigma rules under a folder load, and why each other one does not.

    .venv/bin/python scripts/sigma-load.py /work/ext/sigmahq-azure/rules/cloud/azure

Point it at SigmaHQ's ``rules/cloud/azure`` checked out outside this repository (their rules
are read, never committed here).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hubsight.detect.sigma import load_sigma_rules


def main() -> None:
    """Load the folder given as the only argument and print the report."""
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: sigma-load.py FOLDER")
    folder = Path(sys.argv[1])
    loads = load_sigma_rules(folder)
    loaded = sum(load.loaded for load in loads)
    print(f"{loaded} of {len(loads)} Sigma rules load from {folder}")
    for load in loads:
        if not load.loaded:
            print(f"  {load.path.relative_to(folder)}: {load.reason}")


if __name__ == "__main__":
    main()
