"""The DNS egress option: each form becomes the NetworkPolicy rule the cluster needs."""

from __future__ import annotations

from typing import Any

import pytest

from components.network_args import DnsEgress
from components.postgres_statefulset import PostgresStatefulSet, PostgresStatefulSetArgs
from tests.conftest import dns_rule_of, run_component
from tools.mock_run import plain

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _dns_rule(dns: DnsEgress) -> dict[str, Any]:
    def program() -> None:
        PostgresStatefulSet("pg", PostgresStatefulSetArgs(namespace="db", storage_class="c", image="postgres:18.1", dns=dns))

    return dns_rule_of(plain(run_component(program).one(NETPOL, "pg-netpol").inputs["spec"])["egress"], "pg-netpol")


@pytest.mark.parametrize(
    ("dns", "to"),
    [
        (
            DnsEgress(),
            [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
        ),
        (
            DnsEgress(
                namespace_labels={"kubernetes.io/metadata.name": "openshift-dns"},
                pod_labels={"dns.operator.openshift.io/daemonset-dns": "default"},
            ),
            [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                    "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
                }
            ],
        ),
        (
            DnsEgress(cidrs=("169.254.20.10/32", "10.96.0.10/32")),
            [
                # NodeLocal DNSCache in addition to the DNS pods it forwards to.
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                },
                {"ipBlock": {"cidr": "169.254.20.10/32"}},
                {"ipBlock": {"cidr": "10.96.0.10/32"}},
            ],
        ),
        (DnsEgress(any=True), None),
    ],
    ids=["kube-dns", "selectors", "cidrs (NodeLocal DNSCache)", "any"],
)
def test_each_dns_form(dns: DnsEgress, to: list[dict[str, Any]] | None) -> None:
    rule = _dns_rule(dns)
    assert rule.get("to") == to


def test_the_dns_key_reaches_both_network_policies() -> None:
    from tests.conftest import run_with

    run = run_with(
        {
            "pgstack:postgres": {"networkPolicy": {"dns": {"cidrs": ["169.254.20.10/32"]}}},
            "pgstack:backup": {"dumps": {"keep": 3}},
        }
    )
    for policy in run.of_type(NETPOL):
        rule = dns_rule_of(plain(policy.inputs["spec"])["egress"], policy.name)
        assert rule["to"][-1] == {"ipBlock": {"cidr": "169.254.20.10/32"}}, policy.name
    assert len(run.of_type(NETPOL)) == 2
