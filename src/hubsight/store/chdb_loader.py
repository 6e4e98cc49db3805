"""chdb's session module, imported without pyarrow.

chdb imports pyarrow (and with it numpy) whenever it is installed, for Arrow and DataFrame
results the store never asks for: ~70 MB of a long-running process's memory, ~60 MB of it
their libraries' pages (README, "Memory"). Marked absent, chdb goes without it, as it does
where pyarrow is not installed; a program that imported pyarrow first keeps it.
"""

import sys

sys.modules.setdefault("pyarrow", None)  # type: ignore[arg-type]

from chdb import session as chdb_session  # noqa: E402

__all__ = ["chdb_session"]
