"""``openim``: one-to-one messages stored in SQLite, and their history read back page by
page, newest first, only inside the app's ``history_days``."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter

from examples.im_backend import shapes
from examples.im_backend.dependencies import AppId, Db, Engine, HistorySince
from examples.im_backend.routers.common import unknown_accounts
from limiter import InvalidRequest

router = APIRouter(prefix="/openim")
_DIGITS = re.compile(r"[0-9]{1,18}")


@router.post(
    "/sendmsg",
    response_model=shapes.SendMsgAnswer,
    response_model_exclude_none=True,
    summary="Store a one-to-one message",
)
async def sendmsg(body: shapes.SendMsg, limiter: Engine, app: AppId, db: Db) -> dict[str, Any]:
    unknown = unknown_accounts(db, app, [body.From_Account, body.To_Account], "openim")
    if unknown:
        return unknown
    sent_at = int(limiter.now().timestamp())
    cutoff = await limiter.history_cutoff(app)
    if cutoff is not None:  # the hosted service deletes what it no longer keeps
        db.purge_messages(app, int(cutoff.timestamp()))
    content = json.dumps([element.model_dump() for element in body.MsgBody])
    seq = db.add_message(app, body.From_Account, body.To_Account, body.MsgRandom, sent_at, content)
    return shapes.ok(MsgTime=sent_at, MsgKey=_message_key(seq, body.MsgRandom, sent_at))


@router.post(
    "/admin_getroammsg",
    response_model=shapes.GetRoamMsgAnswer,
    summary="Messages between two users, newest first, only inside the app's history_days",
)
async def admin_getroammsg(
    body: shapes.GetRoamMsg, app: AppId, since: HistorySince, db: Db
) -> dict[str, Any]:
    start = body.MinTime if since is None else max(body.MinTime, int(since.timestamp()))
    after = _message_position(body.LastMsgKey) if body.LastMsgKey else None
    found = db.messages(
        app,
        body.Operator_Account,
        body.Peer_Account,
        start,
        body.MaxTime,
        after,
        body.MaxCnt + 1,
    )
    page = found[: body.MaxCnt]
    messages = [
        {
            "From_Account": message.from_account,
            "To_Account": message.to_account,
            "MsgSeq": message.seq,
            "MsgRandom": message.random,
            "MsgTimeStamp": message.sent_at,
            "MsgKey": _message_key(message.seq, message.random, message.sent_at),
            "MsgBody": json.loads(message.body),
        }
        for message in page
    ]
    last = messages[-1] if messages else None
    return shapes.ok(
        Complete=int(len(found) <= body.MaxCnt),
        MsgCnt=len(messages),
        LastMsgTime=last["MsgTimeStamp"] if last else None,
        LastMsgKey=last["MsgKey"] if last else None,
        MsgList=messages,
    )


def _message_key(seq: int, random: int, sent_at: int) -> str:
    return f"{seq}_{random}_{sent_at}"


def _message_position(key: str) -> tuple[int, int]:
    """(sent_at, seq) of a ``MsgKey`` this backend gave out (``seq_random_time``)."""
    parts = key.split("_")
    numbers = [int(part) for part in parts if _DIGITS.fullmatch(part)]
    if len(parts) != 3 or len(numbers) != 3 or numbers[0] == 0:
        raise InvalidRequest("LastMsgKey", f"not a key this backend gave out: {key!r}")
    seq, _, sent_at = numbers
    return sent_at, seq
