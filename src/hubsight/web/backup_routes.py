"""``POST /api/v1/backup``: the running service copies its data directory (owner's socket only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from hubsight import backup
from hubsight.errors import path_error
from hubsight.service import Service
from hubsight.web.auditing import audit_note, audited
from hubsight.web.auth import require_role

router = APIRouter(prefix="/api/v1")


class BackupBody(BaseModel):
    """Where to write the copy: a new or empty directory, an absolute path."""

    model_config = ConfigDict(extra="forbid")

    dir: str


# A backup holds the secret key: only the owner of the data directory, who reaches the
# unauthenticated socket, may have one written, never a console account.
@router.post(
    "/backup", response_model=None, dependencies=[require_role("owner"), audited("backup")]
)
def make_backup(request: Request, body: BackupBody) -> dict[str, Any]:
    """Copy events, sources, users and detection state into ``dir``."""
    service: Service = request.app.state.service
    audit_note(request).target = body.dir
    try:
        return backup.create(service.data_dir, service.store, Path(body.dir))
    except OSError as exc:
        # A path the system refuses is the caller's to fix, said as the CLI says it offline.
        raise path_error(exc) from exc
