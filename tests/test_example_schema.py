"""The example's IM commands against their OpenAPI document: schemathesis generates requests
for every ``/v4`` operation (valid and invalid) on the in-process store; every answer is HTTP
200 in the IM's shape (the store is up), never a server error, and matches the document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from examples.im_backend.app import create_app
from limiter.testing import ManualClock, memory_async_limiter
from tests.conftest import BEIJING
from tests.figures import Recorder

TOKEN = "schema-token-0123456789"


@pytest.fixture(scope="module", autouse=True)
def lifespan() -> Iterator[None]:
    """Run the app's lifespan (engine, SQLite) around the module's requests."""
    with TestClient(app):
        yield


app = create_app(
    limiter=memory_async_limiter(
        clock=ManualClock(datetime(2026, 11, 26, 12, tzinfo=BEIJING)), admin_tokens={"ops": TOKEN}
    ),
    db_path=":memory:",
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
EXCLUDED = [
    # The IM's contract answers malformed requests with HTTP 200 and ActionStatus FAIL, and
    # the document cannot state what the limits and the data refuse.
    negative_data_rejection,
    positive_data_acceptance,
]


@schema.include(path_regex="^/v4/").parametrize()
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_command_answers_in_the_ims_shape(case: schemathesis.Case, figures: Recorder) -> None:
    # The default checks run, these among them: not_a_server_error, status_code_conformance,
    # content_type_conformance, response_schema_conformance.
    response = case.call_and_validate(excluded_checks=EXCLUDED)
    figures.record("hostile", "schemathesis: example /v4 cases", 1)
    if case.method.upper() == "POST":  # (schemathesis also probes other methods: 405)
        assert response.status_code == 200, response.text
    assert response.json()["ActionStatus"] in ("OK", "FAIL")
