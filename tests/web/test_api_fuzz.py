"""Property-based fuzzing of the whole API from its own OpenAPI description: never a 5xx.

schemathesis generates requests (valid and not) for every operation the description lists and
sends them to the app in-process, signed in as an admin. Bounded to a few examples per
operation so the run takes seconds; a failure prints the request that reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from hubsight.detect.db import DetectDB
from hubsight.service import Service
from hubsight.store.catalog import Catalog
from hubsight.store.embedded import EmbeddedStore
from hubsight.store.users import UserStore
from hubsight.web.api import create_app
from hubsight.web.auth import ConsoleAuth

from tests.support import FAST_HASH

# These connect to wherever the generated settings point (DNS, TCP, SMTP): not for a fuzzer;
# and the readiness probe answers 503 by design when no service loop runs.
LEFT_OUT = r"/test$|^/health/ready$"
# schemathesis leaves its operations' parameter, response, security and schema types open.
Operation = APIOperation[Any, Any, Any, Any]


@pytest.fixture
def fuzzed(data_dir: Path) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    store = EmbeddedStore(data_dir)
    users = UserStore(data_dir, hasher=FAST_HASH)
    users.create("fuzz-admin", "admin passphrase here", "admin")
    app = create_app(Service(data_dir, store, Catalog(data_dir)), auth=ConsoleAuth(users))
    db = DetectDB.in_dir(data_dir)
    app.state.detect_db = db
    try:
        yield app, {"Authorization": f"Bearer {users.issue_token('fuzz-admin', 'fuzz')}"}
    finally:
        db.close()
        store.close()


def test_no_request_gets_a_server_error(fuzzed: tuple[FastAPI, dict[str, str]]) -> None:
    app, headers = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
    operations = []
    for result in schema.exclude(path_regex=LEFT_OUT).get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) > 40  # the whole API, not a corner of it
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=4,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def never_5xx(case: schemathesis.Case[Operation]) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

        never_5xx()
