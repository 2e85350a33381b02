"""Security contexts and checkov skips for pods that run the official postgres image.

Shared by the database pods (components/postgres_pod.py) and the dump job (logical_backup.py).
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

# The official Debian-based image runs PostgreSQL as postgres, uid/gid 999.
POSTGRES_UID = 999

# checkov checks that do not apply, with the reason; rendered as checkov.io/skipN annotations
# and listed in docs/security.md#checkov-skips.
SKIP_HIGH_UID = (
    "CKV_K8S_40",
    "the official image runs PostgreSQL as uid 999; initdb and peer authentication need the running uid in the image's /etc/passwd",
)
SKIP_PULL_ALWAYS = (
    "CKV_K8S_15",
    "the image is pinned by digest, so IfNotPresent runs exactly that image; Always would make every restart depend on the registry",
)
SKIP_SIDECAR_READINESS = (
    "CKV_K8S_9",
    "the password-sync sidecar has no readiness probe on purpose: pod readiness is the database's, and a sidecar problem "
    "must not take the primary out of its Service; its liveness probe restarts a stuck loop",
)


def checkov_skips(image: str, pull_policy: str, sidecar: bool = False) -> dict[str, str]:
    """Skip annotations; the pull-policy skip holds only for a digest-pinned image, the readiness one
    only for a workload with the password sidecar."""
    skips = [SKIP_HIGH_UID] + ([SKIP_SIDECAR_READINESS] if sidecar else [])
    if "@sha256:" in image and pull_policy == "IfNotPresent":
        skips.append(SKIP_PULL_ALWAYS)
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(skips, start=1)}


def container_security(uid: int = POSTGRES_UID) -> k8s.core.v1.SecurityContextArgs:
    """The restricted Pod Security profile for a container running as uid (and its group): the image's postgres
    user unless said otherwise."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    """The pod level of the same profile; fs_group makes the volume writable by the postgres user."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=POSTGRES_UID,
        run_as_group=POSTGRES_UID,
        fs_group=POSTGRES_UID,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )
