"""The admin API, the IM callback and the metrics endpoint against their OpenAPI document:
schemathesis generates requests for every operation (valid and invalid), each authorized, on
the in-process store; no answer may be a server error or stray from the document."""

from __future__ import annotations

import json
from datetime import datetime

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

from limiter.admin import admin_router
from limiter.callbacks import callback_router
from limiter.metrics import metrics_router
from limiter.reconcile.sources import NDJSON
from limiter.testing import ManualClock, memory_async_limiter
from tests.conftest import BEIJING
from tests.figures import Recorder

TOKEN = "schema-token-0123456789"

app = FastAPI()
app.state.limiter = memory_async_limiter(
    clock=ManualClock(datetime(2026, 11, 26, 12, tzinfo=BEIJING))
)
app.include_router(admin_router(tokens={"ops": TOKEN}), prefix="/admin")
app.include_router(callback_router(token=None), prefix="/callback")
app.include_router(metrics_router())

# NDJSON bodies made of source lines (mostly valid, so reconciles run), not arbitrary text.
_ids = st.sampled_from(["alice", "bob", "carol", "dave", "", "bad\x01id"])
_line = st.one_of(
    st.builds(lambda user: {"account": user}, _ids),
    st.builds(
        lambda user, friend, both: {
            "friendship": {"user": user, "friend": friend, "both_ways": both}
        },
        _ids,
        _ids,
        st.booleans(),
    ),
    st.builds(
        lambda group, kind, owner, members: {
            "group": {"id": group, "type": kind, "owner": owner, "members": members}
        },
        st.sampled_from(["g1", "g2", "room"]),
        st.sampled_from(["Public", "Work", "AVChatRoom", "Club"]),
        _ids,
        st.lists(_ids, max_size=3),
    ),
    st.just({"account": "erin", "group": {"id": "g3", "type": "Public"}}),
)
schemathesis.openapi.media_type(
    NDJSON,
    st.lists(_line, max_size=6).map(
        lambda lines: "".join(json.dumps(x) + "\n" for x in lines).encode()
    ),
)

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
EXCLUDED = [
    # The document cannot state every rule (the catalog's editions and expansion kinds, a paid
    # edition's date, ids measured in UTF-8 bytes): a request it calls valid may still be
    # refused, with a 422 naming the field.
    positive_data_acceptance,
    # Starlette answers a 405 with the methods of the path's first route only, and PUT and
    # DELETE of an override are two routes.
    allow_header_conformance,
]


@schema.exclude(path="/callback").parametrize()
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_answer_conforms_to_the_document(case: schemathesis.Case, figures: Recorder) -> None:
    # The default checks run, these among them: not_a_server_error, status_code_conformance,
    # content_type_conformance, response_schema_conformance.
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=EXCLUDED)
    figures.record("hostile", "schemathesis: admin and metrics cases", 1)


@schema.include(path="/callback").parametrize()
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_callback_answers_everything_in_the_ims_shape(
    case: schemathesis.Case, figures: Recorder
) -> None:
    figures.record("hostile", "schemathesis: callback cases", 1)
    # The hosted service expects HTTP 200 with ActionStatus FAIL for a request it sent
    # malformed, never a 4xx: accepting schema-violating data is the contract here.
    response = case.call_and_validate(excluded_checks=[*EXCLUDED, negative_data_rejection])
    if case.method.upper() == "POST":  # (schemathesis also probes other methods: 405)
        assert response.status_code == 200
        assert response.json()["ActionStatus"] in ("OK", "FAIL")
