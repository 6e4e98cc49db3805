"""Hunting over stored events: ``POST /api/v1/rules/hunt`` (the CLI's ``rules hunt`` and the
console's Hunt button)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hubsight.detect.hunt import hunt, hunt_rules
from hubsight.errors import ConfigError, HubsightError
from hubsight.query.timerange import resolve_window
from hubsight.web.search_routes import Store, error_response

router = APIRouter(prefix="/api/v1")


class HuntBody(BaseModel):
    """What to hunt (an imported rule's id, or a Sigma file's text) and over which window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str | None = None
    sigma: str | None = Field(default=None, max_length=1_000_000)
    last: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None


@router.post("/rules/hunt", response_model=None)
def hunt_route(request: Request, body: HuntBody, store: Store) -> dict[str, Any] | JSONResponse:
    """Run a rule over the stored events of a window: the alerts it would have raised."""
    data_dir: Path = request.app.state.data_dir
    try:
        if (body.rule is None) == (body.sigma is None):
            raise ConfigError("give either rule (an id) or sigma (a rule's text)")
        window = resolve_window(
            now=datetime.now(UTC), last=body.last or (None if body.from_ else "90d"),
            start=body.from_, end=body.to,
        )  # fmt: skip
        if body.sigma is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "hunted.yml"
                path.write_text(body.sigma, "utf-8")
                rules = hunt_rules(data_dir, str(path))
        else:
            rules = hunt_rules(data_dir, body.rule or "")
        return hunt(store, rules, window.start, window.end).to_json()
    except HubsightError as exc:
        return error_response(exc)
