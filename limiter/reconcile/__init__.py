"""Reconcile: rebuild an app's counters from the IM's own database, and report the drift.

:mod:`~limiter.reconcile.records` are what a source holds, :mod:`~limiter.reconcile.sources`
read them from JSON or NDJSON, :mod:`~limiter.reconcile.rebuild` loads, compares and switches
them in, and :mod:`~limiter.reconcile.report` is what it answers.
"""

from limiter.reconcile.records import AccountRecord, FriendRecord, GroupRecord, Record
from limiter.reconcile.report import CountChange, Drift, Orphans, ReconcileReport
from limiter.reconcile.sources import (
    parse_document,
    parse_line,
    parse_lines,
    streamed_records,
)

__all__ = [
    "AccountRecord",
    "CountChange",
    "Drift",
    "FriendRecord",
    "GroupRecord",
    "Orphans",
    "ReconcileReport",
    "Record",
    "parse_document",
    "parse_line",
    "parse_lines",
    "streamed_records",
]
