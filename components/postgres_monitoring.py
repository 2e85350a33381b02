"""PostgresMonitoring: the PodMonitor and the PrometheusRule of one PostgreSQL set, each only when asked.

Both are prometheus-operator objects (monitoring.coreos.com/v1, specs checked against the 0.93.0 CRDs in
../shared/reference/prometheus-operator-0.93.0/), so the cluster needs the operator's CRDs before either is on.
They live in the database's namespace and are named after the set: PodMonitor and PrometheusRule ``<name>``
(distinct kinds, so one name; Prometheus then labels the scraped series ``job="<namespace>/<name>"``).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.outputs import dependencies_of
from components.postgres_alerts import pod_monitor_spec, rule_spec
from components.postgres_monitoring_args import GeneratedExpiry, MonitoringArgs, rfc3339_epoch
from components.postgres_names import instance_labels

MONITORING_API = "monitoring.coreos.com/v1"


def _rule_spec_output(args: MonitoringArgs) -> pulumi.Output[dict[str, Any]]:
    """The rule spec once the namespace (and a generated certificate's end of validity) are known."""
    not_after = args.tls_expiry.not_after if isinstance(args.tls_expiry, GeneratedExpiry) else None

    def build(values: list[Any]) -> dict[str, Any]:
        namespace, end = values
        return rule_spec(args, str(namespace), rfc3339_epoch(str(end)) if end is not None else None)

    return pulumi.Output.all(args.namespace, not_after).apply(build)


class PostgresMonitoring(pulumi.ComponentResource):
    """A PodMonitor for the exporter sidecars and a PrometheusRule with pgstack's alerts (docs/alerts.md)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:PostgresMonitoring", name, None, opts)
        # The namespace this component waits for (and the database, when the caller passes it).
        child = pulumi.ResourceOptions(parent=self, depends_on=dependencies_of(opts))
        # The set's labels, like its other objects, and the caller's (a Prometheus' podMonitorSelector / ruleSelector).
        labels = instance_labels(args.name) | args.labels
        meta = k8s.meta.v1.ObjectMetaArgs(name=args.name, namespace=args.namespace, labels=labels)
        self.pod_monitor: k8s.apiextensions.CustomResource | None = None
        self.prometheus_rule: k8s.apiextensions.CustomResource | None = None
        if args.pod_monitor:
            self.pod_monitor = k8s.apiextensions.CustomResource(
                f"{name}-pod-monitor", api_version=MONITORING_API, kind="PodMonitor", metadata=meta, spec=pod_monitor_spec(args), opts=child
            )
        if args.prometheus_rule:
            self.prometheus_rule = k8s.apiextensions.CustomResource(
                f"{name}-rules", api_version=MONITORING_API, kind="PrometheusRule", metadata=meta, spec=_rule_spec_output(args), opts=child
            )
        self.register_outputs({})
