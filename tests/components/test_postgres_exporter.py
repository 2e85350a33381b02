"""The metrics sidecar in the program run of each stack: in both StatefulSets when metrics are on, pinned,
restricted, port 9187 named metrics, liveness only, no password anywhere; MONITOR_USER; the NetworkPolicy's
rule for the metrics port. Reads the stack runs the other per-stack tests make (no extra program run)."""

from __future__ import annotations

import re
from typing import Any

from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_conf import SOCKET_DIR
from components.postgres_exporter import DATA_SOURCE_NAME, exporter_container
from components.postgres_metrics_args import EXPORTER_IMAGE, MetricsArgs
from components.postgres_names import MONITOR_ROLE
from components.postgres_network import network_policy_spec
from tests.conftest import STS, fixed_config, settings_of
from tools.changes import ROLLS, classify
from tools.mock_run import Run, plain, run_program

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PROMETHEUS = {"namespaceLabels": {"kubernetes.io/metadata.name": "monitoring"}, "podLabels": {"app.kubernetes.io/name": "prometheus"}}


def _containers(run: Run) -> dict[str, dict[str, dict[str, Any]]]:
    """StatefulSet name -> container name -> container, as the program registered them."""
    out = {}
    for sts in run.of_type(STS):
        pod = plain(sts.inputs["spec"]["template"]["spec"])
        out[sts.name] = {c["name"]: c for c in pod["containers"] + pod["initContainers"]}
    return out


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def test_the_sidecar_runs_in_both_statefulsets_exactly_when_metrics_are_on(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    sets = _containers(stack_run)
    assert sets
    for sts, containers in sets.items():
        assert ("metrics" in containers) == settings.metrics.enabled, sts
        # Every database container tells the pod scripts which role to make and map (pod-roles.sh, init-managed-conf.sh).
        for name in ("init", "postgres", "password-sync"):
            assert _env(containers[name])["MONITOR_USER"] == (MONITOR_ROLE if settings.metrics.enabled else ""), f"{sts}/{name}"
    if settings.postgres.replication.enabled:
        assert len(sets) == 2  # the primary's set and the standbys' set both carry it


def test_the_sidecar_is_pinned_restricted_small_and_passwordless(stack_run: Run, stack: str) -> None:
    metrics = settings_of(stack).metrics
    if not metrics.enabled:
        return
    for sts, containers in _containers(stack_run).items():
        c = containers["metrics"]
        assert c["image"] == metrics.image.reference, sts
        assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), c["image"]
        assert c["imagePullPolicy"] == metrics.image.pullPolicy
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert c["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
        assert c["ports"] == [{"name": "metrics", "containerPort": 9187, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"] == {"path": "/", "port": "metrics"}
        assert "readinessProbe" not in c and "startupProbe" not in c
        # Only the socket, read-only: no Secret, no data, no scripts.
        assert c["volumeMounts"] == [{"name": "run", "mountPath": SOCKET_DIR, "readOnly": True}]
        # Peer authentication over the socket: the connection string names no password, and nothing comes from a Secret.
        dsn = f"host={SOCKET_DIR} port=5432 user={MONITOR_ROLE} dbname=postgres sslmode=disable"
        assert c["env"] == [{"name": "DATA_SOURCE_NAME", "value": dsn}]
        assert "password" not in str(c).lower() and "secret" not in str(c).lower() and not c.get("envFrom")


def test_the_network_policy_admits_the_metrics_port_only_from_allow_from(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    if not settings.postgres.networkPolicy.enabled:
        return
    ingress = plain(stack_run.one(NETPOL, f"{settings.postgres.name}-netpol").inputs["spec"])["ingress"]
    to_metrics = [rule for rule in ingress if {"port": 9187, "protocol": "TCP"} in rule["ports"]]
    metrics = settings.metrics
    if not (metrics.enabled and metrics.allowFrom):
        assert to_metrics == []
        return
    [rule] = to_metrics
    assert rule["ports"] == [{"port": 9187, "protocol": "TCP"}]
    expected = []
    for peer in metrics.allowFrom:
        if peer.cidr is not None:
            expected.append({"ipBlock": {"cidr": peer.cidr}})
        else:
            namespaces = {} if peer.namespaceLabels is None else {"namespaceSelector": {"matchLabels": peer.namespaceLabels}}
            expected.append({"podSelector": {"matchLabels": peer.podLabels}, **namespaces})
    assert rule["from"] == expected
    # The PostgreSQL rule does not open the metrics port, and the scrapers get nothing but it.
    assert all(rule is r or {"port": 9187, "protocol": "TCP"} not in r["ports"] for r in ingress)


def _ingress(metrics: MetricsArgs | None) -> list[Any]:
    return list(network_policy_spec("pg", (NetworkPolicyPeer(),), None, DnsEgress(), metrics).ingress or [])


def test_no_metrics_rule_without_metrics_or_without_a_scraper() -> None:
    # An ingress rule with an empty `from` admits every source: with no scraper named there is no rule at all.
    assert len(_ingress(None)) == 1
    assert len(_ingress(MetricsArgs())) == 1
    prometheus = NetworkPolicyPeer(pod_labels={"app": "prometheus"}, namespace_labels={"team": "obs"})
    scrapers = (prometheus, NetworkPolicyPeer(cidr="10.9.0.0/16"))
    rules = _ingress(MetricsArgs(allow_from=scrapers))
    assert len(rules) == 2
    [port] = rules[1].ports
    assert (port.port, port.protocol) == (9187, "TCP")
    labels, block = rules[1].from_
    assert (labels.pod_selector.match_labels, labels.namespace_selector.match_labels) == ({"app": "prometheus"}, {"team": "obs"})
    assert block.ip_block.cidr == "10.9.0.0/16"


def test_the_builder_takes_image_and_pull_policy_from_the_args() -> None:
    c = exporter_container(MetricsArgs(image="registry.example.com/pe:v0.20.1", image_pull_policy="Always"))
    assert (c.image, c.image_pull_policy) == ("registry.example.com/pe:v0.20.1", "Always")
    assert exporter_container(MetricsArgs()).image == EXPORTER_IMAGE
    assert "password" not in DATA_SOURCE_NAME


def _prod(metrics: dict[str, Any] | None) -> Run:
    """The tests' fixed prod (metrics off, as its URNs were captured) with a metrics: block."""
    config = fixed_config("prod") | ({"pgstack:metrics": metrics} if metrics is not None else {})
    return run_program(config, stack="prod", run=Run(seed="same passwords for the same inputs"))


def test_the_change_table_rows_for_metrics() -> None:
    """docs/operations.md#changing-a-live-stack: turning metrics on or off rolls both sets (the sidecar and
    MONITOR_USER are in the pod template); a new scraper only updates the NetworkPolicy; nothing is replaced."""
    off, on = _prod(None), _prod({"enabled": True, "allowFrom": [PROMETHEUS]})
    both_sets = {"StatefulSet postgres": ROLLS, "StatefulSet postgres-standby": ROLLS}
    assert classify(off, on) == both_sets
    assert classify(on, off) == both_sets
    scrapers = _prod({"enabled": True, "allowFrom": [PROMETHEUS, {"cidr": "10.8.0.0/16"}]})
    assert classify(on, scrapers) == {}
    assert plain(on.one(NETPOL, "postgres-netpol").inputs["spec"]) != plain(scrapers.one(NETPOL, "postgres-netpol").inputs["spec"])
    image = _prod({"enabled": True, "allowFrom": [PROMETHEUS], "image": {"tag": "v0.20.2", "digest": None}})
    assert classify(on, image) == both_sets
