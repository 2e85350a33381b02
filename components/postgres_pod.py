"""The database pod: environment, mounts, probes and containers, built by pure functions.

Every container runs the database image with the same environment and the restricted
security context: ``init`` (init.sh: initdb, clone or recover), ``postgres`` and the
``password-sync`` sidecar, which applies the Secret's passwords to the running server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.pod_env_contract import POD_ENV, EnvContract, EnvVar
from components.pod_env_contract_sh import generated_scripts
from components.pod_security import container_security, pod_security_context
from components.postgres_conf import SOCKET_DIR, TLS_MOUNT, DataLayout, postgres_args
from components.postgres_exporter import exporter_container
from components.postgres_names import CONTAINER_PORT, DATA_VOLUME, MONITOR_ROLE, primary_pod_name
from components.postgres_scheduling import affinity, topology_spread
from components.wal_pod import (
    RCLONE_PATH,
    rclone_copy_container,
    rclone_mount,
    rclone_volume,
    wal_s3_env,
    wal_s3_mount,
    wal_s3_volume,
)

if TYPE_CHECKING:
    from components.postgres_args import PostgresStatefulSetArgs

SCRIPTS_DIR = Path(__file__).parent / "scripts"
SCRIPTS_MOUNT = "/scripts"
SECRETS_MOUNT = "/etc/postgresql/secrets"
# Crash recovery after a node reboot can take minutes: the startup probe allows 15 minutes
# (90 x 10 s) before liveness starts counting.
STARTUP_PROBE_SECONDS = 90 * 10
# The values of a container's pod-set env (names and order: the contract in components/pod_env_contract.py).
EnvValues = Mapping[str, pulumi.Input[str]]


def script_files() -> dict[str, str]:
    """The container scripts shipped to every pod through a ConfigMap, with the env contract they
    source (env-contract.sh, generated from components/pod_env_contract.py)."""
    return {p.name: p.read_text() for p in sorted(SCRIPTS_DIR.glob("*.sh"))} | generated_scripts()


def checksum(*parts: str) -> str:
    """Stable digest used in pod-template annotations so pods roll when inputs change."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def postgres_env(
    name: str, args: PostgresStatefulSetArgs, layout: DataLayout, primary_host: pulumi.Input[str], peers_host: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The values of every database container's environment (POD_ENV in components/pod_env_contract.py
    declares the names, their order and the downward-API fields)."""
    restore = args.wal.restore if args.wal is not None else None
    return {
        "PRIMARY_HOST": primary_host,
        # Every pod's address, ready or not: a primary with an empty volume looks for peers holding data.
        "PEERS_HOST": peers_host,
        "PRIMARY_POD": primary_pod_name(name, args.primary_pod),
        "PGDATA": layout.pgdata,
        "STACK_PG_MAJOR": str(args.image_major),
        "DATA_MOUNT": layout.mount_path,
        "PGPORT": str(CONTAINER_PORT),
        "PG_SOCKET_DIR": SOCKET_DIR,
        "REPLICATION_ENABLED": "true" if args.replication else "false",
        "PRIMARY_PORT": str(CONTAINER_PORT),
        "REPLICATION_USER": args.replication_user,
        "SECRETS_DIR": SECRETS_MOUNT,
        "POSTGRES_PASSWORD_FILE": f"{SECRETS_MOUNT}/postgres-password",
        "APP_USER": args.username or "",
        "APP_DATABASE": args.database if args.username else "",
        "READINESS_MAX_LAG_BYTES": str(args.max_lag_bytes),
        "PROMOTE_ACCEPT_WAL_LOSS_UP_TO": args.accept_wal_loss_up_to or "",
        # The mounted TLS Secret (TLS_MOUNT) when TLS is on; the scripts read both (components/scripts/).
        "TLS_DIR": TLS_MOUNT if args.tls is not None else "",
        "TLS_REQUIRED": "true" if args.tls is not None and args.tls.required else "false",
        "MONITOR_USER": MONITOR_ROLE if args.metrics else "",
        # WAL archiving (issue 20): archive_command's target and the pod's copy of rclone (components/wal_pod.py).
        "WAL_TARGET": args.wal.target if args.wal is not None else "",
        "WAL_RCLONE": RCLONE_PATH if args.wal is not None else "",
        # A new stack restored from another archive at a point in time (init-pitr.sh); empty: initdb.
        "PITR_FROM": restore.target if restore is not None else "",
        "PITR_TARGET": restore.point if restore is not None else "latest",
    }


def env_vars(contract: EnvContract, values: Mapping[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    """A container's env in the contract's order: exactly its pod-set names (refuses missing or
    undeclared ones), the downward-API fields filled in by the kubelet."""

    def var(v: EnvVar, value: pulumi.Input[str] | None) -> k8s.core.v1.EnvVarArgs:
        if v.field_path is not None:
            source = k8s.core.v1.EnvVarSourceArgs(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=v.field_path))
            return k8s.core.v1.EnvVarArgs(name=v.name, value_from=source)
        return k8s.core.v1.EnvVarArgs(name=v.name, value=value)

    return [var(v, value) for v, value in contract.pod_entries(values)]


def mounts(layout: DataLayout, with_data: bool, tls: bool = False) -> list[k8s.core.v1.VolumeMountArgs]:
    found = [
        k8s.core.v1.VolumeMountArgs(name="scripts", mount_path=SCRIPTS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="secrets", mount_path=SECRETS_MOUNT, read_only=True),
        k8s.core.v1.VolumeMountArgs(name="run", mount_path=SOCKET_DIR),
        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
    ]
    if with_data:
        found.append(k8s.core.v1.VolumeMountArgs(name=DATA_VOLUME, mount_path=layout.mount_path))
    if tls:
        # The server reads its certificate and key, init.sh's clone the CA (verify-full), the sidecar hashes all three.
        found.append(k8s.core.v1.VolumeMountArgs(name="tls", mount_path=TLS_MOUNT, read_only=True))
    return found


def _exec_probe(command: list[str], period: int, failures: int, initial_delay: int | None = None) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        exec_=k8s.core.v1.ExecActionArgs(command=command),
        initial_delay_seconds=initial_delay,
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=failures,
    )


def container(
    pg: PostgresStatefulSetArgs,
    env: EnvValues,
    name: str,
    command: list[str],
    extra_env: list[k8s.core.v1.EnvVarArgs] | None = None,
    **spec: Any,
) -> k8s.core.v1.ContainerArgs:
    """Every container runs the same image, environment (then extra_env, which the contract does not set by
    value) and locked-down security context."""
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=pg.image,
        image_pull_policy=pg.image_pull_policy,
        command=command,
        env=[*env_vars(POD_ENV, env), *(extra_env or [])],
        security_context=container_security(),
        **spec,
    )


def postgres_container(
    args: PostgresStatefulSetArgs,
    env: EnvValues,
    layout: DataLayout,
    parameters: dict[str, str],
) -> k8s.core.v1.ContainerArgs:
    argv = postgres_args(parameters)
    pg_isready = ["pg_isready", "--host", SOCKET_DIR, "--port", str(CONTAINER_PORT), "--quiet"]
    # Kubernetes sends SIGTERM (smart shutdown waits for every client); ask for a fast one.
    fast_stop = ["pg_ctl", "stop", "-D", layout.pgdata, "-m", "fast", "-w", "-t", "50"]
    # archive_command runs here: rclone's copy and its config file (the S3 account) from the Secret, as files.
    wal_mounts = [rclone_mount(), wal_s3_mount()] if args.wal is not None else []
    wal_env = wal_s3_env() if args.wal is not None else None
    return container(
        args,
        env,
        "postgres",
        argv[:1],
        wal_env,
        args=argv[1:],
        ports=[k8s.core.v1.ContainerPortArgs(name="postgresql", container_port=CONTAINER_PORT, protocol="TCP")],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=args.requests, limits=args.limits),
        volume_mounts=[
            *mounts(layout, True, args.tls is not None),
            k8s.core.v1.VolumeMountArgs(name="shm", mount_path="/dev/shm"),
            *wal_mounts,
        ],
        startup_probe=_exec_probe(pg_isready, 10, STARTUP_PROBE_SECONDS // 10),
        liveness_probe=_exec_probe(pg_isready, 10, 6),
        readiness_probe=_exec_probe([f"{SCRIPTS_MOUNT}/readiness.sh"], 5, 3),
        lifecycle=k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(exec_=k8s.core.v1.ExecActionArgs(command=fast_stop))),
    )


def init_container(args: PostgresStatefulSetArgs, env: EnvValues, layout: DataLayout) -> k8s.core.v1.ContainerArgs:
    resources = k8s.core.v1.ResourceRequirementsArgs(requests=args.requests, limits=args.limits)
    # A point-in-time restore (init-pitr.sh) reads the archive with rclone, and replays on a temporary server.
    restoring = args.wal is not None and args.wal.restore is not None
    wal_mounts = [rclone_mount(), wal_s3_mount()] if restoring else []
    return container(
        args,
        env,
        "init",
        [f"{SCRIPTS_MOUNT}/init.sh"],
        wal_s3_env() if restoring else None,
        volume_mounts=[*mounts(layout, True, args.tls is not None), *wal_mounts],
        resources=resources,
    )


def sync_container(args: PostgresStatefulSetArgs, env: EnvValues, layout: DataLayout) -> k8s.core.v1.ContainerArgs:
    """The password sidecar. No readiness probe: pod readiness is the database's, and a sidecar
    problem must never take the primary out of its Service; liveness restarts a stuck loop
    (it leaves a heartbeat after every pass)."""
    return container(
        args,
        env,
        "password-sync",
        [f"{SCRIPTS_MOUNT}/sync-passwords.sh"],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "128Mi"}
        ),
        liveness_probe=_exec_probe([f"{SCRIPTS_MOUNT}/sync-passwords.sh", "--alive"], 30, 3, initial_delay=30),
        volume_mounts=mounts(layout, False, args.tls is not None),
    )


def volumes(
    scripts_config_map: pulumi.Input[str], secret: pulumi.Input[str], shm_size: str, tls_secret: pulumi.Input[str] | None = None
) -> list[k8s.core.v1.VolumeArgs]:
    """Scripts, passwords and the TLS files read-only; the socket, /tmp and /dev/shm in memory-sized emptyDirs."""
    found = [
        k8s.core.v1.VolumeArgs(
            name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=scripts_config_map, default_mode=0o555)
        ),
        k8s.core.v1.VolumeArgs(name="secrets", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=secret, default_mode=0o440)),
        k8s.core.v1.VolumeArgs(name="run", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")),
        k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="256Mi")),
        k8s.core.v1.VolumeArgs(name="shm", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit=shm_size)),
    ]
    if tls_secret is not None:
        # 0o440: the kubelet makes the files root-owned with group fsGroup, which PostgreSQL accepts for a key
        # (src/backend/libpq/be-secure-common.c check_ssl_key_file: root-owned, no world bits).
        tls = k8s.core.v1.SecretVolumeSourceArgs(secret_name=tls_secret, default_mode=0o440)
        found.append(k8s.core.v1.VolumeArgs(name="tls", secret=tls))
    return found


@dataclass(frozen=True)
class PodObjects:
    """Names of the objects a pod refers to: known strings (the StatefulSets depend_on the objects), so
    no StatefulSet input property-depends on an object that is deleted before it is replaced."""

    service_account: pulumi.Input[str]
    scripts_config_map: pulumi.Input[str]
    secret: pulumi.Input[str]
    tls_secret: pulumi.Input[str] | None = None
    wal_secret: pulumi.Input[str] | None = None


def pod_spec(
    name: str, args: PostgresStatefulSetArgs, env: EnvValues, layout: DataLayout, parameters: dict[str, str], objects: PodObjects
) -> k8s.core.v1.PodSpecArgs:
    return k8s.core.v1.PodSpecArgs(
        service_account_name=objects.service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        termination_grace_period_seconds=60,
        security_context=pod_security_context(),
        affinity=affinity(name, args.anti_affinity),
        topology_spread_constraints=topology_spread(name, args.anti_affinity),
        init_containers=[*([rclone_copy_container()] if args.wal is not None else []), init_container(args, env, layout)],
        containers=[
            postgres_container(args, env, layout, parameters),
            sync_container(args, env, layout),
            *([exporter_container(args.metrics)] if args.metrics else []),
        ],
        volumes=[
            *volumes(objects.scripts_config_map, objects.secret, args.shm_size, objects.tls_secret),
            *([rclone_volume(), wal_s3_volume(objects.wal_secret)] if args.wal is not None and objects.wal_secret else []),
        ],
    )
