"""The WAL archive's pieces of a pod, by pure functions: the rclone copy, rclone's remote WAL from the Secret,
and the server parameters that archive (issue 20). Used by the database pods (components/postgres_pod.py)
and the base-backup job (components/wal_backup_pod.py)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.pod_env_contract import WAL_REMOTE
from components.pod_security import container_security

# The dumps' pinned rclone image (components/logical_backup_pod.py RCLONE_IMAGE, which imports the database pod
# and so cannot be imported from it; tests/components/test_wal_pod.py keeps the two equal).
RCLONE_IMAGE = "docker.io/rclone/rclone:1.75.0@sha256:b06aed988cf5967de7c25be5925240983981c757f4ed1ac9d2fa659d51d60548"
RCLONE_VOLUME = "rclone"
RCLONE_DIR = "/opt/rclone"
#: WAL_RCLONE: the copy of rclone's static binary in the pod (the database image has none).
RCLONE_PATH = f"{RCLONE_DIR}/rclone"
# rclone's Dockerfile (rclone/rclone Dockerfile, final stage FROM alpine) installs the static binary on PATH and
# keeps Alpine's busybox sh and cp; older tags put it in /usr/bin, newer ones in /usr/local/bin, so the copy
# looks it up on PATH instead of naming one (the exact path at 1.75.0 is unverified from here).
_COPY = f'cp "$(command -v rclone)" {RCLONE_PATH}'
# Keys of the Secret <name>-wal-s3, each becoming RCLONE_CONFIG_WAL_<KEY> (rclone's env config); the optional ones
# may be absent (the provider's default endpoint and region).
WAL_S3_KEYS = ("type", "provider", "access_key_id", "secret_access_key", "endpoint", "region")
_OPTIONAL = ("endpoint", "region")


def archive_parameters(scripts_mount: str, archive_timeout: str) -> dict[str, str]:
    """archive_mode=on (not always): PostgreSQL archives on a primary only, and a promoted standby starts archiving
    its new timeline; wal-archive.sh stores each file in WAL_TARGET; archive_timeout bounds the recovery point."""
    return {
        "archive_mode": "on",
        "archive_command": f'{scripts_mount}/wal-archive.sh "%p" "%f"',
        "archive_timeout": archive_timeout,
    }


def rclone_copy_container() -> k8s.core.v1.ContainerArgs:
    """An init container putting rclone's binary into the pod's rclone emptyDir (RCLONE_PATH)."""
    return k8s.core.v1.ContainerArgs(
        name="rclone-copy",
        image=RCLONE_IMAGE,
        image_pull_policy="IfNotPresent",
        command=["/bin/sh", "-c", _COPY],
        security_context=container_security(),
        resources=k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": "10m", "memory": "32Mi"}, limits={"cpu": "200m", "memory": "64Mi"}),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name=RCLONE_VOLUME, mount_path=RCLONE_DIR)],
    )


def rclone_mount() -> k8s.core.v1.VolumeMountArgs:
    """The copied binary, read-only where the WAL commands run it."""
    return k8s.core.v1.VolumeMountArgs(name=RCLONE_VOLUME, mount_path=RCLONE_DIR, read_only=True)


def rclone_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(name=RCLONE_VOLUME, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="128Mi"))


def wal_remote_env(secret_name: pulumi.Input[str]) -> list[k8s.core.v1.EnvVarArgs]:
    """rclone's remote WAL from the Secret, key by key (secretKeyRef: never a literal in the pod spec)."""
    return [
        k8s.core.v1.EnvVarArgs(
            name=f"RCLONE_CONFIG_{WAL_REMOTE}_{key.upper()}",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret_name, key=key, optional=key in _OPTIONAL)
            ),
        )
        for key in WAL_S3_KEYS
    ]
