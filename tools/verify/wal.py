"""The newest archived WAL segment's age on the primary (pg_stat_archiver), for step 5 of bin/verify.

The age is the server's own (now() - last_archived_time), so this machine's clock does not matter. An age
older than ``STALE_FACTOR`` x archive_timeout is flagged: archiving is stuck, or the primary wrote nothing (an
idle server switches no segment, PostgreSQL docs "archive_timeout"); a flag is a warning, not a failed step.
"""

from __future__ import annotations

from datetime import timedelta

from tools.verify.cluster import Cluster, Target
from tools.verify.steps import StepError, age

STALE_FACTOR = 3
# One row, psql -A -t: fields joined by '|'. Empty fields for what the server has not done yet.
ARCHIVER_SQL = (
    "SELECT current_setting('archive_mode'), coalesce(last_archived_wal, ''), "
    "coalesce(floor(extract(epoch FROM now() - last_archived_time))::bigint::text, ''), failed_count, "
    "coalesce(last_failed_wal, ''), "
    "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver"
)


def archive_note(row: str, pod: str, archive_timeout: int) -> str:
    """What the notes say of ARCHIVER_SQL's row, read on ``pod``."""
    fields = row.strip().split("|")
    if len(fields) != 6:
        raise StepError(f"unexpected pg_stat_archiver row from pod {pod}: {row.strip()!r}")
    mode, wal, seconds, failed, failed_wal, failing = fields
    if mode == "off":
        return f"WAL archive: not configured (archive_mode is off on {pod})"
    failures = f"; {failed} failed attempts, the last on {failed_wal}" if failed != "0" and failed_wal else ""
    if failing == "t":
        failures += " (failing now: newer than the last success)"
    if not wal:
        return f"warning: WAL archive: {pod} has archived no segment yet{failures}"
    limit = STALE_FACTOR * archive_timeout
    note = f"WAL archive: newest segment {wal} archived {age(timedelta(seconds=int(seconds)))} ago by {pod}{failures}"
    if int(seconds) > limit:
        return (
            f"warning: {note}: older than {STALE_FACTOR} x archiveTimeout ({age(timedelta(seconds=limit))}); "
            "archiving is stuck or the primary has written nothing since"
        )
    return note


def report_wal_archive(cluster: Cluster, target: Target, notes: list[str]) -> None:
    result = cluster.exec_sql(target.primary, ARCHIVER_SQL)
    if result.code != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StepError(f"reading pg_stat_archiver on pod {target.primary}: psql exited {result.code}: {detail[-1] if detail else ''}")
    notes.append(archive_note(result.stdout, target.primary, target.archive_timeout))
