"""Verify a deployed stack: the seeds' persistence experiment, then what backups exist.

    python -m tools.verify dev [--context CTX] [--timeout SECONDS]       (or bin/verify dev)

Against the live cluster of a stack, in order, each step printed with its duration:

1. write a row through the read-write Service: psql over TCP to ``<name>.<ns>.svc.cluster.local``,
   run inside the primary pod with a passfile the pod builds from its mounted Secret (the password
   never leaves the pod: it is not on the exec command line, not in this program, not in its output);
2. delete the primary pod and wait until a new pod (another uid) is back and Ready;
3. scale the StatefulSets to zero, wait until their pods are gone, restore the replica counts they
   had (always, in a ``finally``), and wait until every pod is Ready;
4. read the row on every pod that should hold it (standbys may lag: polled);
5. the newest completed Longhorn backup of each database volume and the logical-dump CronJob's last
   success, with their ages. Neither configured is "not configured", not a failure.

A preflight first checks that the StatefulSets have the replica counts the stack says and that every
pod is Ready: the experiment means nothing on a stack that is already broken.

The steps reach the cluster only through ``Cluster`` (a Protocol): ``KubernetesCluster`` implements
it over the official kubernetes client, the tests implement it with a simulated cluster. Waits poll
with an injectable clock and sleep, so the tests run the whole experiment in milliseconds.

The verification leaves one row per run in table ``pgstack_verify`` of the ``postgres`` database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from components.naming import service_dns
from components.postgres_names import claim_name, pod_names, primary_pod_name, statefulsets
from components.postgres_pod import SECRETS_MOUNT, SUPERUSER
from components.postgres_settings import SOCKET_DIR
from stacks.config import PROJECT, ConfigError, Settings, parse_settings
from tools.stack_files import StackFileError, stack_config

CONTAINER = "postgres"
DATABASE = "postgres"
TABLE = "pgstack_verify"
# The superuser's password file inside the pod (Secret key postgres-password, mounted read-only).
PASSWORD_FILE = f"{SECRETS_MOUNT}/postgres-password"
CLUSTER_DOMAIN = "cluster.local"
# Our name in the StatefulSets' managedFields while we hold spec.replicas (see release_replicas).
FIELD_MANAGER = "pgstack-verify"
# Longhorn 1.10.1 labels every Backup with the name of its Longhorn volume under this key (no
# longhorn.io/ prefix): types.LonghornLabelBackupVolume = "backup-volume", set by the backup
# mutating webhook and by the backup-volume controller (longhorn/longhorn-manager v1.10.1).
LONGHORN_BACKUP_VOLUME_LABEL = "backup-volume"
LONGHORN_DRIVER = "driver.longhorn.io"

STEPS = (
    "write a row through the read-write Service",
    "delete the primary pod and wait until it is back and Ready",
    "scale to zero and back",
    "read the row on every pod",
    "newest Longhorn backup and logical dump",
)

_ROW_ID = re.compile(r"^[a-z0-9-]{1,63}$")


# ---------------------------------------------------------------- what the steps see of a cluster


@dataclass(frozen=True)
class PodState:
    uid: str
    ready: bool
    terminating: bool = False


@dataclass(frozen=True)
class ExecResult:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class LonghornBackup:
    name: str
    volume: str
    state: str
    created: datetime | None


@dataclass(frozen=True)
class CronJobStatus:
    last_successful: datetime | None
    last_schedule: datetime | None


class Cluster(Protocol):
    """Everything the verification does to a cluster, in the stack's database namespace."""

    def pod(self, name: str) -> PodState | None:
        """The pod, or None when it does not exist."""
        ...

    def delete_pod(self, name: str) -> None: ...

    def replicas(self, statefulset: str) -> int | None:
        """spec.replicas, or None when the StatefulSet does not exist."""
        ...

    def scale(self, statefulset: str, replicas: int) -> None: ...

    def release_replicas(self, statefulset: str) -> None:
        """Give up our field ownership of spec.replicas (after restoring it), so the next
        `pulumi up` that changes replicas does not meet a server-side apply conflict."""
        ...

    def exec_sql(self, pod: str, sql: str, service: Endpoint | None = None) -> ExecResult:
        """psql as the superuser in the pod's postgres container: over the local socket (peer
        auth), or over TCP to ``service`` with a passfile built inside the pod."""
        ...

    def claim_volume(self, claim: str) -> str | None:
        """The Longhorn volume bound to the claim, or None (no claim, unbound, not Longhorn)."""
        ...

    def longhorn_backups(self, volumes: Sequence[str]) -> list[LonghornBackup] | None:
        """Longhorn Backup objects of these volumes, or None when the cluster has no Longhorn backup API."""
        ...

    def cronjob(self, name: str) -> CronJobStatus | None:
        """The CronJob's status, or None when it does not exist."""
        ...


# ---------------------------------------------------------------- the stack's names


@dataclass(frozen=True)
class Target:
    """What the verification acts on, from the stack's settings."""

    namespace: str
    primary: str
    pods: tuple[str, ...]
    # Pods that must hold the row: every pod with replication; without it each pod is its own database.
    row_pods: tuple[str, ...]
    # (StatefulSet, replicas the stack says), the primary's first.
    statefulsets: tuple[tuple[str, int], ...]
    service: Endpoint
    cronjob: str


def target_of(settings: Settings) -> Target:
    pg = settings.postgres
    replication = pg.replication.enabled
    pods = tuple(pod_names(pg.name, pg.replicas, replication))
    primary = primary_pod_name(pg.name, pg.replication.primary)
    sets = tuple((sts, replicas) for sts, _, replicas, _ in statefulsets(pg.name, pg.replicas, replication))
    return Target(
        namespace=settings.namespace,
        primary=primary,
        pods=pods,
        row_pods=pods if replication else (primary,),
        statefulsets=sets,
        service=Endpoint(service_dns(pg.name, settings.namespace, CLUSTER_DOMAIN), pg.service.port),
        cronjob=f"{pg.name}-backup",
    )


def settings_from_config(values: dict[str, Any]) -> Settings:
    """The stack's validated settings from its config values (``tools.stack_files.stack_config``)."""
    prefix = f"{PROJECT}:"
    return parse_settings({k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)})


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
    if not _ROW_ID.match(row_id):
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
            after = f" (after: {_describe(error)})" if error is not None else ""
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
                f"could not restore StatefulSet {sts} to {replicas} replicas ({_describe(exc)}): "
                f"run `kubectl scale statefulset {sts} --replicas={replicas}` in its namespace"
            )
            continue
        notes.append(f"{sts} restored to {replicas} replicas")
        try:
            cluster.release_replicas(sts)
        except Exception as exc:
            notes.append(
                f"warning: {sts}'s spec.replicas is still owned by field manager {FIELD_MANAGER} ({_describe(exc)}); "
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


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, ApiException):
        message = ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            message = json.loads(exc.body or "").get("message", "")
        return f"Kubernetes API {exc.status} {exc.reason}" + (f": {message}" if message else "")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}" if exc is not None else ""


# ---------------------------------------------------------------- the run


def verify(cluster: Cluster, target: Target, timing: Timing, out: TextIO, stack: str = "", row_id: str | None = None) -> int:
    """Run the preflight and the five steps; print each with its duration. 0 when all pass, else 1."""
    row = row_id or new_row_id(timing.now())
    started = timing.clock()
    out.write(f"verify {stack or 'stack'}: namespace {target.namespace}, primary {target.primary}, row {row}\n")
    actions: list[Callable[[list[str]], None]] = [
        lambda notes: write_row(cluster, target, row, notes),
        lambda notes: restart_primary(cluster, target, timing, notes),
        lambda notes: scale_to_zero_and_back(cluster, target, timing, notes),
        lambda notes: read_row_everywhere(cluster, target, row, timing, notes),
        lambda notes: report_backups(cluster, target, timing, notes),
    ]
    steps = list(zip(STEPS, actions, strict=True))
    if (problem := _run(out, "preflight: the stack's pods are all Ready", lambda n: preflight(cluster, target, n), timing)) is not None:
        out.write(f"verify: FAILED at preflight: {problem}\n")
        return 1
    for index, (title, action) in enumerate(steps, start=1):
        label = f"[{index}/{len(steps)}] {title}"
        problem = _run(out, label, action, timing)
        if problem is not None:
            for later, (skipped, _) in enumerate(steps[index:], start=index + 1):
                out.write(f"[{later}/{len(steps)}] {skipped} ... skipped\n")
            out.write(f"verify: FAILED at step {index}/{len(steps)} ({title}): {problem}\n")
            return 1
    out.write(f"verify: all {len(steps)} steps passed ({timing.clock() - started:.1f} s)\n")
    return 0


def _run(out: TextIO, label: str, action: Callable[[list[str]], None], timing: Timing) -> str | None:
    out.write(f"{label} ... ")
    out.flush()
    notes: list[str] = []
    start = timing.clock()
    problem: str | None = None
    try:
        action(notes)
    except StepError as exc:
        problem = str(exc)
    except Exception as exc:
        problem = _describe(exc)
    except KeyboardInterrupt:
        out.write(f"interrupted ({timing.clock() - start:.1f} s)\n")
        _print_notes(out, notes)
        raise
    elapsed = timing.clock() - start
    out.write(f"ok ({elapsed:.1f} s)\n" if problem is None else f"FAILED ({elapsed:.1f} s)\n")
    _print_notes(out, notes)
    if problem is not None:
        out.write(f"      {problem}\n")
    out.flush()
    return problem


def _print_notes(out: TextIO, notes: list[str]) -> None:
    for note in notes:
        out.write(f"      {note}\n")


# ---------------------------------------------------------------- the real cluster


def _not_found(exc: ApiException) -> bool:
    return bool(exc.status == 404)


@contextlib.contextmanager
def _absent_is_none() -> Iterator[None]:
    """Turn a 404 into the caller's None (the caller returns None after the block)."""
    try:
        yield
    except ApiException as exc:
        if not _not_found(exc):
            raise


class KubernetesCluster:
    """``Cluster`` over the official kubernetes client, in one database namespace."""

    def __init__(
        self,
        namespace: str,
        longhorn_namespace: str,
        core: client.CoreV1Api,
        apps: client.AppsV1Api,
        batch: client.BatchV1Api,
        custom: client.CustomObjectsApi,
        exec_stream: Callable[..., Any] = stream,
        exec_timeout: float = 60.0,
    ) -> None:
        self.namespace = namespace
        self.longhorn_namespace = longhorn_namespace
        self.core, self.apps, self.batch, self.custom = core, apps, batch, custom
        self._stream = exec_stream
        self.exec_timeout = exec_timeout

    @classmethod
    def connect(cls, namespace: str, longhorn_namespace: str, context: str | None = None) -> KubernetesCluster:
        """From the kubeconfig (KUBECONFIG or ~/.kube/config), its current context unless one is named."""
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        return cls(
            namespace,
            longhorn_namespace,
            client.CoreV1Api(api),
            client.AppsV1Api(api),
            client.BatchV1Api(api),
            client.CustomObjectsApi(api),
        )

    def pod(self, name: str) -> PodState | None:
        with _absent_is_none():
            pod = self.core.read_namespaced_pod(name, self.namespace)
            conditions = (pod.status.conditions if pod.status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            meta = pod.metadata or client.V1ObjectMeta()
            return PodState(uid=str(meta.uid), ready=ready, terminating=meta.deletion_timestamp is not None)
        return None

    def delete_pod(self, name: str) -> None:
        # The pod's own grace period: the preStop hook asks PostgreSQL for a fast shutdown.
        self.core.delete_namespaced_pod(name, self.namespace)

    def replicas(self, statefulset: str) -> int | None:
        with _absent_is_none():
            scale = self.apps.read_namespaced_stateful_set_scale(statefulset, self.namespace)
            return int(scale.spec.replicas or 0) if scale.spec else 0
        return None

    def scale(self, statefulset: str, replicas: int) -> None:
        self.apps.patch_namespaced_stateful_set_scale(
            statefulset,
            self.namespace,
            {"spec": {"replicas": replicas}},
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    def release_replicas(self, statefulset: str) -> None:
        """Remove our entry from the StatefulSet's managedFields.

        Scaling through the API (like `kubectl scale`) moves ownership of spec.replicas from Pulumi's
        server-side apply field manager to ours. pulumi-kubernetes does not force conflicts, so its
        next apply that changes replicas would fail on our ownership. Replacing managedFields with
        the list minus our entry (a JSON patch guarded by the resourceVersion, as client-go's
        csaupgrade does) leaves spec.replicas unowned, and Pulumi's next apply takes it back.
        """
        for _ in range(3):
            meta = self.apps.read_namespaced_stateful_set(statefulset, self.namespace).metadata or client.V1ObjectMeta()
            entries = list(meta.managed_fields or [])
            kept = [e for e in entries if e.manager != FIELD_MANAGER]
            if len(kept) == len(entries) or not kept:
                return
            patch = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
                {"op": "replace", "path": "/metadata/managedFields", "value": client.ApiClient().sanitize_for_serialization(kept)},  # type: ignore[no-untyped-call]
            ]
            try:
                self.apps.patch_namespaced_stateful_set(
                    statefulset, self.namespace, patch, field_manager=FIELD_MANAGER, _content_type="application/json-patch+json"
                )
                return
            except ApiException as exc:
                if exc.status not in (409, 422):  # the object changed under us: read it again
                    raise
        raise RuntimeError(f"StatefulSet {statefulset} kept changing while its managedFields were being updated")

    def exec_sql(self, pod: str, sql: str, service: Endpoint | None = None) -> ExecResult:
        command = psql_service_command(sql, service) if service is not None else psql_local_command(sql)
        ws = self._stream(
            self.core.connect_get_namespaced_pod_exec,
            pod,
            self.namespace,
            command=command,
            container=CONTAINER,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        try:
            ws.run_forever(timeout=self.exec_timeout)
            if ws.is_open():
                return ExecResult(124, "", f"no answer from psql in pod {pod} within {self.exec_timeout:g} s")
            stdout, stderr = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
            try:
                code = ws.returncode
            except (TypeError, KeyError, IndexError, ValueError):
                code = None
            return ExecResult(-1 if code is None else int(code), str(stdout or ""), str(stderr or ""))
        finally:
            ws.close()

    def claim_volume(self, claim: str) -> str | None:
        with _absent_is_none():
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
            pv_name = pvc.spec.volume_name if pvc.spec else None
            if not pv_name:
                return None
            pv = self.core.read_persistent_volume(pv_name)
            csi = pv.spec.csi if pv.spec else None
            # The Longhorn CSI driver names a volume after its PV; the PV records it as volumeHandle.
            if csi is None or csi.driver != LONGHORN_DRIVER:
                return None
            return str(csi.volume_handle)
        return None

    def longhorn_backups(self, volumes: Sequence[str]) -> list[LonghornBackup] | None:
        with _absent_is_none():
            listed = self.custom.list_namespaced_custom_object(
                "longhorn.io",
                "v1beta2",
                self.longhorn_namespace,
                "backups",
                label_selector=f"{LONGHORN_BACKUP_VOLUME_LABEL} in ({','.join(volumes)})",
            )
            items = listed.get("items", []) if isinstance(listed, dict) else []
            return [_longhorn_backup(item) for item in items]
        return None

    def cronjob(self, name: str) -> CronJobStatus | None:
        with _absent_is_none():
            job = self.batch.read_namespaced_cron_job(name, self.namespace)
            status = job.status
            if status is None:
                return CronJobStatus(None, None)
            return CronJobStatus(status.last_successful_time, status.last_schedule_time)
        return None


def _longhorn_backup(item: dict[str, Any]) -> LonghornBackup:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    # status.backupCreatedAt is RFC 3339 UTC (backupstore util.Now); creationTimestamp is when the object appeared.
    created = _timestamp(status.get("backupCreatedAt")) or _timestamp(meta.get("creationTimestamp"))
    return LonghornBackup(
        name=str(meta.get("name", "")),
        volume=str((meta.get("labels") or {}).get(LONGHORN_BACKUP_VOLUME_LABEL) or status.get("volumeName") or ""),
        state=str(status.get("state") or ""),
        created=created,
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None, connect: Callable[[str, str, str | None], Cluster] = KubernetesCluster.connect) -> int:
    parser = argparse.ArgumentParser(
        prog="bin/verify",
        description="Persistence experiment on a deployed stack (write, delete the primary, scale to zero and back, "
        "read on every pod) and the newest backups. Exit 0 when every step passes, 1 otherwise.",
    )
    parser.add_argument("stack", help="stack name: Pulumi.<stack>.yaml")
    parser.add_argument("--context", help="kubeconfig context (default: the stack's kubernetes:context, else the current context)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for pods at each wait (default 600)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds")
    try:
        values = stack_config(args.stack)
        settings = settings_from_config(values)
    except (FileNotFoundError, StackFileError, ConfigError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 1
    target = target_of(settings)
    stack_context = values.get("kubernetes:context")
    context = args.context or (stack_context if isinstance(stack_context, str) else None)
    try:
        cluster = connect(target.namespace, settings.longhorn.namespace, context)
    except Exception as exc:  # no kubeconfig, unknown context
        print(f"verify: cannot reach the cluster: {_describe(exc)}", file=sys.stderr)
        return 1
    try:
        return verify(cluster, target, Timing(timeout=args.timeout), sys.stdout, stack=args.stack)
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
