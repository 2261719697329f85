"""The admin route that rebuilds an app's counters from the IM's own data, sent as one JSON
document or streamed as NDJSON."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response

from limiter.admin.auth import Actor
from limiter.admin.errors import AdminRoute, documented
from limiter.admin.requests import Engine
from limiter.fastapi import problem_response
from limiter.jsontext import parse_json
from limiter.reconcile import Record, parse_document, streamed_records
from limiter.reconcile.sources import NDJSON, SourceDocument
from limiter.schemas import ReconcileView

router = APIRouter(route_class=AdminRoute)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place: a ``#/$defs`` reference
    would not resolve inside an OpenAPI document."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


# The body is read by the route itself (a stream for NDJSON), so FastAPI does not document it.
_RECONCILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_refs(SourceDocument.model_json_schema())},
            NDJSON: {
                "schema": {
                    "type": "string",
                    "description": 'one JSON object a line: {"account": id}, {"friendship": '
                    '{"user", "friend", "both_ways"}} or {"group": {"id", "type", "owner", '
                    '"members"}}; a big group may come in several lines',
                }
            },
        },
    }
}


@router.post(
    "/apps/{app_id}/reconcile",
    summary="Rebuild the counters from the IM's own data",
    response_model=ReconcileView,
    responses={415: documented("The body is neither application/json nor NDJSON")},
    openapi_extra=_RECONCILE_BODY,
)
async def reconcile(
    app_id: str, request: Request, engine: Engine, actor: Actor
) -> ReconcileView | Response:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    records: Iterator[Record] | AsyncIterator[Record]
    if media_type == "application/json":
        records = parse_document(parse_json(await request.body(), "body"))
    elif media_type == NDJSON:
        records = streamed_records(request.stream())
    else:
        detail = f"send application/json or {NDJSON}, not {media_type or 'no content type'}"
        return problem_response(415, "Unsupported media type", detail)
    report = await engine.reconcile(app_id, records, actor=actor)
    return ReconcileView.of(report)
