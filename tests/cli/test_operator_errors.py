"""What an operator meets when something is wrong: one error line and a hint, the contract's exit
code, no traceback and no secret, from the real ``hubsight`` process."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from hubsight.devbroker import free_port

from tests.faults import SmallDisk
from tests.support import PLANTED_PASSWORD, assert_no_secret, hubsight_process


def _refused(run: subprocess.CompletedProcess[str], code: int) -> str:
    """stderr of a run that failed as the contract says: the code, `error:` and `hint:` lines."""
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    assert run.returncode == code, run.stderr
    lines = run.stderr.splitlines()
    assert lines[0].startswith("error: "), run.stderr
    assert lines[-1].startswith("hint: "), run.stderr
    return run.stderr


@pytest.mark.parametrize(
    ("target", "place"),
    [
        # A URL that is refused is the URL holding a token (Slack's, Teams').
        (f'url = "ftp://hooks.example/T0/{PLANTED_PASSWORD}"', "notify.webhooks.0.url: "),
        # A target missing a field was shown whole, its header or URL with it.
        (f'auth_header = "Bearer {PLANTED_PASSWORD}"', "notify.webhooks.0.url: Field required"),
        (
            f'url = "https://hooks.example/{PLANTED_PASSWORD}"\nretries = 99',
            "notify.webhooks.0.retries: Input should be less than or equal to 10",
        ),
    ],
)
def test_a_refused_notification_target_in_detect_toml_never_shows_its_values(
    data_dir: Path, target: str, place: str
) -> None:
    (data_dir / "detect.toml").write_text(f'[[notify.webhooks]]\nname = "soar"\n{target}\n')
    stderr = _refused(hubsight_process(data_dir, "notify", "list"), 2)
    assert f"detect.toml is not valid: {place}" in stderr
    assert_no_secret(stderr)


def test_a_detect_toml_that_is_no_utf8_text_is_named_with_the_fix(data_dir: Path) -> None:
    (data_dir / "detect.toml").write_bytes(b'lateness_hours = 24\nnote = "\xff\xfe"\n')
    stderr = _refused(hubsight_process(data_dir, "rules", "list"), 2)
    assert "detect.toml cannot be read: 'utf-8' codec can't decode byte 0xff" in stderr
    assert "hint: make it a UTF-8 text file" in stderr


def test_a_path_the_system_refuses_is_named_with_the_fix(tmp_path: Path) -> None:
    # A data directory, or a backup's, under what is a file: the system's error was a traceback.
    (tmp_path / "file").write_text("not a directory\n")
    data_dir = tmp_path / "file" / "data"
    stderr = _refused(hubsight_process(data_dir, "status"), 1)
    assert stderr == (
        f"error: {data_dir}: Not a directory\n"
        "hint: a part of the path is a file, not a directory: check the path\n"
    )
    stderr = _refused(hubsight_process(tmp_path / "data", "backup", str(data_dir)), 1)
    assert stderr.startswith(f"error: {data_dir}: Not a directory\n")


def test_a_read_only_data_directory_is_named_with_the_fix(tmp_path: Path) -> None:
    with SmallDisk(tmp_path / "disk", 64) as disk:
        data_dir = disk.path / "data"
        assert hubsight_process(data_dir, "retention", "list").returncode == 0
        disk.read_only()
        stderr = _refused(hubsight_process(data_dir, "search", "where(user=x)"), 1)
        # The engine's own reason said nothing of the disk, and a failed query ate the hint.
        assert stderr == (
            f"error: cannot open the event store in {data_dir / 'clickhouse'}: it is not "
            "writable\nhint: a read-only file system, or another user's directory: remount it "
            "read-write, run as its owner, or pass a different --data-dir\n"
        )
        stderr = _refused(hubsight_process(data_dir, "run", "--no-web"), 1)
        assert stderr == (
            f"error: {data_dir / 'run.lock'}: Read-only file system\n"
            "hint: the file system is read-only: remount it read-write, or use another path\n"
        )


def test_an_imported_rules_bad_exception_address_is_refused_at_start_like_a_shipped_ones(
    data_dir: Path, tmp_path: Path
) -> None:
    # It was taken unchecked, and the rule failed on every event it matched: it never alerted.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "any_success.yml").write_text(
        "title: Any successful sign-in\nid: 6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d4c\nstatus: test\n"
        "logsource:\n  product: azure\n  service: signinlogs\n"
        "detection:\n  selection:\n    ResultType: 0\n  condition: selection\nlevel: medium\n"
    )
    rule_id = "sigma.6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d4c"
    record = Path(__file__).parents[1] / "data/azure/SignInLogs/success-mfa-push.json"
    replay = ["detect", "--replay", "--rules", str(rules), "--input", str(record)]
    matched = hubsight_process(data_dir, *replay)
    assert matched.returncode == 0, matched.stderr
    assert f'"rule_id":"{rule_id}"' in matched.stdout
    (data_dir / "detect.toml").write_text(
        f'[rules."{rule_id}"]\nexceptions = {{ ips = ["203.0.113.7", "999.1.1.1"] }}\n'
    )
    stderr = _refused(hubsight_process(data_dir, *replay), 2)
    assert stderr == (
        f"error: {rule_id}: rule exception '999.1.1.1' does not appear to be an IPv4 or IPv6 "
        "network\nhint: give IPs as 203.0.113.7 or CIDRs as 10.0.0.0/8\n"
    )


def test_run_stops_at_once_when_its_console_cannot_listen(data_dir: Path) -> None:
    # uvicorn's thread logged the error and `run` went on with no console, API, /metrics or
    # /health: a supervisor saw it running.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = hubsight_process(data_dir, "run", "--port", str(port))
    assert "Traceback" not in run.stderr
    assert run.returncode == 1
    # After `run`'s log lines (it tightens the data directory's modes first).
    assert run.stderr.endswith(
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
        "hint: another process may listen there (`ss -ltnp`): stop it, or give --port another "
        "port; ports below 1024 need privileges\n"
    )
    refused = hubsight_process(data_dir, "run", "--port", "65536")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "Invalid value for '--port': 65536 is not in the range 0<=x<=65535." in refused.stderr


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"HUBSIGHT_TLS_CERT": "{cert}"},
         "only one of HUBSIGHT_TLS_CERT and HUBSIGHT_TLS_KEY is set"),
        ({"HUBSIGHT_TLS_CERT": "{cert}", "HUBSIGHT_TLS_KEY": "{missing}"},
         "the TLS certificate or key cannot be used: "),
        ({"HUBSIGHT_SESSION_IDLE": "banana"}, "HUBSIGHT_SESSION_IDLE='banana' is not a duration"),
        # uvicorn took a host name (or 10.0.1.5/24) as a literal it never matches: no proxy was
        # believed, and nothing said so.
        ({"HUBSIGHT_TRUSTED_PROXIES": "10.0.0.5, proxy.example"},
         "HUBSIGHT_TRUSTED_PROXIES: 'proxy.example' is not an IP address or network"),
        ({"HUBSIGHT_TRUSTED_PROXIES": "10.0.1.5/24"},
         "HUBSIGHT_TRUSTED_PROXIES: '10.0.1.5/24' is not an IP address or network"),
    ],
)  # fmt: skip
def test_a_bad_console_setting_stops_run_before_anything_starts(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    error: str,
) -> None:
    """The console's settings were refused after the store and detection had started, which
    were never closed: chdb's "Exception in global_context->shutdown()" followed the error, once
    a segmentation fault (exit 139)."""
    cert = tmp_path / "console.pem"
    cert.write_text("not a certificate\n")
    for name in ("HUBSIGHT_TLS_CERT", "HUBSIGHT_TLS_KEY", "HUBSIGHT_SESSION_IDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(cert=cert, missing=tmp_path / "missing.key"))
    run = hubsight_process(data_dir, "run", "--port", str(free_port()))
    assert "Traceback" not in run.stderr
    assert run.returncode == 2, run.stderr
    # After `run`'s log lines (it tightens the data directory's modes first).
    last, hint = run.stderr.splitlines()[-2:]
    assert last.startswith(f"error: {error}")
    assert hint.startswith("hint: ")
    assert "global_context" not in run.stderr
    assert not (data_dir / "clickhouse").exists()


def test_an_event_store_that_cannot_be_opened_says_what_to_do(data_dir: Path) -> None:
    # Not an event store's files (here a file where the engine keeps a directory): the engine's
    # reason came alone, with no hint.
    (data_dir / "clickhouse").mkdir()
    (data_dir / "clickhouse" / "metadata").write_text("not a directory\n")
    stderr = _refused(hubsight_process(data_dir, "search", "where(user=x)"), 1)
    assert stderr.startswith(
        f"error: cannot open the event store in {data_dir / 'clickhouse'}: event store query "
        "failed: "
    )
    assert stderr.endswith(
        "hint: `hubsight doctor` checks the event store; if its files are damaged, restore a "
        "`hubsight backup` into a new --data-dir\n"
    )


def test_status_of_a_data_directory_that_does_not_exist_says_so_and_makes_none(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "typo"
    text = hubsight_process(missing, "status")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"no data directory at {missing}: nothing has run with it")
    report = json.loads(hubsight_process(missing, "status", "--json").stdout)
    assert report["data_dir_exists"] is False
    assert report["sources"] == []
    assert not missing.exists()
    # An existing one is looked at as before, and says it exists.
    missing.mkdir()
    report = json.loads(hubsight_process(missing, "status", "--json").stdout)
    assert report["data_dir_exists"] is True


def test_an_unreachable_clickhouse_server_is_one_error_line_without_the_drivers_log(
    data_dir: Path,
) -> None:
    port = free_port()
    run = hubsight_process(
        data_dir, "--store", f"clickhouse://default@127.0.0.1:{port}/db", "search", "corp"
    )
    # clickhouse-connect printed "Unexpected Http Driver Exception" first, and the error held
    # urllib3's whole retry message.
    assert run.stderr == (
        f"error: cannot reach the ClickHouse server at 127.0.0.1:{port}: Connection refused\n"
        "hint: check the host, port and user, and HUBSIGHT_STORE_PASSWORD\n"
    )
    assert run.returncode == 1


def test_source_test_against_something_not_kafka_prints_only_its_steps(data_dir: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        stop = threading.Event()

        def answer_like_a_web_server() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    peer, _ = server.accept()
                except TimeoutError:
                    continue
                with peer:
                    peer.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_like_a_web_server, daemon=True)
        thread.start()
        try:
            added = hubsight_process(
                data_dir, "source", "add", "web", "--kafka", "--bootstrap", f"127.0.0.1:{port}"
            )
            assert added.returncode == 0, added.stderr
            run = hubsight_process(data_dir, "source", "test", "web", "--timeout", "3")
        finally:
            stop.set()
            thread.join()
    # librdkafka's own line ("FAIL [hubsight-web#consumer-1] [thrd:...]: ...") came on stderr.
    assert run.stderr == ""
    assert run.returncode == 1
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert failed[0].split()[1] == "sasl"


def test_status_names_an_event_store_it_cannot_reach(data_dir: Path) -> None:
    # A wrong --store looked like a store holding nothing: no count, no word.
    port = free_port()
    store = f"clickhouse://default@127.0.0.1:{port}/db"
    run = hubsight_process(data_dir, "--store", store, "status")
    assert run.returncode == 0, run.stderr
    assert (
        f"event store: cannot reach the ClickHouse server at 127.0.0.1:{port}: Connection "
        "refused\n  hint: check the host, port and user, and HUBSIGHT_STORE_PASSWORD\n"
    ) in run.stdout
    report = json.loads(hubsight_process(data_dir, "--store", store, "status", "--json").stdout)
    assert report["store_error"]["error"].startswith("cannot reach the ClickHouse server")
    # The embedded store it can open has no error to report.
    report = json.loads(hubsight_process(data_dir, "status", "--json").stdout)
    assert report["store_error"] is None


def test_run_refuses_a_geoip_path_naming_nothing_before_it_opens_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It opened the event store and gave detection its first place there before refusing.
    monkeypatch.setenv("HUBSIGHT_GEOIP", str(tmp_path / "no-such.mmdb"))
    data_dir = tmp_path / "data"
    stderr = _refused(hubsight_process(data_dir, "run", "--no-web"), 2)
    assert stderr.startswith(f"error: GeoIP database {tmp_path / 'no-such.mmdb'} does not exist")
    assert sorted(p.name for p in data_dir.iterdir()) == ["run.lock"]
