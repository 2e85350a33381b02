"""MetricsArgs: the contract of the metrics exporter sidecar (components/postgres_exporter.py) and of who
may scrape it (components/postgres_network.py). Present on PostgresStatefulSetArgs.metrics when metrics
are on; None: no sidecar, no monitoring role, no metrics port in the NetworkPolicy.

The PodMonitor and PrometheusRule flags are carried here for the objects built from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from components.network_args import NetworkPolicyPeer
from components.validation import check_literals, fail

# postgres_exporter 0.20.1, pinned by the digest of its multi-arch image index on quay.io. UNVERIFIED against
# the project itself: its release notes and CI (prometheus-community/postgres_exporter at tag v0.20.1, commit
# 867fbcac31cd18c143e244190ea9168cca069827: .github/workflows/ and CHANGELOG.md) publish no digest. The same digest is
# pinned for quay.io/prometheuscommunity/postgres-exporter:v0.20.1 by several unrelated public repositories in
# the search index (e.g. a Dockerfile that rebuilds the binary from that very commit on top of
# `FROM quay.io/prometheuscommunity/postgres-exporter:v0.20.1@sha256:ac5ec343...`); check it with
# `crane digest quay.io/prometheuscommunity/postgres-exporter:v0.20.1` before relying on it.
EXPORTER_REPOSITORY = "quay.io/prometheuscommunity/postgres-exporter"
EXPORTER_TAG = "v0.20.1"
EXPORTER_DIGEST = "sha256:ac5ec343104fae0e2d84a27bb8d69b38430a11910c5382cad85d478d2bab713e"
EXPORTER_IMAGE = f"{EXPORTER_REPOSITORY}:{EXPORTER_TAG}@{EXPORTER_DIGEST}"
# The exporter's default listen address is :9187 (cmd/postgres_exporter/main.go:41 at v0.20.1,
# kingpinflag.AddFlags(kingpin.CommandLine, ":9187")); the PodMonitor selects the port by its name.
METRICS_PORT = 9187
METRICS_PORT_NAME = "metrics"
# [registry[:port]/]path[:tag][@sha256:digest], lowercase path (the OCI reference grammar, loosely:
# stacks/config/metrics.py checks each part precisely).
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?")


@dataclass(frozen=True)
class MetricsArgs:
    """The postgres_exporter sidecar in every database pod, and who may scrape it."""

    image: str = EXPORTER_IMAGE
    """The exporter image, ``[registry/]repository:tag[@sha256:digest]``; pin it by digest."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """When the kubelet pulls it (postgres_args.PullPolicy's values: that module imports this one)."""
    allow_from: tuple[NetworkPolicyPeer, ...] = ()
    """Who may reach the metrics port through the NetworkPolicy; empty: nobody (name the Prometheus)."""
    pod_monitor: bool = False
    """Create a prometheus-operator PodMonitor (needs its CRDs in the cluster)."""
    prometheus_rule: bool = False
    """Create a prometheus-operator PrometheusRule with pgstack's alerts (needs its CRDs)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not isinstance(self.image, str) or not _IMAGE.fullmatch(self.image) or ":" not in self.image.rsplit("/", 1)[-1]:
            fail(
                self,
                "image",
                self.image,
                "an image reference [registry/]repository:tag[@sha256:<64 hex digits>]",
                examples=(EXPORTER_IMAGE,),
            )
