"""What monitoring reads: ``/metrics`` (Prometheus) and the probes ``/health/live``, ``/ready``.

The probes need no sign-in. ``/metrics`` needs an API token (``Authorization: Bearer``, any
role) unless the console listens on a loopback address only (``ConsoleAuth.open_metrics``).
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hubsight.errors import StoreError
from hubsight.metrics import CONTENT_TYPE, Metrics
from hubsight.service import Service
from hubsight.web.auth import require_role

router = APIRouter()
PROBES = frozenset({"/health/live", "/health/ready"})
# The service loop goes round every second; this long without a round means it is stuck.
_LOOP_STALE_S = 10.0


@router.get("/metrics", response_class=Response, dependencies=[require_role("monitor")])
def metrics(request: Request) -> Response:
    """Every metric in Prometheus' text format."""
    exported: Metrics = request.app.state.service.metrics
    return Response(exported.render(), media_type=CONTENT_TYPE)


@router.get("/health/live", dependencies=[require_role("public")])
def live() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "live"}


@router.get("/health/ready", dependencies=[require_role("public")])
async def ready(request: Request) -> JSONResponse:
    """Readiness: the event store answers and the service loop goes round (else 503)."""
    service: Service = request.app.state.service
    checks: dict[str, Any] = {}
    try:
        await anyio.to_thread.run_sync(service.store.select, "SELECT 1 AS ok")
        checks["store"] = "ok"
    except StoreError as exc:
        checks["store"] = exc.message
    loop = service.last_loop
    if loop is None:
        checks["service"] = "not started"
    elif time.monotonic() - loop > _LOOP_STALE_S:
        checks["service"] = f"stuck for {time.monotonic() - loop:.0f} s"
    else:
        checks["service"] = "ok"
    is_ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if is_ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if is_ready else 503)
