"""tools/verify.py: the persistence experiment against a simulated cluster, the real client's API calls
(mocked API objects and the HTTP requests they make), and the in-pod psql commands against real PostgreSQL.

The simulated cluster (FakeCluster) knows Kubernetes' rules, not the verifier's: a StatefulSet named S
with ordinals from F runs pods S-F, S-F+1, ...; a deleted pod stays (and may look Ready) while it
terminates, then comes back with another uid; pods become Ready some seconds after they are created;
the read-write Service routes to one pod; a standby shows a row some seconds after the primary has it.
Its clock is the verifier's clock, so waits take no real time and durations are exact.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stacks.config import Settings, parse_settings
from stacks.config.wal import WalSettings
from tests.components.scripts.pg_harness import (
    Cluster as PgCluster,
)
from tests.components.scripts.pg_harness import (
    HarnessError,
    as_run_user,
    chown_run_user,
    leak_needles,
    require_pg_bin,
    wait_for,
    write_secret,
)
from tests.conftest import fixed_config, fixed_settings, settings_of
from tools.verify import (
    FIELD_MANAGER,
    CronJobStatus,
    Endpoint,
    ExecResult,
    KubernetesCluster,
    LonghornBackup,
    PodState,
    Target,
    Timing,
    main,
    psql_local_command,
    psql_service_command,
    read_sql,
    target_of,
    verify,
    write_sql,
)
from tools.verify.steps import StepError
from tools.verify.wal import ARCHIVER_SQL, archive_note

WALL = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROW = "verify-20260301t120000z-0123abcd"
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the simulated cluster


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakePod:
    uid: str
    created: float
    deleted: float | None = None


@dataclass
class FakeCluster:
    """One namespace of a simulated cluster; times are seconds on ``clock``."""

    clock: FakeClock
    # StatefulSet -> [replicas, first ordinal]
    statefulsets: dict[str, list[int]]
    service: Endpoint
    primary: str  # the pod the read-write Service selects
    ready_delay: float = 6.0  # a new pod is Ready this long after it is created
    terminate_delay: float = 10.0  # a deleted pod stays (still Ready) this long
    standby_lag: float = 3.0  # a standby shows a row this long after the primary has it
    exec_latency: float = 0.2
    never_ready: set[str] = field(default_factory=set)
    broken_after_restart: set[str] = field(default_factory=set)  # Ready now; never again once recreated
    stuck_terminating: set[str] = field(default_factory=set)
    standbys_without_row: set[str] = field(default_factory=set)
    ephemeral: set[str] = field(default_factory=set)  # pods whose volume does not survive the pod
    claims: dict[str, str] = field(default_factory=dict)  # claim -> Longhorn volume
    backups: list[LonghornBackup] | None = None
    cron: CronJobStatus | None = None
    archiver: str = "off|||0||f\n"  # pg_stat_archiver as ARCHIVER_SQL reads it on the primary
    scale_errors: dict[tuple[str, int], Exception] = field(default_factory=dict)
    release_error: Exception | None = None
    # observations
    log: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, float]] = field(default_factory=dict)  # pod volume -> row -> written at
    reads_ok: list[str] = field(default_factory=list)
    pods: dict[str, FakePod] = field(default_factory=dict)
    uids: int = 0
    all_gone_seen: bool = False

    def __post_init__(self) -> None:
        self._reconcile()
        for pod in self.pods.values():
            pod.created = -1000.0  # running and Ready long before the verification

    # -- Kubernetes' side
    def _desired(self) -> set[str]:
        return {f"{sts}-{first + i}" for sts, (replicas, first) in self.statefulsets.items() for i in range(replicas)}

    def _reconcile(self) -> None:
        now = self.clock()
        desired = self._desired()
        for name, pod in list(self.pods.items()):
            if pod.deleted is None and name not in desired:
                pod.deleted = now
            if pod.deleted is not None and name not in self.stuck_terminating and now >= pod.deleted + self.terminate_delay:
                del self.pods[name]
                if name in self.ephemeral:
                    self.rows.pop(name, None)
        for name in sorted(desired - set(self.pods)):
            self.uids += 1
            self.pods[name] = FakePod(uid=f"uid-{self.uids}", created=now)
        if not self.pods:
            self.all_gone_seen = True

    def _ready(self, name: str) -> bool:
        pod = self.pods.get(name)
        if pod is None or name in self.never_ready or (name in self.broken_after_restart and pod.created >= 0):
            return False
        return self.clock() >= pod.created + self.ready_delay

    # -- the Cluster protocol
    def pod(self, name: str) -> PodState | None:
        self._reconcile()
        pod = self.pods.get(name)
        if pod is None:
            return None
        return PodState(uid=pod.uid, ready=self._ready(name), terminating=pod.deleted is not None)

    def delete_pod(self, name: str) -> None:
        self._reconcile()
        self.log.append(f"delete {name} {self.pods[name].uid}")
        self.pods[name].deleted = self.clock()

    def replicas(self, statefulset: str) -> int | None:
        entry = self.statefulsets.get(statefulset)
        return None if entry is None else entry[0]

    def scale(self, statefulset: str, replicas: int) -> None:
        self._reconcile()
        if statefulset not in self.statefulsets:
            raise ApiException(status=404, reason="Not Found")
        if (statefulset, replicas) in self.scale_errors:
            raise self.scale_errors[statefulset, replicas]
        primary = self.pods.get(self.primary)
        self.log.append(f"scale {statefulset} {replicas} (primary {primary.uid if primary else None})")
        self.statefulsets[statefulset][0] = replicas
        self._reconcile()

    def release_replicas(self, statefulset: str) -> None:
        self.log.append(f"release {statefulset}")
        if self.release_error is not None:
            raise self.release_error

    def exec_sql(self, pod: str, sql: str, service: Endpoint | None = None) -> ExecResult:
        self.clock.sleep(self.exec_latency)
        self._reconcile()
        if pod not in self.pods or not self._ready(pod):
            return ExecResult(1, "", f'error: unable to upgrade connection: pod "{pod}" not Ready')
        write = re.fullmatch(
            r"CREATE TABLE IF NOT EXISTS pgstack_verify \(.*\); INSERT INTO pgstack_verify \(id\) VALUES \('([a-z0-9-]+)'\) RETURNING id",
            sql,
        )
        read = re.fullmatch(r"SELECT id FROM pgstack_verify WHERE id = '([a-z0-9-]+)'", sql)
        if write:
            if service != self.service:
                return ExecResult(2, "", "psql: error: writes must go through the read-write Service in this test")
            if not self._ready(self.primary):
                return ExecResult(2, "", f"psql: error: connection to server at {service.host} failed: Connection refused")
            self.rows.setdefault(self.primary, {})[write.group(1)] = self.clock()
            self.log.append(f"write {write.group(1)}")
            return ExecResult(0, write.group(1) + "\n", "")
        if read and service is None:
            row = read.group(1)
            if pod == self.primary:
                if row in self.rows.get(pod, {}):
                    self.reads_ok.append(pod)
                    return ExecResult(0, row + "\n", "")
                return ExecResult(0, "", "")
            written = self.rows.get(self.primary, {}).get(row)
            if pod in self.standbys_without_row or written is None or self.clock() < written + self.standby_lag:
                return ExecResult(1, "", 'ERROR:  relation "pgstack_verify" does not exist')
            self.reads_ok.append(pod)
            return ExecResult(0, row + "\n", "")
        if sql == ARCHIVER_SQL and service is None:
            self.log.append(f"archiver {pod}")
            return ExecResult(0, self.archiver, "")
        return ExecResult(3, "", f"this test cluster does not understand: {sql}")

    def claim_volume(self, claim: str) -> str | None:
        return self.claims.get(claim)

    def longhorn_backups(self, volumes: Any) -> list[LonghornBackup] | None:
        self.log.append(f"backups {','.join(volumes)}")
        return None if self.backups is None else list(self.backups)  # every backup: the verifier must filter

    def cronjob(self, name: str) -> CronJobStatus | None:
        return self.cron if name == "postgres-backup" else None


def timing(clock: FakeClock, timeout: float = 120.0, lag: float = 30.0) -> Timing:
    return Timing(timeout=timeout, interval=2.0, lag=lag, clock=clock, sleep=clock.sleep, now=lambda: WALL)


def prod_cluster(clock: FakeClock, **kw: Any) -> FakeCluster:
    """Pods of prod as Kubernetes would run them: names written out here, not derived by the verifier."""
    kw.setdefault(
        "claims",
        {"data-postgres-0": "pvc-aaa", "data-postgres-standby-1": "pvc-bbb", "data-postgres-standby-2": "pvc-ccc"},
    )
    kw.setdefault("service", Endpoint("postgres.postgres-prod.svc.cluster.local", 5432))
    return FakeCluster(clock=clock, statefulsets={"postgres": [1, 0], "postgres-standby": [2, 1]}, primary="postgres-0", **kw)


def backup(name: str, volume: str, hours_ago: float, state: str = "Completed") -> LonghornBackup:
    return LonghornBackup(name=name, volume=volume, state=state, created=WALL - timedelta(hours=hours_ago))


def run(cluster: FakeCluster, settings: Settings, **timing_kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = verify(cluster, target_of(settings), timing(cluster.clock, **timing_kw), out, stack="test", row_id=ROW)
    return code, out.getvalue()


def step_line(output: str, n: int) -> str:
    lines = [line for line in output.splitlines() if line.startswith(f"[{n}/5]")]
    assert len(lines) == 1, output
    return lines[0]


# ---------------------------------------------------------------- the experiment


def test_happy_path_prod_every_step_timed_row_on_every_pod_backup_ages() -> None:
    clock = FakeClock()
    fake = prod_cluster(
        clock,
        backups=[
            backup("backup-old", "pvc-aaa", 27),
            backup("backup-new", "pvc-aaa", 3),
            backup("backup-failed", "pvc-aaa", 1, state="Error"),
            backup("backup-b", "pvc-bbb", 50),
            backup("backup-other-stack", "pvc-zzz", 0.5),
        ],
        cron=CronJobStatus(last_successful=WALL - timedelta(hours=5, minutes=30), last_schedule=WALL - timedelta(minutes=42)),
        archiver="on|000000010000000000000003|125|0||f\n",
    )
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    titles = [
        "write a row through the read-write Service",
        "delete the primary pod and wait until it is back and Ready",
        "scale to zero and back",
        "read the row on every pod",
        "newest Longhorn backup, logical dump and archived WAL",
    ]
    for n, title in enumerate(titles, start=1):
        assert re.fullmatch(rf"\[{n}/5\] {re.escape(title)} \.\.\. ok \(\d+\.\d s\)", step_line(output, n)), output
    # Durations are the simulated time each step took: the write is one exec.
    assert step_line(output, 1).endswith("ok (0.2 s)")
    assert sorted(set(fake.reads_ok)) == ["postgres-0", "postgres-standby-1", "postgres-standby-2"]
    for pod in ("postgres-0", "postgres-standby-1", "postgres-standby-2"):
        assert f"row found on pod {pod}" in output
    assert "Longhorn backup of postgres-0 (pvc-aaa): backup-new, 3 h 0 min old" in output
    assert "Longhorn backup of postgres-standby-1 (pvc-bbb): backup-b, 2 d 2 h old" in output
    assert "Longhorn backup of postgres-standby-2 (pvc-ccc): none completed yet" in output
    assert "backup-other-stack" not in output
    assert "      WAL archive: newest segment 000000010000000000000003 archived 2 min 5 s ago by postgres-0\n" in output
    assert "logical dump: CronJob postgres-backup last succeeded 5 h 30 min ago (last scheduled: 42 min 0 s ago)" in output
    assert output.splitlines()[-1].startswith("verify: all 5 steps passed")
    # Scaled down standbys first, every pod gone, restored primary first, ownership handed back.
    scales = [line.split(" (")[0] for line in fake.log if line.startswith(("scale", "release"))]
    assert scales == [
        "scale postgres-standby 0",
        "scale postgres 0",
        "scale postgres 1",
        "release postgres",
        "scale postgres-standby 2",
        "release postgres-standby",
    ]
    assert fake.all_gone_seen
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [2, 1]}
    assert f"write {ROW}" in fake.log


def test_primary_restart_waits_for_the_replacement_not_the_terminating_old_pod() -> None:
    # The old pod stays Ready for 10 s while it terminates; step 2 must wait for the new uid.
    clock = FakeClock()
    fake = prod_cluster(clock)
    old_uid = fake.pods["postgres-0"].uid
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    first_scale = next(line for line in fake.log if line.startswith("scale"))
    assert f"(primary {old_uid})" not in first_scale, fake.log
    # 10 s terminating + 6 s until the replacement is Ready, polled every 2 s.
    assert step_line(output, 2).endswith("ok (16.0 s)"), output


def test_standby_never_ready_after_scale_up_fails_step_3_naming_the_pod_and_restores_replicas() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, broken_after_restart={"postgres-standby-2"})
    code, output = run(fake, fixed_settings("prod"), timeout=60)
    assert code == 1
    assert step_line(output, 3).startswith("[3/5] scale to zero and back ... FAILED (")
    assert "after 60 s, pod postgres-standby-2 is not Ready" in output
    assert output.splitlines()[-1] == (
        "verify: FAILED at step 3/5 (scale to zero and back): after 60 s, pod postgres-standby-2 is not Ready"
    )
    assert step_line(output, 4) == "[4/5] read the row on every pod ... skipped"
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [2, 1]}


def test_a_primary_that_never_comes_back_ready_fails_step_2_naming_it_and_scales_nothing() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, broken_after_restart={"postgres-0"})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert output.splitlines()[-1] == (
        "verify: FAILED at step 2/5 (delete the primary pod and wait until it is back and Ready): "
        "after 120 s, pod postgres-0 is back but not Ready"
    )
    assert not [line for line in fake.log if line.startswith("scale")]


def test_an_interrupt_while_scaled_to_zero_restores_the_replicas_and_still_interrupts() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock)

    def sleep(seconds: float) -> None:
        if fake.statefulsets["postgres"][0] == 0:
            raise KeyboardInterrupt
        clock.sleep(seconds)

    out = io.StringIO()
    interrupted = Timing(timeout=120, interval=2, lag=30, clock=clock, sleep=sleep, now=lambda: WALL)
    with pytest.raises(KeyboardInterrupt):
        verify(fake, target_of(fixed_settings("prod")), interrupted, out, row_id=ROW)
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [2, 1]}
    assert "[3/5] scale to zero and back ... interrupted" in out.getvalue()


def test_pods_that_never_go_away_fail_step_3_and_the_replicas_are_restored_anyway() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, stuck_terminating={"postgres-standby-1"})
    code, output = run(fake, fixed_settings("prod"), timeout=60)
    assert code == 1
    assert "after 60 s, pod postgres-standby-1 still exists (its StatefulSet is at 0 replicas)" in output
    assert "postgres restored to 1 replicas" in output and "postgres-standby restored to 2 replicas" in output
    assert output.splitlines()[-1].startswith("verify: FAILED at step 3/5 (scale to zero and back)")
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [2, 1]}
    assert [line for line in fake.log if line.startswith("release")] == ["release postgres", "release postgres-standby"]


def test_an_api_error_while_scaling_down_still_restores_what_was_scaled() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, scale_errors={("postgres", 0): ApiException(status=403, reason="Forbidden")})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert "Kubernetes API 403 Forbidden" in output
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [2, 1]}


def test_a_failed_restore_names_the_statefulset_and_the_command_to_fix_it() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, scale_errors={("postgres-standby", 2): ApiException(status=500, reason="Internal Server Error")})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert "could not restore StatefulSet postgres-standby to 2 replicas (Kubernetes API 500 Internal Server Error)" in output
    assert "kubectl scale statefulset postgres-standby --replicas=2" in output
    assert fake.statefulsets["postgres"] == [1, 0]  # the other one is back


def test_ownership_not_released_is_a_warning_not_a_failure() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, release_error=ApiException(status=403, reason="Forbidden"))
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    assert "warning: postgres-standby's spec.replicas is still owned by field manager pgstack-verify" in output
    assert "PULUMI_K8S_ENABLE_PATCH_FORCE=true" in output


def test_row_missing_on_a_standby_fails_step_4_naming_the_pod() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, standbys_without_row={"postgres-standby-2"})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert step_line(output, 4).startswith("[4/5] read the row on every pod ... FAILED")
    assert f"row {ROW} not found on pod postgres-standby-2" in output
    assert output.splitlines()[-1].startswith("verify: FAILED at step 4/5 (read the row on every pod): after 30 s, row")
    assert step_line(output, 5) == "[5/5] newest Longhorn backup, logical dump and archived WAL ... skipped"


def test_a_lagging_standby_is_polled_until_it_has_the_row() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, standby_lag=500.0)  # the standbys replay the row only long after step 3
    code, output = run(fake, fixed_settings("prod"), lag=600.0)
    assert code == 0, output
    assert fake.reads_ok.count("postgres-standby-1") == 1


def test_a_primary_whose_volume_does_not_survive_the_pod_fails_step_4() -> None:
    # What the seeds' experiment exists to catch: data on the pod instead of the volume.
    clock = FakeClock()
    fake = prod_cluster(clock, ephemeral={"postgres-0"})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert f"row {ROW} not found on pod postgres-0 (no such row)" in output


def test_no_backups_configured_is_reported_not_failed() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, backups=None, cron=None)
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    assert "Longhorn backup: not configured" in output
    assert "logical dump: not configured (no CronJob postgres-backup in namespace postgres-prod)" in output
    assert "WAL archive: not configured (archive_mode is off on postgres-0)" in output


def test_longhorn_installed_but_no_backup_yet_and_a_dump_that_never_succeeded() -> None:
    clock = FakeClock()
    # Longhorn answers, with a backup of another stack's volume only.
    fake = prod_cluster(clock, backups=[backup("other", "pvc-zzz", 1)], cron=CronJobStatus(last_successful=None, last_schedule=None))
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    assert "Longhorn backup: not configured (no completed backup of pvc-aaa, pvc-bbb, pvc-ccc)" in output
    assert "logical dump: CronJob postgres-backup has not succeeded yet (last scheduled: never)" in output


def test_an_old_archived_segment_is_flagged_past_three_archive_timeouts_but_the_step_passes() -> None:
    clock = FakeClock()
    # 901 s against archiveTimeout 300: flagged; with the failures, the newest after the last success.
    fake = prod_cluster(clock, archiver="on|000000010000000000000003|901|7|000000010000000000000004|t\n")
    code, output = run(fake, fixed_settings("prod"))
    assert code == 0, output
    assert step_line(output, 5).startswith("[5/5] newest Longhorn backup, logical dump and archived WAL ... ok")
    assert (
        "warning: WAL archive: newest segment 000000010000000000000003 archived 15 min 1 s ago by postgres-0; 7 failed attempts, "
        "the last on 000000010000000000000004 (failing now: newer than the last success): older than 3 x archiveTimeout "
        "(15 min 0 s); archiving is stuck or the primary has written nothing since"
    ) in output
    assert "archiver postgres-0" in fake.log


def test_the_archive_age_limit_follows_archive_timeout_and_an_empty_archive_is_a_warning() -> None:
    row = "on|000000010000000000000003|901|0||f"
    assert archive_note(row, "pg-0", 300).startswith("warning: ")
    assert archive_note(row, "pg-0", 301) == "WAL archive: newest segment 000000010000000000000003 archived 15 min 1 s ago by pg-0"
    assert archive_note("on|||2|000000010000000000000001|t", "pg-0", 300) == (
        "warning: WAL archive: pg-0 has archived no segment yet; 2 failed attempts, the last on 000000010000000000000001 "
        "(failing now: newer than the last success)"
    )
    with pytest.raises(StepError, match="unexpected pg_stat_archiver row from pod pg-0: 'ERROR'"):
        archive_note("ERROR", "pg-0", 300)


def test_replication_off_scales_one_statefulset_and_reads_only_the_pod_written_to() -> None:
    settings = parse_settings({"postgres": {"replicas": 2, "replication": {"enabled": False}}})
    clock = FakeClock()
    fake = FakeCluster(
        clock=clock,
        statefulsets={"postgres": [2, 0]},
        service=Endpoint("postgres.postgres.svc.cluster.local", 5432),
        primary="postgres-0",
    )
    code, output = run(fake, settings)
    assert code == 0, output
    assert [line.split(" (")[0] for line in fake.log if line.startswith("scale")] == ["scale postgres 0", "scale postgres 2"]
    assert fake.reads_ok == ["postgres-0"]
    assert "pods postgres-1 are databases of their own (replication off)" in output


def test_dev_one_pod_with_an_empty_standby_statefulset() -> None:
    clock = FakeClock()
    fake = FakeCluster(
        clock=clock,
        statefulsets={"postgres": [1, 0], "postgres-standby": [0, 1]},
        service=Endpoint("postgres.postgres.svc.cluster.local", 5432),
        primary="postgres-0",
    )
    code, output = run(fake, fixed_settings("dev"))
    assert code == 0, output
    assert fake.reads_ok == ["postgres-0"]
    assert fake.statefulsets == {"postgres": [1, 0], "postgres-standby": [0, 1]}


def test_a_promoted_standby_is_the_pod_deleted_and_written_through() -> None:
    settings = parse_settings(
        {
            "namespace": "db",
            "postgres": {"name": "pg", "replicas": 2, "service": {"port": 6432}, "replication": {"primary": "pg-standby-1"}},
        }
    )
    clock = FakeClock()
    fake = FakeCluster(
        clock=clock,
        statefulsets={"pg": [1, 0], "pg-standby": [1, 1]},
        service=Endpoint("pg.db.svc.cluster.local", 6432),
        primary="pg-standby-1",
    )
    code, output = run(fake, settings)
    assert code == 0, output
    assert fake.log[0].startswith("write")
    assert fake.log[1].startswith("delete pg-standby-1 ")
    assert sorted(set(fake.reads_ok)) == ["pg-0", "pg-standby-1"]


def test_preflight_refuses_a_stack_with_a_pod_not_ready() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, never_ready={"postgres-standby-1"})
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert "pod postgres-standby-1 is not Ready before the verification starts" in output
    assert output.splitlines()[-1].startswith("verify: FAILED at preflight")
    assert not [line for line in fake.log if line.startswith(("write", "delete", "scale"))]


def test_preflight_refuses_replicas_other_than_the_stack_says() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock)
    fake.statefulsets["postgres-standby"][0] = 1
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert "StatefulSet postgres-standby has 1 replicas, the stack says 2" in output
    assert not [line for line in fake.log if line.startswith(("write", "delete", "scale"))]


def test_a_write_that_fails_names_the_pod_and_the_service() -> None:
    clock = FakeClock()
    fake = prod_cluster(clock, service=Endpoint("elsewhere", 5432))
    code, output = run(fake, fixed_settings("prod"))
    assert code == 1
    assert "psql in pod postgres-0 through Service postgres.postgres-prod.svc.cluster.local:5432 exited 2" in output
    assert not [line for line in fake.log if line.startswith(("delete", "scale"))]


def test_every_stack_names_its_own_namespace_service_and_cronjob(stack: str) -> None:
    settings = settings_of(stack)
    name = settings.postgres.name
    target = target_of(settings)
    assert target.service == Endpoint(f"{name}.{settings.namespace}.svc.cluster.local", settings.postgres.service.port)
    assert target.namespace == settings.namespace
    assert target.cronjob == f"{name}-backup"
    assert target.primary == (settings.postgres.replication.primary or f"{name}-0")


# ---------------------------------------------------------------- SQL and psql command lines


def test_row_ids_are_checked_before_they_reach_sql() -> None:
    with pytest.raises(ValueError, match="row id"):
        write_sql("x'); DROP TABLE pgstack_verify; --")
    with pytest.raises(ValueError, match="row id"):
        read_sql("Robert'")


@pytest.mark.scanner
def test_the_in_pod_script_is_shellcheck_clean(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck") or str(ROOT / ".venv" / "bin" / "shellcheck")
    argv = psql_service_command("SELECT 1", Endpoint("postgres.postgres.svc.cluster.local", 5432))
    script = tmp_path / "script.sh"
    script.write_text("#!/usr/bin/env bash\n" + argv[2])
    cp = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.fixture
def pg() -> Iterator[PgCluster]:
    try:
        pg_bin = require_pg_bin()
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster = PgCluster(pg_bin)
    try:
        cluster.start_node(0)
        cluster.start_node(1)
        wait_for(lambda: cluster.node(1).receiver_status() == "streaming", 30, "standby to stream")
        yield cluster
    finally:
        cluster.close()


def _in_pod(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(as_run_user(argv, env), capture_output=True, text=True, timeout=60)


@pytest.mark.postgres
def test_psql_commands_on_real_postgresql_write_over_tcp_read_on_every_node_and_never_show_the_password(pg: PgCluster) -> None:
    """The exact argv the pod runs, as the pod's user, against init.sh's pg_hba (scram over TCP, peer locally)."""
    primary, standby = pg.node(0), pg.node(1)
    pod_tmp = pg.base / "pod-tmp"
    pod_tmp.mkdir()
    chown_run_user(pod_tmp)
    password_file = str(pg.secrets_dir / "postgres-password")
    service = Endpoint("127.0.0.1", primary.port)

    argv = psql_service_command(write_sql(ROW), service, password_file=password_file)
    written = _in_pod(argv, primary.env(TMPDIR=str(pod_tmp)))
    assert written.returncode == 0, written.stderr
    assert written.stdout.split() == [ROW]
    # The harness's superuser password holds ':' '\' quotes and $HOME: the passfile escapes what pgpass needs.
    seen = " ".join(argv) + written.stdout + written.stderr
    assert not [n for n in leak_needles([pg.passwords["postgres-password"]]) if n in seen]
    assert list(pod_tmp.iterdir()) == []  # the passfile is gone

    for node in (primary, standby):
        local = psql_local_command(read_sql(ROW), socket_dir=str(node.socket_dir))
        wait_for(lambda node=node, local=local: _in_pod(local, node.env()).stdout.split() == [ROW], 30, f"row on {node.name}")
    missing = _in_pod(psql_local_command(read_sql("verify-nothing"), socket_dir=str(primary.socket_dir)), primary.env())
    assert (missing.returncode, missing.stdout.strip()) == (0, "")

    # The passfile is what authenticates: a wrong password in the Secret fails, and leaves nothing behind.
    wrong = pg.base / "wrong-secrets"
    wrong.mkdir()
    chown_run_user(wrong)
    write_secret(wrong, "postgres-password", "not-the-password")
    refused = _in_pod(
        psql_service_command(read_sql(ROW), service, password_file=str(wrong / "postgres-password")), primary.env(TMPDIR=str(pod_tmp))
    )
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr
    assert list(pod_tmp.iterdir()) == []

    # The archiver's query runs on PostgreSQL 18 as the pod runs it (the harness does not archive).
    archiver = _in_pod(psql_local_command(ARCHIVER_SQL, socket_dir=str(primary.socket_dir)), primary.env())
    assert archiver.returncode == 0, archiver.stderr
    assert archive_note(archiver.stdout, "pg-0", 300) == "WAL archive: not configured (archive_mode is off on pg-0)"


# ---------------------------------------------------------------- the real client, mocked API objects


def real_cluster() -> tuple[KubernetesCluster, SimpleNamespace]:
    apis = SimpleNamespace(core=MagicMock(), apps=MagicMock(), batch=MagicMock(), custom=MagicMock(), stream=MagicMock())
    cluster = KubernetesCluster("postgres", "longhorn-system", apis.core, apis.apps, apis.batch, apis.custom, exec_stream=apis.stream)
    return cluster, apis


def test_scale_patches_the_scale_subresource_as_our_field_manager() -> None:
    cluster, apis = real_cluster()
    cluster.scale("postgres-standby", 0)
    apis.apps.patch_namespaced_stateful_set_scale.assert_called_once_with(
        "postgres-standby",
        "postgres",
        {"spec": {"replicas": 0}},
        field_manager=FIELD_MANAGER,
        _content_type="application/merge-patch+json",
    )


def test_delete_pod_deletes_in_the_database_namespace_with_the_pods_grace_period() -> None:
    cluster, apis = real_cluster()
    cluster.delete_pod("postgres-0")
    apis.core.delete_namespaced_pod.assert_called_once_with("postgres-0", "postgres")


def test_pod_state_from_the_api_and_404_is_none() -> None:
    cluster, apis = real_cluster()
    apis.core.read_namespaced_pod.return_value = client.V1Pod(
        metadata=client.V1ObjectMeta(name="postgres-0", uid="u-1"),
        status=client.V1PodStatus(conditions=[client.V1PodCondition(type="Ready", status="True")]),
    )
    assert cluster.pod("postgres-0") == PodState(uid="u-1", ready=True, terminating=False)
    apis.core.read_namespaced_pod.assert_called_with("postgres-0", "postgres")
    apis.core.read_namespaced_pod.return_value = client.V1Pod(
        metadata=client.V1ObjectMeta(name="postgres-0", uid="u-1", deletion_timestamp=WALL),
        status=client.V1PodStatus(conditions=[client.V1PodCondition(type="Ready", status="False")]),
    )
    assert cluster.pod("postgres-0") == PodState(uid="u-1", ready=False, terminating=True)
    apis.core.read_namespaced_pod.side_effect = ApiException(status=404, reason="Not Found")
    assert cluster.pod("postgres-0") is None
    apis.core.read_namespaced_pod.side_effect = ApiException(status=403, reason="Forbidden")
    with pytest.raises(ApiException):
        cluster.pod("postgres-0")


def _ws(stdout: str = "", stderr: str = "", code: int | None = 0, still_open: bool = False) -> MagicMock:
    ws = MagicMock()
    ws.is_open.return_value = still_open
    ws.read_stdout.return_value = stdout
    ws.read_stderr.return_value = stderr
    ws.returncode = code
    return ws


def test_exec_through_the_service_runs_psql_with_an_in_pod_passfile_and_no_password_on_the_command_line() -> None:
    cluster, apis = real_cluster()
    apis.stream.return_value = ws = _ws(stdout=f"{ROW}\n")
    result = cluster.exec_sql("postgres-0", write_sql(ROW), service=Endpoint("postgres.postgres.svc.cluster.local", 5432))
    assert result == ExecResult(0, f"{ROW}\n", "")
    apis.stream.assert_called_once()
    args, kwargs = apis.stream.call_args
    assert args == (apis.core.connect_get_namespaced_pod_exec, "postgres-0", "postgres")
    command = kwargs.pop("command")
    assert kwargs == {"container": "postgres", "stderr": True, "stdin": False, "stdout": True, "tty": False, "_preload_content": False}
    assert command[:2] == ["bash", "-c"]
    assert command[3:] == [
        "pgstack-verify",
        "/etc/postgresql/secrets/postgres-password",
        "postgres",
        "postgres.postgres.svc.cluster.local",
        "5432",
        "postgres",
        write_sql(ROW),
    ]
    script = command[2]
    assert "PGPASSFILE=$passfile" in script and "umask 077" in script and 'rm -f "$passfile"' in script
    # No password on the command line: not as PGPASSWORD, not in a conninfo, not as a literal.
    joined = " ".join(command)
    assert "PGPASSWORD" not in joined and "password=" not in joined.lower()
    ws.run_forever.assert_called_once_with(timeout=60.0)
    ws.close.assert_called_once()


def test_exec_on_the_local_socket_uses_peer_auth_and_no_shell() -> None:
    cluster, apis = real_cluster()
    apis.stream.return_value = _ws(stderr='ERROR:  relation "pgstack_verify" does not exist\n', code=1)
    result = cluster.exec_sql("postgres-standby-1", read_sql(ROW))
    assert result.code == 1
    command = apis.stream.call_args.kwargs["command"]
    assert command == [
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "/var/run/postgresql",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        read_sql(ROW),
    ]


def test_exec_that_does_not_finish_is_a_timeout_and_the_socket_is_closed() -> None:
    cluster, apis = real_cluster()
    apis.stream.return_value = ws = _ws(code=None, still_open=True)
    assert cluster.exec_sql("postgres-0", read_sql(ROW)).code == 124
    ws.close.assert_called_once()


def test_replicas_release_and_missing_statefulset() -> None:
    cluster, apis = real_cluster()
    apis.apps.read_namespaced_stateful_set_scale.return_value = client.V1Scale(spec=client.V1ScaleSpec(replicas=2))
    assert cluster.replicas("postgres-standby") == 2
    apis.apps.read_namespaced_stateful_set_scale.assert_called_with("postgres-standby", "postgres")
    apis.apps.read_namespaced_stateful_set_scale.side_effect = ApiException(status=404, reason="Not Found")
    assert cluster.replicas("postgres-standby") is None


STS_SPEC = client.V1StatefulSetSpec(selector=client.V1LabelSelector(), template=client.V1PodTemplateSpec())


def _managed(manager: str, subresource: str | None = None) -> client.V1ManagedFieldsEntry:
    return client.V1ManagedFieldsEntry(
        manager=manager,
        operation="Apply" if manager.startswith("pulumi") else "Update",
        api_version="apps/v1",
        fields_type="FieldsV1",
        fields_v1={"f:spec": {"f:replicas": {}}} if subresource else {"f:spec": {"f:template": {}}},
        subresource=subresource,
        time=WALL,
    )


def test_release_replicas_removes_only_our_managed_fields_entry_guarded_by_the_resource_version() -> None:
    cluster, apis = real_cluster()
    apis.apps.read_namespaced_stateful_set.return_value = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(
            name="postgres", resource_version="42", managed_fields=[_managed("pulumi-kubernetes-abc"), _managed(FIELD_MANAGER, "scale")]
        ),
        spec=STS_SPEC,
    )
    cluster.release_replicas("postgres")
    args, kwargs = apis.apps.patch_namespaced_stateful_set.call_args
    assert args[:2] == ("postgres", "postgres")
    assert kwargs == {"field_manager": FIELD_MANAGER, "_content_type": "application/json-patch+json"}
    test_op, replace = args[2]
    assert test_op == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert replace["op"] == "replace" and replace["path"] == "/metadata/managedFields"
    assert [e["manager"] for e in replace["value"]] == ["pulumi-kubernetes-abc"]
    assert replace["value"][0]["fieldsV1"] == {"f:spec": {"f:template": {}}}  # API JSON: camelCase keys
    # Nothing of ours: no patch.
    apis.apps.patch_namespaced_stateful_set.reset_mock()
    apis.apps.read_namespaced_stateful_set.return_value = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="postgres", resource_version="43", managed_fields=[_managed("pulumi-kubernetes-abc")]),
        spec=STS_SPEC,
    )
    cluster.release_replicas("postgres")
    apis.apps.patch_namespaced_stateful_set.assert_not_called()


def test_claim_volume_follows_the_claim_to_the_longhorn_volume_handle() -> None:
    cluster, apis = real_cluster()
    apis.core.read_namespaced_persistent_volume_claim.return_value = client.V1PersistentVolumeClaim(
        spec=client.V1PersistentVolumeClaimSpec(volume_name="pvc-123")
    )
    apis.core.read_persistent_volume.return_value = client.V1PersistentVolume(
        spec=client.V1PersistentVolumeSpec(csi=client.V1CSIPersistentVolumeSource(driver="driver.longhorn.io", volume_handle="pvc-123"))
    )
    assert cluster.claim_volume("data-postgres-0") == "pvc-123"
    apis.core.read_namespaced_persistent_volume_claim.assert_called_with("data-postgres-0", "postgres")
    apis.core.read_persistent_volume.assert_called_with("pvc-123")
    apis.core.read_persistent_volume.return_value = client.V1PersistentVolume(
        spec=client.V1PersistentVolumeSpec(csi=client.V1CSIPersistentVolumeSource(driver="disk.csi.example", volume_handle="d-1"))
    )
    assert cluster.claim_volume("data-postgres-0") is None


def test_longhorn_backups_are_listed_by_the_backup_volume_label_in_longhorns_namespace() -> None:
    cluster, apis = real_cluster()
    apis.custom.list_namespaced_custom_object.return_value = {
        "items": [
            {
                "metadata": {"name": "backup-1", "labels": {"backup-volume": "pvc-aaa"}, "creationTimestamp": "2026-03-01T11:00:00Z"},
                "status": {"state": "Completed", "backupCreatedAt": "2026-03-01T09:00:00Z", "volumeName": "pvc-aaa"},
            }
        ]
    }
    assert cluster.longhorn_backups(["pvc-aaa", "pvc-bbb"]) == [
        LonghornBackup(name="backup-1", volume="pvc-aaa", state="Completed", created=datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    ]
    apis.custom.list_namespaced_custom_object.assert_called_once_with(
        "longhorn.io", "v1beta2", "longhorn-system", "backups", label_selector="backup-volume in (pvc-aaa,pvc-bbb)"
    )
    apis.custom.list_namespaced_custom_object.side_effect = ApiException(status=404, reason="Not Found")
    assert cluster.longhorn_backups(["pvc-aaa"]) is None


def test_cronjob_status_and_missing_cronjob() -> None:
    cluster, apis = real_cluster()
    apis.batch.read_namespaced_cron_job.return_value = client.V1CronJob(
        spec=client.V1CronJobSpec(schedule="30 2 * * *", job_template=client.V1JobTemplateSpec()),
        status=client.V1CronJobStatus(last_successful_time=WALL, last_schedule_time=WALL),
    )
    assert cluster.cronjob("postgres-backup") == CronJobStatus(WALL, WALL)
    apis.batch.read_namespaced_cron_job.assert_called_with("postgres-backup", "postgres")
    apis.batch.read_namespaced_cron_job.side_effect = ApiException(status=404, reason="Not Found")
    assert cluster.cronjob("postgres-backup") is None


# ---------------------------------------------------------------- the real client, on the wire


class Wire:
    """Stands in for urllib3's pool: records each request the kubernetes client sends, answers from ``responses``
    (the first whose URL fragment is in the request's URL)."""

    def __init__(self, responses: list[tuple[str, dict[str, Any]]]) -> None:
        self.responses = responses
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None, **_: Any) -> Any:
        self.requests.append({"method": method, "url": url, "body": json.loads(body) if body else None, "headers": headers or {}})
        answer = next(response for fragment, response in self.responses if fragment in url)
        return SimpleNamespace(status=200, reason="OK", data=json.dumps(answer).encode(), headers={"content-type": "application/json"})


def test_scale_and_release_on_the_wire() -> None:
    api = client.ApiClient(client.Configuration(host="https://k8s.test"))
    statefulset = {
        "metadata": {
            "name": "postgres",
            "resourceVersion": "7",
            "managedFields": [
                {
                    "manager": "pulumi-kubernetes-abc",
                    "operation": "Apply",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {},
                },
                {"manager": FIELD_MANAGER, "operation": "Update", "apiVersion": "apps/v1", "subresource": "scale", "fieldsV1": {}},
            ],
        },
        "spec": {"selector": {}, "serviceName": "postgres-hl", "template": {"spec": {"containers": []}}},
    }
    wire = Wire([("/scale", {"spec": {"replicas": 0}}), ("/statefulsets/", statefulset), ("/pods/", {"metadata": {"name": "postgres-0"}})])
    api.rest_client.pool_manager = wire
    cluster = KubernetesCluster(
        "postgres", "longhorn-system", client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    )
    cluster.scale("postgres", 0)
    cluster.release_replicas("postgres")
    cluster.delete_pod("postgres-0")
    scale, read, patch, delete = wire.requests
    assert scale["method"] == "PATCH"
    assert scale["url"] == "https://k8s.test/apis/apps/v1/namespaces/postgres/statefulsets/postgres/scale?fieldManager=pgstack-verify"
    assert scale["headers"]["Content-Type"] == "application/merge-patch+json"
    assert scale["body"] == {"spec": {"replicas": 0}}
    assert (read["method"], read["url"]) == ("GET", "https://k8s.test/apis/apps/v1/namespaces/postgres/statefulsets/postgres")
    assert patch["method"] == "PATCH" and patch["headers"]["Content-Type"] == "application/json-patch+json"
    assert patch["url"] == "https://k8s.test/apis/apps/v1/namespaces/postgres/statefulsets/postgres?fieldManager=pgstack-verify"
    assert patch["body"][0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert [e["manager"] for e in patch["body"][1]["value"]] == ["pulumi-kubernetes-abc"]
    assert (delete["method"], delete["url"]) == ("DELETE", "https://k8s.test/api/v1/namespaces/postgres/pods/postgres-0")


# ---------------------------------------------------------------- command line


def test_main_reads_the_stack_and_connects_with_the_context(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, str, str | None]] = []
    clock = FakeClock()
    fake = prod_cluster(clock, ready_delay=0.0, terminate_delay=0.0, standby_lag=0.0)

    def connect(namespace: str, longhorn_namespace: str, context: str | None) -> FakeCluster:
        calls.append((namespace, longhorn_namespace, context))
        return fake

    assert main(["prod", "--context", "lab", "--timeout", "5"], connect=connect) == 0
    assert calls == [("postgres-prod", "longhorn-system", "lab")]
    output = capsys.readouterr().out
    assert output.startswith("verify prod: namespace postgres-prod, primary postgres-0, row verify-")
    assert "[3/5] scale to zero and back ... ok (" in output


def test_main_unknown_stack_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nosuch"], connect=lambda *a: pytest.fail("no connection for an unknown stack")) == 1
    assert capsys.readouterr().err.strip() == "verify: no stack file Pulumi.nosuch.yaml"


def test_main_refuses_a_cloudnative_pg_stack_before_connecting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = fixed_config("prod")
    config["pgstack:postgres"] = {**config["pgstack:postgres"], "engine": "cloudnative-pg"}
    monkeypatch.setattr("tools.verify.run.stack_config", lambda stack: config)
    assert main(["ops"], connect=lambda *a: pytest.fail("no connection for the operator's engine")) == 1
    assert capsys.readouterr().err == (
        "verify: Pulumi.ops.yaml runs pgstack:postgres.engine cloudnative-pg: this experiment moves the StatefulSet "
        f"engine's pods; the operator reports its Cluster with `kubectl -n {config['pgstack:namespace']} get cluster "
        "postgres` (docs/operations.md#cloudnative-pg)\n"
    )


@pytest.mark.cli
def test_bin_verify_wraps_the_module_and_passes_its_arguments() -> None:
    script = ROOT / "bin" / "verify"
    assert script.stat().st_mode & 0o111
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in lines
    cp = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd="/", timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("usage: bin/verify [-h] [--context CONTEXT] [--timeout TIMEOUT] stack")
    cp = subprocess.run([str(script), "nosuch"], capture_output=True, text=True, cwd="/", timeout=60)
    assert (cp.returncode, cp.stderr.strip()) == (1, "verify: no stack file Pulumi.nosuch.yaml")


def test_target_keeps_the_stack_shape() -> None:
    # A literal expectation for one stack, so a change in naming rules shows up here.
    assert target_of(fixed_settings("prod")) == Target(
        namespace="postgres-prod",
        primary="postgres-0",
        pods=("postgres-0", "postgres-standby-1", "postgres-standby-2"),
        row_pods=("postgres-0", "postgres-standby-1", "postgres-standby-2"),
        statefulsets=(("postgres", 1), ("postgres-standby", 2)),
        service=Endpoint("postgres.postgres-prod.svc.cluster.local", 5432),
        cronjob="postgres-backup",
    )


def test_target_takes_the_archive_timeout_from_the_stack() -> None:
    settings = fixed_settings("prod")
    assert target_of(settings).archive_timeout == 300  # no backup.wal: PostgreSQL's default
    backup = settings.backup.model_copy(update={"wal": WalSettings(s3Remote="b/p", archiveTimeout="90s")})
    assert target_of(settings.model_copy(update={"backup": backup})).archive_timeout == 90
