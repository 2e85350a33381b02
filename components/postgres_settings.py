"""Pure functions: PostgreSQL layout and settings derived from the pod's resources.

Nothing here touches Pulumi, so the tests call these directly.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# The pod's shared emptyDir for the server's socket: probes, scripts and the sidecar connect here.
SOCKET_DIR = "/var/run/postgresql"


@dataclass(frozen=True)
class DataLayout:
    """Where the volume mounts and where PGDATA lives inside it."""

    mount_path: str
    pgdata: str


def data_layout(major: int) -> DataLayout:
    """The official image's layout for a major version.

    postgres:18 moved the VOLUME to /var/lib/postgresql and PGDATA to
    /var/lib/postgresql/18/docker (docker-library/postgres 18/*/Dockerfile).
    Older images mount /var/lib/postgresql/data; PGDATA must then be a
    subdirectory, because initdb refuses a mount point holding lost+found (seed 003).
    Either way PGDATA is a subdirectory of the mount.
    """
    if major >= 18:
        return DataLayout("/var/lib/postgresql", f"/var/lib/postgresql/{major}/docker")
    return DataLayout("/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata")


def _mb(n_bytes: int) -> str:
    return f"{max(n_bytes // MiB, 1)}MB"


def server_settings(memory_limit_bytes: int, replication: bool) -> dict[str, str]:
    """postgresql.conf settings sized to the container, passed on the postgres command line.

    - shared_buffers 25% and effective_cache_size 75% of the memory limit.
    - The WAL budget (max_wal_size, min_wal_size, wal_keep_size, max_slot_wal_keep_size)
      is NOT here: init.sh derives it from the volume's real size on every start
      (k8s-volume.conf), so growing a volume never changes the pod template and the
      budget always fits the volume the pod actually has.
    - Replication settings depend on replication being on, not on the replica count,
      so scaling the standbys never restarts the primary.
    """
    settings = {
        "listen_addresses": "*",
        "unix_socket_directories": SOCKET_DIR,
        "shared_buffers": _mb(memory_limit_bytes // 4),
        "effective_cache_size": _mb(memory_limit_bytes * 3 // 4),
        "password_encryption": "scram-sha-256",
        "log_min_duration_statement": "1000",
        "log_statement": "none",
    }
    if replication:
        settings |= {
            "wal_level": "replica",
            "hot_standby": "on",
            # Up to 14 standbys (replicas <= 15), each streaming, plus a clone's two connections.
            "max_wal_senders": "20",
            # One physical slot per standby (init.sh creates it): 10 standbys plus spares.
            "max_replication_slots": "20",
            "hot_standby_feedback": "on",
        }
    return settings


def postgres_args(settings: dict[str, str]) -> list[str]:
    """Command-line form: postgres -c key=value ..., sorted so diffs stay stable."""
    args = ["postgres"]
    for key in sorted(settings):
        args += ["-c", f"{key}={settings[key]}"]
    return args


def pod_names(name: str, replicas: int, replication: bool) -> list[str]:
    """Every pod of the set: <name>-0 then, with replication, the standbys <name>-standby-1.. (ordinals from 1)."""
    if not replication:
        return [f"{name}-{i}" for i in range(replicas)]
    return [f"{name}-0"] + [f"{name}-standby-{i}" for i in range(1, replicas)]


def service_dns(service: str, namespace: str, cluster_domain: str = "cluster.local") -> str:
    """A Service's cluster DNS name; for a headless Service it resolves to every selected pod."""
    return f"{service}.{namespace}.svc.{cluster_domain}"


def pod_dns(pod: str, service: str, namespace: str, cluster_domain: str = "cluster.local") -> str:
    """Stable per-pod DNS name a headless Service gives a StatefulSet pod."""
    return f"{pod}.{service_dns(service, namespace, cluster_domain)}"
