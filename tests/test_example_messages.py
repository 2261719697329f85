"""The example's ``openim`` commands: messages stored as sent, refused when they could not come
back out, and the history paged newest first inside the app's ``history_days``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.example_support import ROAM, SEND, Im, fail, go_pro, ok, roam


def send(im: Im, sender: str, receiver: str, random: int, text: str) -> dict[str, Any]:
    """Send a text message; check the answer and the stored row."""
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    body = {"From_Account": sender, "To_Account": receiver, "MsgRandom": random, "MsgBody": content}
    answer = im.call(SEND, body)
    now = int(im.clock.now().timestamp())
    seq = int(answer["MsgKey"].split("_")[0])
    assert answer == ok(MsgTime=now, MsgKey=f"{seq}_{random}_{now}")
    stored = im.rows(
        "SELECT from_account, to_account, random, sent_at, body FROM messages WHERE seq = ?", seq
    )
    assert stored == {(sender, receiver, random, now, json.dumps(content))}
    return answer


def texts(answer: dict[str, Any]) -> list[str]:
    assert answer["ActionStatus"] == "OK", answer
    return [message["MsgBody"][0]["MsgContent"]["Text"] for message in answer["MsgList"]]


def test_history_keeps_history_days(im: Im) -> None:
    im.import_users("alice", "bob")
    old = send(im, "alice", "bob", 7, "day 0")
    im.clock.advance(timedelta(days=8))
    new = send(im, "bob", "alice", 8, "day 8")

    answer = im.call(ROAM, roam("alice", "bob"))

    assert answer == ok(
        Complete=1,
        MsgCnt=1,
        LastMsgTime=new["MsgTime"],
        LastMsgKey=new["MsgKey"],
        MsgList=[
            {
                "From_Account": "bob",
                "To_Account": "alice",
                "MsgSeq": 2,
                "MsgRandom": 8,
                "MsgTimeStamp": new["MsgTime"],
                "MsgFlagBits": 0,
                "MsgKey": new["MsgKey"],
                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "day 8"}}],
            }
        ],
    )
    # Sending purged what the app no longer keeps: a later extension does not bring it back.
    assert im.rows("SELECT seq FROM messages") == {(2,)}
    go_pro(im)
    extension = {"kind": "history_extension", "purchased_on": "2026-11-26", "days": 30}
    im.admin("POST", "/expansions", extension, status=201)
    assert texts(im.call(ROAM, roam("bob", "alice"))) == ["day 8"]
    assert old["MsgKey"] != new["MsgKey"]


def test_a_history_extension_keeps_older_messages(im: Im) -> None:
    im.import_users("alice", "bob")
    go_pro(im)
    extension = {"kind": "history_extension", "purchased_on": "2026-11-26", "days": 30}
    im.admin("POST", "/expansions", extension, status=201)
    old = send(im, "alice", "bob", 7, "day 0")
    im.clock.advance(timedelta(days=8))
    send(im, "bob", "alice", 8, "day 8")

    longer = im.call(ROAM, roam("bob", "alice"))

    assert texts(longer) == ["day 8", "day 0"]
    assert longer["LastMsgKey"] == old["MsgKey"]


def test_history_pages_newest_first(im: Im) -> None:
    im.import_users("alice", "bob", "carol")
    sent = []
    for i in range(5):
        sender, receiver = ("alice", "bob") if i % 2 == 0 else ("bob", "alice")
        sent.append(send(im, sender, receiver, i, f"m{i}"))
        send(im, "alice", "carol", 100 + i, "elsewhere")
        im.clock.advance(timedelta(seconds=1))

    pages, key = [], None
    for _ in range(len(sent)):  # at most one page per message
        answer = im.call(ROAM, roam("alice", "bob", MaxCnt=2, LastMsgKey=key))
        pages.append((texts(answer), answer["Complete"]))
        key = answer["LastMsgKey"]
        if answer["Complete"]:
            break

    assert pages == [(["m4", "m3"], 0), (["m2", "m1"], 0), (["m0"], 1)]
    assert key == sent[0]["MsgKey"]
    window = roam("bob", "alice", MinTime=sent[1]["MsgTime"], MaxTime=sent[3]["MsgTime"])
    assert texts(im.call(ROAM, window)) == ["m3", "m2", "m1"]


def test_a_message_between_accounts_never_imported_is_refused(im: Im) -> None:
    im.import_users("alice")
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]
    body = {"From_Account": "alice", "To_Account": "ghost", "MsgRandom": 1, "MsgBody": content}

    answer = im.call(SEND, body)

    assert answer == fail(90001, "not imported: 'ghost'")
    assert im.rows("SELECT seq FROM messages") == set()


def test_a_deeply_nested_message_does_not_break_the_history(im: Im) -> None:
    im.import_users("alice", "bob")
    content: dict[str, Any] = {"Text": "deep"}
    for _ in range(300):
        content = {"Nested": content}
    body = {"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": []}
    body["MsgBody"] = [{"MsgType": "TIMCustomElem", "MsgContent": content}]

    stored = im.call(SEND, body)
    history = im.post(ROAM, roam("alice", "bob"))

    assert stored == fail(90001, "MsgBody.0.MsgContent: nested deeper than 16 levels")
    assert (history.status_code, history.json()["MsgList"]) == (200, [])


def test_paging_follows_time_even_when_the_clock_went_back(im: Im) -> None:
    im.import_users("alice", "bob")
    first = send(im, "alice", "bob", 1, "later")
    im.clock.advance(timedelta(minutes=-5))  # a host clock stepped back: seq 2 is older
    send(im, "bob", "alice", 2, "earlier")

    page = im.call(ROAM, roam("alice", "bob", MaxCnt=1))
    rest = im.call(
        ROAM,
        roam("alice", "bob", MaxCnt=1, MaxTime=page["LastMsgTime"], LastMsgKey=page["LastMsgKey"]),
    )

    assert (texts(page), page["Complete"], page["LastMsgKey"]) == (["later"], 0, first["MsgKey"])
    assert (texts(rest), rest["Complete"]) == (["earlier"], 1)


@pytest.mark.parametrize(
    ("key", "info"),
    [
        ("99999999999999999999999_1_1", "LastMsgKey: not a key this backend gave out"),
        ("0_1_1", "LastMsgKey: not a key this backend gave out: '0_1_1'"),
        ("x_1_1", "LastMsgKey: not a key this backend gave out: 'x_1_1'"),
    ],
    ids=["too big", "zero", "not a number"],
)
def test_a_message_key_not_given_out_is_refused(im: Im, key: str, info: str) -> None:
    im.import_users("alice", "bob")

    answer = im.call(ROAM, roam("alice", "bob", LastMsgKey=key))

    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 90001)
    assert answer["ErrorInfo"].startswith(info)


@pytest.mark.parametrize(
    "key", ["1_1_\u00b2", "\uff11_1_1", "1_1_\u0661"], ids=["superscript", "fullwidth", "arabic"]
)
def test_a_message_key_with_non_ascii_digits_is_refused(im: Im, key: str) -> None:
    im.import_users("alice", "bob")

    answer = im.call(ROAM, roam("alice", "bob", LastMsgKey=key))

    assert answer == fail(90001, f"LastMsgKey: not a key this backend gave out: {key!r}")


@pytest.mark.parametrize(
    ("content", "info"),
    [
        (b'{"Text": "\\ud800"}', "cannot be stored as JSON text"),
        (b'{"Score": NaN}', "cannot be stored as JSON text"),
        (b'{"Score": 1e999}', "cannot be stored as JSON text"),
    ],
    ids=["lone surrogate", "NaN", "infinite"],
)
def test_message_content_that_cannot_come_back_out_is_refused(
    im: Im, content: bytes, info: str
) -> None:
    im.import_users("alice", "bob")
    body = (
        b'{"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, '
        b'"MsgBody": [{"MsgType": "TIMCustomElem", "MsgContent": ' + content + b"}]}"
    )

    answer = im.call(SEND, body)
    history = im.call(ROAM, roam("alice", "bob"))

    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 90001)
    assert answer["ErrorInfo"].startswith(f"MsgBody.0.MsgContent: {info}")
    assert history["MsgList"] == []


def test_message_content_over_12_kb_is_refused(im: Im) -> None:
    im.import_users("alice", "bob")
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x" * 12_000}}]
    body = {"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": content}

    answer = im.call(SEND, body)

    assert answer == fail(90001, "MsgBody.0.MsgContent: at most 12000 bytes of JSON, got 12012")
