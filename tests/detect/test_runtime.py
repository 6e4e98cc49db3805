"""``Detection``: what the collector calls after each stored batch, across a restart."""

from __future__ import annotations

import socket
from pathlib import Path

from hubsight.detect.rules.auth_volume import BruteForceSuccess
from hubsight.detect.runtime import Detection


def test_on_stored_alerts_notifies_once_and_survives_restart(tmp_path: Path) -> None:
    (example,) = [e for e in BruteForceSuccess.examples() if e.fires]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(0.5)
        port = server.getsockname()[1]
        (tmp_path / "detect.toml").write_text(
            "learning_days = 0\n"
            "[[notify.syslog]]\n"
            f'host = "127.0.0.1"\nport = {port}\nseverities = ["High"]\n'
        )
        detection = Detection.open(tmp_path)
        alerts = detection.on_stored(example.events)
        detection.close()
        assert {a.rule_id for a in alerts if a.revision == 1} == {
            "auth.brute_force",
            "auth.brute_force_success",
        }
        # Only the High one goes to this channel.
        first, _ = server.recvfrom(65535)
        assert b"auth.brute_force_success" in first

        again = Detection.open(tmp_path)
        replayed = again.on_stored(example.events)
        again.close()
        assert replayed == []
        try:
            extra = server.recvfrom(65535)[0]
        except TimeoutError:
            extra = b""
        assert extra == b"", "a replayed batch was notified again"
