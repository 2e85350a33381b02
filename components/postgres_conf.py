"""postgresql.conf for the pod, by pure functions: the image's major, its data layout, and the server
parameters sized from the pod's resources (the stack's own settings are stacks/config/).

Nothing here touches Pulumi, so the tests call these directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024
# The most pods a set can have: max_wal_senders and max_replication_slots below leave room
# for 14 standbys plus a clone's connections. stacks/config/ caps postgres.replicas with it.
MAX_REPLICAS = 15
# Our own reading of a postgres tag: the leading number is the major (18, 18.1, 18.1-trixie, 9.6.24).
_PG_TAG = re.compile(r"([0-9]+)(\.[0-9]+)*([-.][A-Za-z0-9_.-]+)?")
# The pod's shared emptyDir for the server's socket: probes, scripts and the sidecar connect here.
SOCKET_DIR = "/var/run/postgresql"
# Where the pods mount the TLS Secret (tls.crt, tls.key, ca.crt: the kubernetes.io/tls layout cert-manager writes).
TLS_MOUNT = "/etc/postgresql/tls"
TlsProtocol = Literal["TLSv1.2", "TLSv1.3"]


@dataclass(frozen=True)
class DataLayout:
    """Where the volume mounts and where PGDATA lives inside it."""

    mount_path: str
    pgdata: str


def pg_major(tag: str) -> int | None:
    """The PostgreSQL major a postgres image tag names (18.1-trixie -> 18), or None."""
    match = _PG_TAG.fullmatch(tag)
    return int(match.group(1)) if match else None


def image_tag(image: str) -> str | None:
    """The tag of an image reference ``[registry[:port]/]path[:tag][@digest]``, or None."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_major(image: str) -> int | None:
    """The major of a postgres image reference, read from its tag (``postgres:18.1@sha256:...`` -> 18).

    The tag is the one source: a digest alone does not say which major it is, so a reference
    without a tag naming the major has no major (None), and PostgresStatefulSetArgs refuses it.
    """
    tag = image_tag(image)
    return pg_major(tag) if tag is not None else None


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


def server_parameters(memory_limit_bytes: int, replication: bool) -> dict[str, str]:
    """postgresql.conf parameters sized to the container, passed on the postgres command line.

    - shared_buffers 25% and effective_cache_size 75% of the memory limit.
    - The WAL budget (max_wal_size, min_wal_size, wal_keep_size, max_slot_wal_keep_size)
      is NOT here: init.sh derives it from the volume's real size on every start
      (k8s-volume.conf), so growing a volume never changes the pod template and the
      budget always fits the volume the pod actually has.
    - Replication settings depend on replication being on, not on the replica count,
      so scaling the standbys never restarts the primary.
    """
    parameters = {
        "listen_addresses": "*",
        "unix_socket_directories": SOCKET_DIR,
        "shared_buffers": _mb(memory_limit_bytes // 4),
        "effective_cache_size": _mb(memory_limit_bytes * 3 // 4),
        "password_encryption": "scram-sha-256",
        "log_min_duration_statement": "1000",
        "log_statement": "none",
    }
    if replication:
        parameters |= {
            "wal_level": "replica",
            "hot_standby": "on",
            # Up to 14 standbys (replicas <= 15), each streaming, plus a clone's two connections.
            "max_wal_senders": "20",
            # One physical slot per standby (init.sh creates it): 10 standbys plus spares.
            "max_replication_slots": "20",
            "hot_standby_feedback": "on",
        }
    return parameters


def tls_parameters(tls_dir: str, min_protocol: TlsProtocol) -> dict[str, str]:
    """The server's TLS settings: its certificate and key from the mounted Secret, and the oldest
    protocol it accepts. No ssl_ca_file: clients authenticate with passwords, not certificates."""
    return {
        "ssl": "on",
        "ssl_cert_file": f"{tls_dir}/tls.crt",
        "ssl_key_file": f"{tls_dir}/tls.key",
        "ssl_min_protocol_version": min_protocol,
    }


def postgres_args(parameters: dict[str, str]) -> list[str]:
    """Command-line form: postgres -c key=value ..., sorted so diffs stay stable."""
    args = ["postgres"]
    for key in sorted(parameters):
        args += ["-c", f"{key}={parameters[key]}"]
    return args
