"""MetricsArgs: the exporter's contract, checked at construction, and the monitoring role reserved on
PostgresStatefulSetArgs (the pods create and peer-map it: no configured role may take its name)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.network_args import NetworkPolicyPeer
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_metrics_args import EXPORTER_DIGEST, EXPORTER_IMAGE, METRICS_PORT, METRICS_PORT_NAME, MetricsArgs
from components.postgres_names import MONITOR_ROLE
from components.validation import ArgsError


def test_defaults_pin_exporter_0_20_1_by_digest_and_admit_no_scraper() -> None:
    args = MetricsArgs()
    assert args.image == f"quay.io/prometheuscommunity/postgres-exporter:v0.20.1@{EXPORTER_DIGEST}" == EXPORTER_IMAGE
    assert EXPORTER_DIGEST.startswith("sha256:") and len(EXPORTER_DIGEST) == 7 + 64
    assert (args.image_pull_policy, args.allow_from, args.pod_monitor, args.prometheus_rule) == ("IfNotPresent", (), False, False)
    assert (METRICS_PORT, METRICS_PORT_NAME, MONITOR_ROLE) == (9187, "metrics", "pgstack_monitor")


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("image", "", "an image reference [registry/]repository:tag"),
        ("image", "quay.io/prometheuscommunity/postgres-exporter", "an image reference"),  # no tag
        ("image", "Quay.io/PE:v1", "an image reference"),
        ("image", f"pe:v0.20.1@sha256:{'A' * 64}", "an image reference"),
        ("image_pull_policy", "Sometimes", "one of 'Always', 'IfNotPresent', 'Never'"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: Any, accepted: str) -> None:
    with pytest.raises(ArgsError, match=rf"^MetricsArgs\.{field}: got .*; expected {re.escape(accepted)}") as err:
        MetricsArgs(**{field: value})
    assert err.value.args_class is MetricsArgs and err.value.field == field


def test_good_images_are_accepted() -> None:
    for image in ("pe:v0.20.1", "registry.example.com:5000/mirror/pe:v0.20.1", f"pe:v0.20.1@{EXPORTER_DIGEST}"):
        assert MetricsArgs(image=image).image == image
    assert MetricsArgs(allow_from=(NetworkPolicyPeer(cidr="10.0.0.0/8"),)).allow_from[0].cidr == "10.0.0.0/8"


@pytest.mark.parametrize("field", ["username", "replication_user"])
def test_the_monitoring_role_is_reserved(field: str) -> None:
    expected = "expected a role name other than pgstack_monitor (reserved: the metrics exporter's role)"
    with pytest.raises(ArgsError, match=rf"^PostgresStatefulSetArgs\.{field}: got 'pgstack_monitor'; {re.escape(expected)}"):
        PostgresStatefulSetArgs(namespace="db", storage_class="c", image="postgres:18.1", **{field: MONITOR_ROLE})
    # Refused whether metrics are on or off: the role's name is the pods' (pod-roles.sh, the pg_ident map).
    assert PostgresStatefulSetArgs(namespace="db", storage_class="c", image="postgres:18.1", metrics=MetricsArgs()).metrics is not None
