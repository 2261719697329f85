"""The source forms a reconcile reads: one JSON document (a small app) or NDJSON lines (any
size, also as an async byte stream); every error names the field or line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from limiter.errors import InvalidRequest
from limiter.jsontext import parse_json
from limiter.reconcile.records import AccountRecord, FriendRecord, GroupRecord, Record

NDJSON = "application/x-ndjson"
# The longest NDJSON line a streamed source may send (a 6,000-member group is about 200 KB;
# a bigger group can be split over lines).
MAX_LINE_BYTES = 4 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Friendship(_Strict):
    user: StrictStr
    friend: StrictStr
    both_ways: StrictBool = False


class _Group(_Strict):
    id: StrictStr
    type: StrictStr
    owner: StrictStr | None = None
    members: list[StrictStr] = Field(default_factory=list)


class SourceDocument(_Strict):
    """The whole state as one JSON object (a small app)."""

    accounts: list[StrictStr] = Field(default_factory=list)
    friendships: list[_Friendship] = Field(default_factory=list)
    groups: list[_Group] = Field(default_factory=list)

    def records(self) -> Iterator[Record]:
        """The document's records, each knowing its place (``groups.3``)."""
        for i, account in enumerate(self.accounts):
            yield AccountRecord(account, where=f"accounts.{i}")
        for i, f in enumerate(self.friendships):
            yield FriendRecord(f.user, f.friend, f.both_ways, where=f"friendships.{i}")
        for i, g in enumerate(self.groups):
            yield GroupRecord(g.id, g.type, tuple(g.members), g.owner, where=f"groups.{i}")


class SourceLine(_Strict):
    """One line of the streamed form (NDJSON): exactly one of its fields."""

    account: StrictStr | None = None
    friendship: _Friendship | None = None
    group: _Group | None = None

    def record(self, where: str) -> Record:
        """The line's record; ``where`` names the line in errors found later."""
        given = [
            name for name in ("account", "friendship", "group") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of account, friendship, group")
        if self.account is not None:
            return AccountRecord(self.account, where=where)
        if self.friendship is not None:
            f = self.friendship
            return FriendRecord(f.user, f.friend, f.both_ways, where=where)
        assert self.group is not None
        g = self.group
        return GroupRecord(g.id, g.type, tuple(g.members), g.owner, where=where)


def _invalid(exc: ValidationError, where: str) -> InvalidRequest:
    error = exc.errors()[0]
    path = ".".join(str(part) for part in error["loc"])
    field = f"{where}.{path}" if path else where
    return InvalidRequest(field, error["msg"])


def parse_document(data: object) -> Iterator[Record]:
    """The records of a JSON object ``{"accounts": [...], "friendships": [...], "groups":
    [...]}``; :class:`InvalidRequest` names the bad field (e.g. ``groups.3.type``)."""
    try:
        document = SourceDocument.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None
    return document.records()


def parse_line(line: str | bytes, number: int) -> Record | None:
    """The record of NDJSON line ``number`` (None for a blank line); errors name the line."""
    if not line.strip():
        return None
    where = f"line {number}"
    try:
        return SourceLine.model_validate(parse_json(line, where)).record(where)
    except ValidationError as exc:
        raise _invalid(exc, where) from None
    except ValueError as exc:  # not exactly one field
        raise InvalidRequest(where, str(exc)) from None


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[Record]:
    """The records of NDJSON lines (blank lines skipped); errors name the line."""
    for number, line in enumerate(lines, start=1):
        record = parse_line(line, number)
        if record is not None:
            yield record


async def read_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream as each one completes (the last may lack its newline); a
    line longer than :data:`MAX_LINE_BYTES` is refused rather than held in memory."""
    rest = b""
    async for chunk in chunks:
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            yield line
        if len(rest) > MAX_LINE_BYTES:
            raise InvalidRequest(
                "body",
                f"a line is longer than {MAX_LINE_BYTES} bytes: split a big group over lines",
            )
    if rest:
        yield rest


async def streamed_records(chunks: AsyncIterable[bytes]) -> AsyncIterator[Record]:
    """The records of an NDJSON byte stream as its lines arrive."""
    number = 0
    async for line in read_lines(chunks):
        number += 1
        record = parse_line(line, number)
        if record is not None:
            yield record
