"""``hubsight run``: collect from every enabled source and serve the API until SIGTERM/SIGINT."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

import click
import uvicorn
from starlette.types import ASGIApp

from hubsight import allocator
from hubsight.cli.options import store_settings
from hubsight.collector import CollectorSettings
from hubsight.datadir import close_data_dir
from hubsight.demo import start_demo, stop_demo
from hubsight.detect.runtime import Detection
from hubsight.errors import ConfigError, HubsightError
from hubsight.logformat import FORMATS, configure_logging, resolve_log_format
from hubsight.parsing.registry import default_registry
from hubsight.query.search import searcher
from hubsight.service import SOCKET_FILE, Service, run_lock
from hubsight.store.audit import AuditLog
from hubsight.store.backends import open_store
from hubsight.store.catalog import Catalog
from hubsight.store.setup_links import SETUP_LINK_S, SetupLinks
from hubsight.store.token_sweep import sweep_tokens
from hubsight.store.users import UserStore, epoch_iso
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth, session_limits_from_env

log = logging.getLogger("hubsight")
TLS_CERT_ENV = "HUBSIGHT_TLS_CERT"
TLS_KEY_ENV = "HUBSIGHT_TLS_KEY"
# Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated).
TRUSTED_PROXIES_ENV = "HUBSIGHT_TRUSTED_PROXIES"
BATCH_MB_ENV = "HUBSIGHT_BATCH_MB"
_MIB = 1024 * 1024
# Up to the 64 MB batches measured before issue 17 (each write held ~600 MB in the engine).
MAX_BATCH_MB = 64


@click.command("run")
@click.option("--no-web", is_flag=True, help="Serve the API only on the local socket.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="TCP port of the web console/API (0: any free port, logged).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--demo", is_flag=True, help="Start a local broker fed with sample Azure events.")
@click.option(
    "--no-data-after",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds without data before a source shows 'waiting for data' with a hint.",
)
@click.option(
    "--batch-mb",
    type=click.FloatRange(1, MAX_BATCH_MB),
    default=CollectorSettings().max_batch_bytes / _MIB,
    show_default=True,
    envvar=BATCH_MB_ENV,
    show_envvar=True,
    help="Most MB of messages a collector writes at once while a backlog drains. Larger "
    "batches cost less CPU per event (64: 12-20% less, measured) and more memory (a 16 MB "
    "batch held ~150 MB in the engine while written, a 64 MB one ~600 MB).",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default=None,
    help="text, or json: one object per line (default: $HUBSIGHT_LOG_FORMAT or text).",
)
@click.pass_obj
def run(
    data_dir: Path,
    no_web: bool,
    port: int,
    host: str,
    demo: bool,
    no_data_after: float,
    batch_mb: float,
    log_format: str | None,
) -> None:
    """Run the collectors and the API until SIGTERM or SIGINT."""
    # Before the store's and the broker client's threads take their malloc arenas.
    allocator.limit_arenas()
    configure_logging(resolve_log_format(log_format))
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current batches", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    close_data_dir(data_dir)
    with run_lock(data_dir):
        # Before anything starts: a port in use or an unknown address stops `run` at once.
        listener = None if no_web else _tcp_socket(host, port)
        if listener is not None:
            # The console's settings from the environment, refused before the store and
            # detection start (refused after them, they were never closed: chdb's shutdown
            # error, or a segmentation fault, followed the message).
            tls_files()
            trusted_proxies()
            session_limits_from_env()
        # The GeoIP databases too (HUBSIGHT_GEOIP naming nothing): refused after the store
        # opened, detection had already taken its first place in it.
        registry = default_registry(data_dir)
        # The catalog first: a damaged one stops `run` before the engine starts.
        catalog = Catalog(data_dir)
        store = open_store(store_settings(data_dir))
        broker = start_demo(catalog, stop) if demo else None
        detection = Detection.open(
            data_dir,
            searcher=searcher(store),
            store=store,
            sources=lambda: [config.name for config in catalog.all()],
        )
        users, audit = UserStore(data_dir), AuditLog(data_dir)

        def sweep_ended_tokens(_now: datetime) -> None:
            sweep_tokens(users, audit)

        def expire_cases(now: datetime) -> None:
            # Read each time: `hubsight retention set alerts` may change it meanwhile.
            detection.expire_cases(catalog.case_retention(), now)

        service = Service(
            data_dir,
            store,
            catalog,
            registry=registry,
            settings=collector_settings(no_data_after, batch_mb),
            on_stored=detection.on_stored,
            on_tick=(detection.tick, sweep_ended_tokens, expire_cases),
            detection_lag=detection.lag,
        )
        detection.metrics = service.metrics
        service.metrics.watch_memory(store.memory, detection.engine.state_size)
        service.metrics.watch_notifications(detection.notifications_due)
        detection.metrics.detection_behind.set(int(detection.behind))
        # The delivery thread sends what a killed process left due; what was stored beyond
        # detection's position (a crash, a batch it failed on) is read before any live batch:
        # those wait for it; the service's loop does not.
        detection.start()
        servers = _start_api(
            service, detection, users, None if listener is None else (host, listener)
        )
        try:
            service.serve(stop)
        finally:
            for server in servers:
                server.should_exit = True
            if broker is not None:
                stop_demo(catalog, broker)
            detection.close()
            store.close()
            (data_dir / SOCKET_FILE).unlink(missing_ok=True)
        log.info("stopped cleanly")


def collector_settings(no_data_after: float, batch_mb: float) -> CollectorSettings:
    """The collectors' settings from ``run``'s options."""
    return CollectorSettings(no_data_after_s=no_data_after, max_batch_bytes=int(batch_mb * _MIB))


def _start_api(
    service: Service,
    detection: Detection,
    users: UserStore,
    tcp: tuple[str, socket.socket] | None,
) -> list[uvicorn.Server]:
    # The socket is the owner's alone (0600), so its app trusts the caller; the TCP one signs in.
    servers: list[tuple[uvicorn.Server, socket.socket | None]] = []
    if tcp is not None:
        host, listener = tcp
        port = listener.getsockname()[1]
        web = create_app(service, auth=ConsoleAuth(users, open_metrics=is_loopback(host)))
        web.state.detect_db = detection.engine.db
        config = _tcp_config(web, host, port)
        servers.append((uvicorn.Server(config), listener))
        scheme = "https" if config.ssl_certfile else "http"
        log.info("console and API on %s://%s:%d (OpenAPI at /openapi.json)", scheme, host, port)
        announce_first_run(users, console_url(scheme, host, port), sys.stdout)
    local = create_app(service, users=users)
    local.state.detect_db = detection.engine.db
    local_config = uvicorn.Config(local, log_level="warning", log_config=None)
    servers.append((uvicorn.Server(local_config), _owner_socket(service.data_dir / SOCKET_FILE)))
    for server, sock in servers:
        sockets = [sock] if sock is not None else None
        threading.Thread(target=server.run, args=(sockets,), name="api", daemon=True).start()
    return [server for server, _ in servers]


def console_url(scheme: str, host: str, port: int) -> str:
    """The console's address as a browser on this machine opens it."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a listener's wildcard, not a bind)
        host = "127.0.0.1"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def announce_first_run(users: UserStore, url: str, terminal: TextIO) -> None:
    """With no console account yet, print a one-time link that creates the first admin.

    The link goes to the terminal only, never to the log (a file, the journal): without a
    terminal (a service), the log names the CLI command instead.
    """
    if users.accounts():
        if not users.has_admin():
            log.warning("no admin account: run `hubsight users create-admin --name NAME`")
        return
    if not terminal.isatty():
        log.warning(
            "no console account yet: run `hubsight users create-admin --name NAME` (a one-time "
            "setup link is printed only when `hubsight run` runs in a terminal)"
        )
        return
    secret, expires_at = SetupLinks(users).issue()
    until = epoch_iso(expires_at)
    terminal.write(
        "\nNo console account yet. Create the first admin in your browser with this link; it "
        f"works once, until {until} ({SETUP_LINK_S / 60:.0f} minutes):\n\n"
        f"    {url}/setup?token={secret}\n\n"
        "Restart hubsight for a new link while there is no account, or instead run\n"
        "`hubsight users create-admin --name NAME` in another shell.\n\n"
    )
    terminal.flush()
    log.info("no console account yet: a one-time setup link, valid until %s, is printed", until)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (then /metrics needs no token)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_files() -> tuple[str | None, str | None]:
    """HUBSIGHT_TLS_CERT and HUBSIGHT_TLS_KEY, both or neither, each file usable."""
    cert, key = os.environ.get(TLS_CERT_ENV) or None, os.environ.get(TLS_KEY_ENV) or None
    if (cert is None) != (key is None):
        raise ConfigError(
            f"only one of {TLS_CERT_ENV} and {TLS_KEY_ENV} is set",
            hint="set both (certificate chain and private key, PEM) or neither",
        )
    if cert is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"the TLS certificate or key cannot be used: {exc}",
                hint=f"point {TLS_CERT_ENV} and {TLS_KEY_ENV} at a readable PEM certificate and "
                "key",
            ) from exc
    return cert, key


def trusted_proxies() -> str:
    """HUBSIGHT_TRUSTED_PROXIES, each entry an IP address or network (or ``*``); '' if unset.

    uvicorn takes any other text as a literal to match (a Unix socket's name), so a host name
    or a typo there was accepted and no proxy was ever believed.
    """
    text = os.environ.get(TRUSTED_PROXIES_ENV, "").strip()
    for entry in filter(None, (part.strip() for part in text.split(","))):
        if entry == "*":
            continue
        try:
            # Strict, as uvicorn reads it: 10.0.1.5/24 would be a literal there, never matched.
            ipaddress.ip_network(entry)
        except ValueError:
            raise ConfigError(
                f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an IP address or network",
                hint="list the reverse proxies' addresses, comma-separated, e.g. "
                "10.0.0.5,10.0.1.0/24 (a network with its host bits clear; host names are not "
                "resolved)",
            ) from None
    return text


def _tcp_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """The TCP listener, with TLS when HUBSIGHT_TLS_CERT and HUBSIGHT_TLS_KEY name PEM files."""
    cert, key = tls_files()
    proxies = trusted_proxies()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        ssl_certfile=cert,
        ssl_keyfile=key,
        # uvicorn believes X-Forwarded-For from loopback by default, so a forged header would
        # reset the per-address sign-in limit: only proxies the operator names are believed.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    config.load()  # here, not in the server's thread (tls_files checked the certificate)
    return config


def _tcp_socket(host: str, port: int) -> socket.socket:
    """The console's listening socket, bound before `run` goes on.

    uvicorn binds in its own thread, where a port in use or an unknown address only logged an
    error: `run` went on collecting with no console, API, /metrics or /health.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise HubsightError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="give --host an address of this machine (127.0.0.1, 0.0.0.0, ::), or --no-web",
        ) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except OSError as exc:
        sock.close()
        raise HubsightError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another process may listen there (`ss -ltnp`): stop it, or give --port "
            "another port; ports below 1024 need privileges",
        ) from exc
    return sock


def _owner_socket(path: Path) -> socket.socket:
    # uvicorn would chmod its own Unix socket to 0666; this one is bound under a 0077 umask and
    # kept at 0600 so that only the owner's processes reach the API that needs no sign-in.
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    path.chmod(0o600)
    # Listening at once: a command run while the API is still starting (the socket file is what
    # tells it `run` serves) waits in the backlog until the server accepts, instead of being
    # refused.
    sock.listen()
    return sock
