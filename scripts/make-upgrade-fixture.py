"""Write a small data directory with an older hubsight, as an upgrade-test fixture.

    python3 scripts/make-upgrade-fixture.py COMMIT NAME

checks COMMIT out in a temporary worktree, runs that release's own code (with this venv's
libraries) to store a source with a secret, four events and (where the release has them)
console users, and packs the directory as tests/data/datadirs/NAME.tar.gz. The secret key
file is fixed (FIXTURE_KEY) and packed with it, as in a real data directory.

A NAME starting with ``detect-`` writes only ``detect.sqlite3`` instead (DETECT_WRITER): two
alerts of the unusual-flow rule, both delivered to the webhook target ``soar``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_KEY = "dXBncmFkZS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU="
# Runs inside the old release: only APIs every release since the collector has.
WRITER = """
import json, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
import msgspec
from hubsight.parsing.event import Event, LogSet
from hubsight.sources.config import make_source
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore

data = Path(sys.argv[1])
Catalog(data).add(make_source({"name": "relay", "profile": {"kind": "kafka",
    "bootstrap": "relay.contoso.com:9093", "sasl": "plain", "username": "hubsight",
    "password": "fixture-password"}, "topics": ["insights-operational-logs"]}))
start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
sets = [LogSet.INGRESS_AUTHENTICATION] * 3 + [LogSet.UNPARSED_DATA]
store = EmbeddedStore(data)
store.write([Event(timestamp=start + timedelta(minutes=n), log_set=s, log_name="relay",
    raw=msgspec.Raw(json.dumps({"n": n}).encode()), source_topic="insights-operational-logs",
    source_partition=0, source_offset=n, record_index=0) for n, s in enumerate(sets)])
store.close()
try:
    from argon2 import PasswordHasher
    from hubsight.store.users import UserStore
except ImportError:
    pass
else:
    UserStore(data, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)).create(
        "root", "fixture passphrase", "admin")
"""

# Runs inside the old release: the engine raises an unusual-flow alert at 0 h and at 25 h, and
# its notifier records both as delivered to "webhook:soar" (a channel that accepts everything).
DETECT_WRITER = """
import sys
from datetime import timedelta
from pathlib import Path
import msgspec
from hubsight.detect.db import DetectDB
from hubsight.detect.engine import DetectionEngine, EngineOptions
from hubsight.detect.notify import Notifier
from hubsight.detect.rules.auth_signals import FlowConfig, UnusualAuthFlow

class Accepts:
    name, severities, retries, per = "webhook:soar", ("Medium",), 0, "alert"
    def deliver(self, alert, *, withdrawn=None):
        pass

db = DetectDB.in_dir(Path(sys.argv[1]))
engine = DetectionEngine(db, [UnusualAuthFlow(FlowConfig(lookback_days=1))],
    options=EngineOptions(learning=timedelta(0)))
notifier = Notifier([Accepts()], db)
(example,) = [e.events[0] for e in UnusualAuthFlow.examples() if e.fires][:1]
for offset, hours in enumerate((0, 25)):
    event = msgspec.structs.replace(example, timestamp=example.timestamp + timedelta(hours=hours),
        source_offset=offset)
    notifier.send(engine.process([event]), engine.withdrawn_alerts, engine.opened_investigations)
engine.close()
"""


def main(commit: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree, data = Path(tmp) / "tree", Path(tmp) / "data"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                       check=True)  # fmt: skip
        try:
            data.mkdir()
            (data / "secret.key").write_text(FIXTURE_KEY)
            (data / "secret.key").chmod(0o600)
            env = {k: v for k, v in os.environ.items() if k != "HUBSIGHT_SECRET_KEY"}
            env["PYTHONPATH"] = str(tree / "src")
            writer = DETECT_WRITER if name.startswith("detect-") else WRITER
            subprocess.run([sys.executable, "-c", writer, str(data)], check=True, env=env)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=True)  # fmt: skip
        out = ROOT / "tests/data/datadirs" / f"{name}.tar.gz"
        with tarfile.open(out, "w:gz") as archive:
            archive.add(data, arcname="data")
        print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
