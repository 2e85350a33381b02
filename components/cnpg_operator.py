"""CnpgOperator: the CloudNativePG operator as a Helm release (chart cloudnative-pg, https://cloudnative-pg.github.io/charts).

One stack per cluster installs it (like Longhorn): its CRDs and webhooks are cluster-wide. A stack whose Cluster
it runs waits for it (depends_on): with skip_await false, pulumi-kubernetes installs with Helm's Wait
(provider/pkg/provider/helm_release.go:608 `client.Wait = !newRelease.SkipAwait`, :734 on upgrade), so the release
is created only once the operator's Deployment is ready, which is when its webhook server answers: the CRDs and the
webhook exist before any Cluster is sent.

Uninstalling must never take the databases with it. The release is retained on delete (a destroy forgets it; the
operator keeps running). Had it been uninstalled, the chart's CRDs still stay: they carry
`helm.sh/resource-policy: keep` (charts/cloudnative-pg/templates/crds/crds.yaml at cloudnative-pg-v0.29.0), and
Helm skips such resources on uninstall; deleting the CRDs would delete every Cluster, and so every claim.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cnpg_operator_args import CNPG_RELEASE, CnpgOperatorArgs
from components.naming import pod_security_labels
from components.outputs import name_of

CNPG_REPO = "https://cloudnative-pg.github.io/charts"
CNPG_CHART = "cloudnative-pg"


def cnpg_values() -> dict[str, Any]:
    """Helm values for the chart; every key exists in its values.yaml at 0.29.0 (tests/components/test_cnpg_operator.py)."""
    return {
        # The chart's own CRDs (kept on uninstall, above): the Cluster, Pooler and ScheduledBackup the stacks send.
        "crds": {"create": True},
        # Fail, not Ignore: a Cluster the webhook cannot check is refused rather than admitted unchecked.
        "webhook": {"mutating": {"failurePolicy": "Fail"}, "validating": {"failurePolicy": "Fail"}},
        # One operator for every stack's namespace.
        "config": {"clusterWide": True},
        # The operator's own PodMonitor needs prometheus-operator's CRDs; the stacks make their own (metrics.podMonitor).
        "monitoring": {"podMonitorEnabled": False},
    }


class CnpgOperator(pulumi.ComponentResource):
    """Installs the CloudNativePG operator with ``helm.v3.Release``, retained on delete."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: CnpgOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:CnpgOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True)
        # The operator's pod runs non-root with a read-only root filesystem, no capabilities and the runtime's
        # seccomp profile (chart values containerSecurityContext, podSecurityContext): restricted admits it.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace, labels=pod_security_labels("restricted")),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(import_=args.namespace if "namespace" in args.adopt else None)),
        )
        # A Helm release's import id is <namespace>/<release> (pulumi-kubernetes provider/pkg/provider/util.go parseFqName).
        release_id = f"{args.namespace}/{CNPG_RELEASE}" if "release" in args.adopt else None
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name=CNPG_RELEASE,
                chart=CNPG_CHART,
                version=args.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CNPG_REPO),
                namespace=name_of(self.namespace),
                values=cnpg_values(),
                # Wait for the operator (and so its webhook) before any Cluster is created: see the module docstring.
                skip_await=False,
                timeout=600,
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.namespace], import_=release_id)),
        )
        self.namespace_name = name_of(self.namespace)
        self.register_outputs({"namespace_name": self.namespace_name})
