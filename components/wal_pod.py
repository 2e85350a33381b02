"""The WAL archive's pieces of a pod, by pure functions: the rclone copy, rclone's config file from the Secret,
and the server parameters that archive (issue 20). Used by the database pods (components/postgres_pod.py)
and the base-backup job (components/wal_backup_pod.py)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.pod_security import container_security

# rclone: a maintained, single static binary speaking S3 and every other object store, in a small official
# image, pinned by digest as public projects pin it (unverified against the registry from this machine). The one
# pin: the dumps' upload (components/logical_backup_pod.py) runs it too.
RCLONE_IMAGE = "docker.io/rclone/rclone:1.75.0@sha256:b06aed988cf5967de7c25be5925240983981c757f4ed1ac9d2fa659d51d60548"
RCLONE_VOLUME = "rclone"
RCLONE_DIR = "/opt/rclone"
#: WAL_RCLONE: the copy of rclone's static binary in the pod (the database image has none).
RCLONE_PATH = f"{RCLONE_DIR}/rclone"
# rclone's Dockerfile (rclone/rclone Dockerfile, final stage FROM alpine) installs the static binary on PATH and
# keeps Alpine's busybox sh and cp; older tags put it in /usr/bin, newer ones in /usr/local/bin, so the copy
# looks it up on PATH instead of naming one (the exact path at 1.75.0 is unverified from here).
_COPY = f'cp "$(command -v rclone)" {RCLONE_PATH}'
# The Secret <name>-wal-s3 holds rclone's config file with the S3 account as remote WAL (stacks/args/wal.py
# wal_rclone_conf), mounted as a file and named by RCLONE_CONFIG, which rclone reads itself: a secret as a file, not
# in the environment (checkov CKV_K8S_35), and rclone never writes it for S3 keys (unverified beyond rclone's docs).
WAL_S3_VOLUME = "wal-s3"
WAL_S3_DIR = "/etc/postgresql/wal-s3"
RCLONE_CONF_KEY = "rclone.conf"
RCLONE_CONFIG = f"{WAL_S3_DIR}/{RCLONE_CONF_KEY}"


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


def wal_s3_env() -> list[k8s.core.v1.EnvVarArgs]:
    """RCLONE_CONFIG (components/pod_env_contract.py, set only where a WAL command runs): the mounted config file."""
    return [k8s.core.v1.EnvVarArgs(name="RCLONE_CONFIG", value=RCLONE_CONFIG)]


def wal_s3_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=WAL_S3_VOLUME, mount_path=WAL_S3_DIR, read_only=True)


def wal_s3_volume(secret_name: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    """Only rclone.conf of the Secret, 0o440 (root-owned, group fsGroup: the postgres user reads it)."""
    only_conf = [k8s.core.v1.KeyToPathArgs(key=RCLONE_CONF_KEY, path=RCLONE_CONF_KEY)]
    return k8s.core.v1.VolumeArgs(
        name=WAL_S3_VOLUME, secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=secret_name, items=only_conf, default_mode=0o440)
    )


def rclone_conf(remote: str, settings: dict[str, str]) -> str:
    """An rclone config file with one remote (INI: [REMOTE] then key = value lines)."""
    return "".join([f"[{remote}]\n", *(f"{key} = {value}\n" for key, value in settings.items())])
