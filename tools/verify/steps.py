"""The verification's steps, each against a Cluster: preflight, write a row, restart the primary, scale to
zero and back, read the row everywhere, report the backups; and the psql commands they run inside the pod."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes.client.exceptions import ApiException

from components.postgres_conf import SOCKET_DIR
from components.postgres_names import SUPERUSER, claim_name
from tools.verify.cluster import DATABASE, FIELD_MANAGER, PASSWORD_FILE, ROW_ID, TABLE, Cluster, Endpoint, ExecResult, Target

# ---------------------------------------------------------------- psql inside the pod


def write_sql(row_id: str) -> str:
    _check_row_id(row_id)
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now()); "
        f"INSERT INTO {TABLE} (id) VALUES ('{row_id}') RETURNING id"
    )


def read_sql(row_id: str) -> str:
    _check_row_id(row_id)
    return f"SELECT id FROM {TABLE} WHERE id = '{row_id}'"


def _check_row_id(row_id: str) -> None:
    # The id is spliced into SQL: only ever our own lowercase, digits and dashes.
    if not ROW_ID.match(row_id):
        raise ValueError(f"row id {row_id!r}: expected lowercase letters, digits and '-'")


def new_row_id(now: datetime) -> str:
    return f"verify-{now.astimezone(UTC):%Y%m%dt%H%M%Sz}-{secrets.token_hex(4)}"


_PSQL_FLAGS = ("-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1")

# Runs in the pod: builds a 0600 passfile on the /tmp emptyDir from the mounted Secret, runs psql
# over TCP with it, removes it. The password is read from the file by sed; it is never an argument.
# pgpass needs ':' and '\' escaped inside a field.
SERVICE_PSQL_SCRIPT = r"""set -euo pipefail
umask 077
passfile=$(mktemp "${TMPDIR:-/tmp}/pgstack-verify.XXXXXX")
trap 'rm -f "$passfile"' EXIT
printf '*:*:*:%s:' "$2" >"$passfile"
sed -e 's/[\\:]/\\&/g' "$1" >>"$passfile"
PGPASSFILE=$passfile PGCONNECT_TIMEOUT=10 psql -X -A -t -q -w -v ON_ERROR_STOP=1 -h "$3" -p "$4" -U "$2" -d "$5" -c "$6"
"""


def psql_service_command(sql: str, service: Endpoint, password_file: str = PASSWORD_FILE) -> list[str]:
    """argv for the pod: psql over TCP to the Service, authenticated with a passfile made in the pod."""
    return ["bash", "-c", SERVICE_PSQL_SCRIPT, "pgstack-verify", password_file, SUPERUSER, service.host, str(service.port), DATABASE, sql]


def psql_local_command(sql: str, socket_dir: str = SOCKET_DIR) -> list[str]:
    """argv for the pod: psql over the pod's own socket (peer auth for the OS user postgres)."""
    return ["psql", *_PSQL_FLAGS, "-h", socket_dir, "-U", SUPERUSER, "-d", DATABASE, "-c", sql]


# ---------------------------------------------------------------- the steps


class StepError(Exception):
    """A step's check did not hold; the message says what, naming the pod or object."""


@dataclass(frozen=True)
class Timing:
    """Waits and clocks, injectable: the tests use a simulated clock whose sleep advances it."""

    timeout: float = 600.0  # each wait for pods (deleted, gone, Ready)
    interval: float = 2.0  # between polls
    lag: float = 60.0  # how long a standby may take to show the row
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def wait_until(timing: Timing, timeout: float, check: Callable[[], str | None]) -> None:
    """Poll ``check`` until it returns None; it returns what is not there yet, which a timeout reports."""
    deadline = timing.clock() + timeout
    while True:
        missing = check()
        if missing is None:
            return
        if timing.clock() >= deadline:
            raise StepError(f"after {timeout:g} s, {missing}")
        timing.sleep(timing.interval)


def _not_ready(cluster: Cluster, pods: Sequence[str]) -> str | None:
    for pod in pods:
        state = cluster.pod(pod)
        if state is None:
            return f"pod {pod} does not exist"
        if state.terminating:
            return f"pod {pod} is terminating"
        if not state.ready:
            return f"pod {pod} is not Ready"
    return None


def preflight(cluster: Cluster, target: Target, notes: list[str]) -> None:
    for sts, want in target.statefulsets:
        have = cluster.replicas(sts)
        if have is None:
            raise StepError(f"StatefulSet {sts} not found in namespace {target.namespace}: is the stack deployed?")
        if have != want:
            raise StepError(f"StatefulSet {sts} has {have} replicas, the stack says {want}: run `pulumi up` first")
    problem = _not_ready(cluster, target.pods)
    if problem is not None:
        raise StepError(f"{problem} before the verification starts: fix the stack first")
    notes.append(f"pods {', '.join(target.pods)} Ready; primary {target.primary}")


def write_row(cluster: Cluster, target: Target, row_id: str, notes: list[str]) -> None:
    service = target.service
    result = cluster.exec_sql(target.primary, write_sql(row_id), service=service)
    if result.code != 0 or row_id not in result.stdout.split():
        raise StepError(
            f"psql in pod {target.primary} through Service {service.host}:{service.port} exited {result.code}: {_last_line(result)}"
        )
    notes.append(f"row {row_id} written through {service.host}:{service.port} (psql in pod {target.primary})")


def restart_primary(cluster: Cluster, target: Target, timing: Timing, notes: list[str]) -> None:
    pod = target.primary
    before = cluster.pod(pod)
    if before is None or not before.ready:
        raise StepError(f"pod {pod} is not Ready before it is deleted")
    cluster.delete_pod(pod)

    def back() -> str | None:
        now = cluster.pod(pod)
        if now is None:
            return f"pod {pod} is not back"
        if now.uid == before.uid:
            return f"pod {pod} is still the old pod (terminating)"
        if not now.ready:
            return f"pod {pod} is back but not Ready"
        return None

    wait_until(timing, timing.timeout, back)
    notes.append(f"pod {pod} deleted (uid {before.uid}); its replacement is Ready")


def scale_to_zero_and_back(cluster: Cluster, target: Target, timing: Timing, notes: list[str]) -> None:
    original: dict[str, int] = {}
    for sts, _ in target.statefulsets:
        replicas = cluster.replicas(sts)
        if replicas is None:
            raise StepError(f"StatefulSet {sts} not found")
        original[sts] = replicas
    error: BaseException | None = None
    try:
        for sts in reversed(original):  # standbys first, the primary last
            cluster.scale(sts, 0)

        def gone() -> str | None:
            for pod in target.pods:
                if cluster.pod(pod) is not None:
                    return f"pod {pod} still exists (its StatefulSet is at 0 replicas)"
            return None

        wait_until(timing, timing.timeout, gone)
        notes.append(f"{', '.join(original)} scaled to 0: every pod gone")
    except BaseException as exc:  # an interrupt too: the finally below puts the replicas back
        error = exc
        raise
    finally:
        problems = _restore(cluster, original, notes)
        if problems:
            after = f" (after: {describe_error(error)})" if error is not None else ""
            raise StepError("; ".join(problems) + after) from error
    wait_until(timing, timing.timeout, lambda: _not_ready(cluster, target.pods))
    notes.append("every pod Ready again")


def _restore(cluster: Cluster, original: dict[str, int], notes: list[str]) -> list[str]:
    """Put every StatefulSet back at its replica count, each on its own; say which could not be."""
    problems = []
    for sts, replicas in original.items():
        try:
            cluster.scale(sts, replicas)
        except Exception as exc:
            problems.append(
                f"could not restore StatefulSet {sts} to {replicas} replicas ({describe_error(exc)}): "
                f"run `kubectl scale statefulset {sts} --replicas={replicas}` in its namespace"
            )
            continue
        notes.append(f"{sts} restored to {replicas} replicas")
        try:
            cluster.release_replicas(sts)
        except Exception as exc:
            notes.append(
                f"warning: {sts}'s spec.replicas is still owned by field manager {FIELD_MANAGER} ({describe_error(exc)}); "
                "a `pulumi up` that changes replicas will report a conflict until it runs with PULUMI_K8S_ENABLE_PATCH_FORCE=true"
            )
    return problems


def read_row_everywhere(cluster: Cluster, target: Target, row_id: str, timing: Timing, notes: list[str]) -> None:
    sql = read_sql(row_id)
    for pod in target.row_pods:

        def has_row(pod: str = pod) -> str | None:
            result = cluster.exec_sql(pod, sql)
            if result.code == 0 and row_id in result.stdout.split():
                return None
            detail = "no such row" if result.code == 0 else f"psql exited {result.code}: {_last_line(result)}"
            return f"row {row_id} not found on pod {pod} ({detail})"

        wait_until(timing, timing.lag, has_row)
        notes.append(f"row found on pod {pod}")
    others = [p for p in target.pods if p not in target.row_pods]
    if others:
        notes.append(f"pods {', '.join(others)} are databases of their own (replication off): not expected to hold the row")


def report_backups(cluster: Cluster, target: Target, timing: Timing, notes: list[str]) -> None:
    now = timing.now()
    volumes: dict[str, str] = {}
    for pod in target.pods:
        volume = cluster.claim_volume(claim_name(pod))
        if volume is None:
            notes.append(f"claim {claim_name(pod)}: no Longhorn volume bound")
        else:
            volumes[volume] = pod
    backups = cluster.longhorn_backups(sorted(volumes)) if volumes else None
    done = [b for b in backups or [] if b.volume in volumes and b.state == "Completed" and b.created is not None]
    if backups is None:
        notes.append("Longhorn backup: not configured (no Longhorn backups API, or no Longhorn volume)")
    elif not done:
        notes.append(f"Longhorn backup: not configured (no completed backup of {', '.join(sorted(volumes))})")
    else:
        for volume, pod in volumes.items():
            mine = [b for b in done if b.volume == volume]
            if not mine:
                notes.append(f"Longhorn backup of {pod} ({volume}): none completed yet")
                continue
            newest = max(mine, key=lambda b: b.created or datetime.min.replace(tzinfo=UTC))
            assert newest.created is not None
            notes.append(f"Longhorn backup of {pod} ({volume}): {newest.name}, {age(now - newest.created)} old")
    job = cluster.cronjob(target.cronjob)
    if job is None:
        notes.append(f"logical dump: not configured (no CronJob {target.cronjob} in namespace {target.namespace})")
        return
    scheduled = f"{age(now - job.last_schedule)} ago" if job.last_schedule is not None else "never"
    if job.last_successful is None:
        notes.append(f"logical dump: CronJob {target.cronjob} has not succeeded yet (last scheduled: {scheduled})")
    else:
        notes.append(
            f"logical dump: CronJob {target.cronjob} last succeeded {age(now - job.last_successful)} ago (last scheduled: {scheduled})"
        )


def age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return f"{-seconds} s in the future (clock skew)"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def _last_line(result: ExecResult) -> str:
    lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def describe_error(exc: BaseException | None) -> str:
    if isinstance(exc, ApiException):
        message = ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            message = json.loads(exc.body or "").get("message", "")
        return f"Kubernetes API {exc.status} {exc.reason}" + (f": {message}" if message else "")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}" if exc is not None else ""
