"""The hosted IM's REST shapes the example speaks: request bodies (pydantic models, so bad
input is refused naming the field), answers, and the error codes of each service.

Batch maxima and id lengths follow ``contract.md``: 100 accounts per import, 300 members per
``add_group_member``, 100 peers per ``friend_add``; UserID 1..32 bytes, GroupId 1..48 bytes,
no control characters.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from limiter.errors import InvalidRequest
from limiter.ids import check_entity_id

MAX_ACCOUNTS = 100
MAX_MEMBERS = 300
MAX_PEERS = 100
MAX_GROUP_IDS = 50
MAX_MESSAGES = 100
USER_ID_MAX_BYTES = 32
GROUP_ID_MAX_BYTES = 48
MAX_NAME_BYTES = 30  # a group's Name, as the hosted service measures it
MAX_TYPE_LENGTH = 32  # longer than any group type: the refusal need not quote a megabyte

# Per service: the hosted IM's code for a bad request, and for an internal error (retry).
INVALID = {"im_open_login_svc": 70402, "sns": 30001, "group_open_http_svc": 10004, "openim": 90001}
INTERNAL = {"im_open_login_svc": 70500, "sns": 30006, "group_open_http_svc": 10002, "openim": 90994}
ACCOUNT_MISSING = 70107  # account_delete: the account does not exist


def _entity_id(max_bytes: int) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return check_entity_id(value, "id", max_bytes)
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None

    return AfterValidator(check)


def _utf8_size(value: str) -> int:
    """The size of ``value`` in UTF-8; text with a lone surrogate (which no store or answer
    can carry) is refused."""
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None


def _name(value: str) -> str:
    size = _utf8_size(value)
    if not 0 < size <= MAX_NAME_BYTES:
        raise ValueError(f"must be 1 to {MAX_NAME_BYTES} bytes, got {size}")
    return value


def _msg_type(value: str) -> str:
    if not 0 < _utf8_size(value) <= 32:
        raise ValueError("must be 1 to 32 bytes")
    return value


UserIdText = Annotated[str, _entity_id(USER_ID_MAX_BYTES)]
GroupIdText = Annotated[str, _entity_id(GROUP_ID_MAX_BYTES)]


class Body(BaseModel):
    """A request body: unknown fields are ignored, as the hosted service does."""

    model_config = ConfigDict(extra="ignore")


# -- im_open_login_svc -----------------------------------------------------------------------------


class AccountImport(Body):
    UserID: UserIdText
    Nick: str | None = None


class MultiAccountImport(Body):
    Accounts: list[UserIdText] = Field(min_length=1, max_length=MAX_ACCOUNTS)


class DeleteEntry(Body):
    UserID: UserIdText


class AccountDelete(Body):
    DeleteItem: list[DeleteEntry] = Field(min_length=1, max_length=MAX_ACCOUNTS)


# -- sns -------------------------------------------------------------------------------------------


class FriendEntry(Body):
    To_Account: UserIdText
    AddSource: str | None = None


class FriendAdd(Body):
    From_Account: UserIdText
    AddFriendItem: list[FriendEntry] = Field(min_length=1, max_length=MAX_PEERS)
    AddType: Literal["Add_Type_Both", "Add_Type_Single"] = "Add_Type_Both"


class FriendDelete(Body):
    From_Account: UserIdText
    To_Account: list[UserIdText] = Field(min_length=1, max_length=MAX_PEERS)
    DeleteType: Literal["Delete_Type_Both", "Delete_Type_Single"] = "Delete_Type_Both"


# -- group_open_http_svc ---------------------------------------------------------------------------


class Member(Body):
    Member_Account: UserIdText


class CreateGroup(Body):
    Owner_Account: UserIdText
    Type: str = Field(
        max_length=MAX_TYPE_LENGTH,
        description="Private (Work), Public, ChatRoom (Meeting) or AVChatRoom",
    )
    GroupId: GroupIdText | None = None
    Name: Annotated[str, AfterValidator(_name)]
    MemberList: list[Member] = Field(default_factory=list, max_length=MAX_MEMBERS)


class AddGroupMember(Body):
    GroupId: GroupIdText
    MemberList: list[Member] = Field(min_length=1, max_length=MAX_MEMBERS)


class DeleteGroupMember(Body):
    GroupId: GroupIdText
    MemberToDel_Account: list[UserIdText] = Field(min_length=1, max_length=MAX_MEMBERS)


class DestroyGroup(Body):
    GroupId: GroupIdText


class GetGroupInfo(Body):
    GroupIdList: list[GroupIdText] = Field(min_length=1, max_length=MAX_GROUP_IDS)


# -- openim ----------------------------------------------------------------------------------------


MAX_CONTENT_DEPTH = 16
MAX_CONTENT_BYTES = 12_000  # the hosted service's message size limit, about 12 KB


def _storable(value: Any) -> Any:
    """Content that comes back out as it went in: nested at most :data:`MAX_CONTENT_DEPTH`
    levels, valid UTF-8 text (no lone surrogates), no NaN or infinite numbers, and at most
    :data:`MAX_CONTENT_BYTES` long."""
    _check_depth(value, 0)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"cannot be stored as JSON text: {exc}") from None
    if size > MAX_CONTENT_BYTES:
        raise ValueError(f"at most {MAX_CONTENT_BYTES} bytes of JSON, got {size}")
    return value


def _check_depth(value: Any, depth: int) -> None:
    if depth > MAX_CONTENT_DEPTH:
        raise ValueError(f"nested deeper than {MAX_CONTENT_DEPTH} levels")
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    for child in children:
        _check_depth(child, depth + 1)


class MsgElement(Body):
    MsgType: Annotated[str, AfterValidator(_msg_type)]
    MsgContent: Annotated[dict[str, Any], AfterValidator(_storable)]


class SendMsg(Body):
    From_Account: UserIdText
    To_Account: UserIdText
    MsgRandom: int = Field(ge=0, le=2**32 - 1)
    MsgBody: list[MsgElement] = Field(min_length=1, max_length=20)


class GetRoamMsg(Body):
    Operator_Account: UserIdText
    Peer_Account: UserIdText
    MaxCnt: int = Field(ge=1, le=MAX_MESSAGES)
    MinTime: int = Field(ge=0, le=2**32 - 1, description="Unix seconds")
    MaxTime: int = Field(ge=0, le=2**32 - 1, description="Unix seconds")
    LastMsgKey: str | None = Field(default=None, max_length=64)


# -- answers ---------------------------------------------------------------------------------------


class Answer(BaseModel):
    """Every answer: HTTP 200 (503 for an outage) with the status, code and message."""

    ActionStatus: Literal["OK", "FAIL"]
    ErrorCode: int
    ErrorInfo: str


class FailedAccount(BaseModel):
    UserID: str
    ErrorCode: int
    ErrorInfo: str


class MultiAccountImportAnswer(Answer):
    FailAccounts: list[str] = []
    FailReasons: list[FailedAccount] = Field(
        default=[], description="extension: why each account failed (70398 at the account cap)"
    )


class DeleteResult(BaseModel):
    UserID: str
    ResultCode: int
    ResultInfo: str


class AccountDeleteAnswer(Answer):
    ResultItem: list[DeleteResult] = []


class FriendResult(BaseModel):
    To_Account: str
    ResultCode: int
    ResultInfo: str


class FriendAnswer(Answer):
    ResultItem: list[FriendResult] = []
    Fail_Account: list[str] = []


class CreateGroupAnswer(Answer):
    GroupId: str | None = None


class MemberResult(BaseModel):
    Member_Account: str
    Result: Literal[0, 1, 2] = Field(description="0 failed, 1 added, 2 already a member")
    ErrorCode: int | None = Field(
        default=None, description="extension: 10037 when the member is at groups_per_user"
    )


class AddGroupMemberAnswer(Answer):
    MemberList: list[MemberResult] = []


class GroupInfoItem(BaseModel):
    GroupId: str
    ErrorCode: int
    ErrorInfo: str = ""
    Type: str | None = None
    Name: str | None = None
    Owner_Account: str | None = None
    MemberNum: int | None = None
    MaxMemberNum: int | None = Field(
        default=None, description="the group's effective member limit; null = unlimited"
    )


class GetGroupInfoAnswer(Answer):
    GroupInfo: list[GroupInfoItem] = []


class SendMsgAnswer(Answer):
    MsgTime: int | None = None
    MsgKey: str | None = None


class RoamMessage(BaseModel):
    From_Account: str
    To_Account: str
    MsgSeq: int
    MsgRandom: int
    MsgTimeStamp: int
    MsgFlagBits: int = 0
    MsgKey: str
    MsgBody: list[dict[str, Any]]


class GetRoamMsgAnswer(Answer):
    Complete: int | None = Field(default=None, description="1: no older message in the window")
    MsgCnt: int | None = None
    LastMsgTime: int | None = None
    LastMsgKey: str | None = None
    MsgList: list[RoamMessage] = []


def ok(**fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **fields}


def fail(code: int, info: str, **fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info, **fields}
