"""The metrics sidecar: postgres_exporter in every database pod, built by a pure function.

It connects over the pod's Unix socket as MONITOR_ROLE (a pg_monitor member without a password): the
server maps the OS user the socket's peer runs as, nobody (uid 65534 in the Debian postgres image's
/etc/passwd, where the server resolves it), to that role (pg_ident.conf, components/scripts/init-managed-conf.sh),
so no password exists anywhere. The role is made by pod-roles.sh.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components.pod_security import container_security
from components.postgres_conf import SOCKET_DIR
from components.postgres_metrics_args import METRICS_PORT, METRICS_PORT_NAME, MetricsArgs
from components.postgres_names import CONTAINER_PORT, MONITOR_ROLE

# OS user nobody: the Debian base image's passwd line nobody:x:65534:65534 (base-passwd), the user the
# exporter's own image runs as (its Dockerfile at v0.20.1: USER nobody). The pg_ident map names it.
EXPORTER_UID = 65534
EXPORTER_OS_USER = "nobody"
# Key/value connection string over the socket directory, the form the exporter's own readme shows for a Unix
# socket (line 323 at v0.20.1: DATA_SOURCE_NAME="user=postgres host=/var/run/postgresql/ sslmode=disable"); the
# exporter reads DATA_SOURCE_NAME before any user/password variable (exporter/datasource.go:119-126, GetDataSources),
# opens it with lib/pq (collector/instance.go:37, 54) and labels its metrics host:port from the key/value pairs
# (exporter/util.go:165-199, parseFingerprint). The port names the socket file, .s.PGSQL.<port>.
DATA_SOURCE_NAME = f"host={SOCKET_DIR} port={CONTAINER_PORT} user={MONITOR_ROLE} dbname=postgres sslmode=disable"
# The landing page "/" answers without a database query (cmd/postgres_exporter/main.go:145-161 at v0.20.1), so
# liveness restarts a hung exporter, never one whose server is down (that is pg_up 0, an alert, not a restart).
LIVENESS_PATH = "/"
EXPORTER_FLAGS = ("--collector.database_wraparound",)
REQUESTS = {"cpu": "10m", "memory": "32Mi"}
LIMITS = {"cpu": "200m", "memory": "128Mi"}


def exporter_security() -> k8s.core.v1.SecurityContextArgs:
    """The restricted Pod Security profile as components/pod_security.py gives it, as user nobody."""
    return container_security(EXPORTER_UID)


def exporter_container(metrics: MetricsArgs) -> k8s.core.v1.ContainerArgs:
    """The sidecar. No readiness probe: pod readiness is the database's, and a failing scrape must never take
    the primary out of its Service (a container that is not running still makes its pod unready: an image that
    cannot be pulled, a crash loop). It mounts only the socket's emptyDir, read-only: connecting to a
    socket needs no write access to the mount, and the directory's files (the replication passfile) are
    postgres's own (0600)."""
    port = k8s.core.v1.ContainerPortArgs(name=METRICS_PORT_NAME, container_port=METRICS_PORT, protocol="TCP")
    return k8s.core.v1.ContainerArgs(
        name="metrics",
        image=metrics.image,
        image_pull_policy=metrics.image_pull_policy,
        # The transaction-ID age alert reads pg_database_wraparound_age_datfrozenxid_seconds, a collector that is off
        # by default (components/postgres_alerts.py).
        args=list(EXPORTER_FLAGS),
        env=[k8s.core.v1.EnvVarArgs(name="DATA_SOURCE_NAME", value=DATA_SOURCE_NAME)],
        ports=[port],
        resources=k8s.core.v1.ResourceRequirementsArgs(requests=dict(REQUESTS), limits=dict(LIMITS)),
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=LIVENESS_PATH, port=METRICS_PORT_NAME),
            period_seconds=30,
            timeout_seconds=5,
            failure_threshold=3,
        ),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="run", mount_path=SOCKET_DIR, read_only=True)],
        security_context=exporter_security(),
    )
