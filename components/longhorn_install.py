"""LonghornInstall: the Longhorn CSI as a Helm release in its own namespace.

One stack per cluster installs it; the database StorageClass is LonghornStorageClass, so
stacks that share the cluster create their own class on the same Longhorn.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.longhorn_install_args import Adoptable, LonghornInstallArgs
from components.naming import pod_security_labels
from components.outputs import name_of

LONGHORN_REPO = "https://charts.longhorn.io"
BACKUP_CREDENTIALS_SECRET = "longhorn-backup-target"
RELEASE_NAME = "longhorn"


def import_ids(args: LonghornInstallArgs) -> dict[Adoptable, str]:
    """The import id of each adoptable object: a Namespace's is its name, a namespaced object's <namespace>/<name>,
    a Helm release's <namespace>/<release> (pulumi-kubernetes provider/pkg/provider/util.go:103 parseFqName)."""
    ns = args.namespace
    return {"namespace": ns, "release": f"{ns}/{RELEASE_NAME}", "backup_secret": f"{ns}/{BACKUP_CREDENTIALS_SECRET}"}


def adopted(args: LonghornInstallArgs, part: Adoptable) -> str | None:
    """The import option for one object: its id when the stack adopts it, else None (create).
    With an id, the engine reads the live object, then updates it to our inputs in place, and refuses a
    change that would replace it (pulumi pkg/resource/deploy/step_generator.go:1113 isImport, :1992 "previously-
    imported resources that still specify an ID may not be replaced"). Once in the state, the id is a no-op."""
    return import_ids(args)[part] if part in args.adopt else None


def longhorn_values(args: LonghornInstallArgs, backup_target: str | None = None) -> dict[str, Any]:
    """Helm values for the Longhorn chart; every key exists in its values.yaml at 1.10.1.

    Checked against upstream chart/values.yaml at v1.10.1 (../shared/reference/longhorn-1.10.1/
    chart-values.yaml; tests/components/test_longhorn_install.py reads it). Setting values are
    strings in the chart (they land in a ConfigMap; 1.10.0 even refuses anything else).
    """
    values: dict[str, Any] = {
        "defaultSettings": {
            "defaultReplicaCount": str(args.default_replica_count),
            "defaultDataLocality": args.default_data_locality,
            "nodeDownPodDeletionPolicy": args.node_down_pod_deletion_policy,
            # The uninstall hook deletes every Longhorn volume only with this flag armed.
            "deletingConfirmationFlag": "true" if args.delete_all_volumes_on_uninstall else "false",
        },
        "persistence": {
            # The chart's own "longhorn" class stays, but not as the cluster default:
            # our database class is explicit so its parameters show up in our diffs.
            "defaultClass": False,
            "defaultClassReplicaCount": args.default_replica_count,
        },
    }
    if backup_target is not None:
        # In 1.10 these configure the "default" BackupTarget object.
        values["defaultBackupStore"] = {"backupTarget": backup_target, "backupTargetCredentialSecret": BACKUP_CREDENTIALS_SECRET}
    return values


class LonghornInstall(pulumi.ComponentResource):
    """Installs Longhorn with ``helm.v3.Release`` (v4 Chart drops the chart's hook jobs)."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: LonghornInstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgstack:index:LonghornInstall", name, None, opts)
        # Unarmed, a delete (destroy, install: false) forgets the release instead of running
        # the uninstall hook, which would fail without the flag and leave the stack stuck.
        keep = not args.delete_all_volumes_on_uninstall
        child = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=keep)

        # Longhorn's manager and CSI pods are privileged; restricted would block them.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels=pod_security_labels("privileged"),
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(import_=adopted(args, "namespace"))),
        )
        values: pulumi.Input[dict[str, Any]] = longhorn_values(args)
        release_deps: list[pulumi.Resource] = [self.namespace]
        if args.backup_target is not None:
            credentials: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
                args.backup_credentials if args.backup_credentials is not None else pulumi.Output.from_input({})
            )
            self.backup_secret = k8s.core.v1.Secret(
                f"{name}-backup-target",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=BACKUP_CREDENTIALS_SECRET, namespace=name_of(self.namespace)),
                type="Opaque",
                string_data=credentials,
                # Without it every volume backup fails: guarded and kept like the release that reads it.
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(import_=adopted(args, "backup_secret"))),
            )
            release_deps.append(self.backup_secret)
            # The URL names the bucket and comes from secret config: the values stay secret in the state.
            target: pulumi.Output[str] = pulumi.Output.secret(args.backup_target)
            values = target.apply(lambda url: longhorn_values(args, url))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name=RELEASE_NAME,
                chart="longhorn",
                version=args.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=LONGHORN_REPO),
                namespace=name_of(self.namespace),
                values=values,
                # Wait for the workloads so the database's StorageClass is usable when created.
                skip_await=False,
                timeout=900,
                # Helm keeps it in the release's history: who armed the uninstall, and what they confirmed.
                description=args.uninstall_confirmation if args.delete_all_volumes_on_uninstall else None,
            ),
            # Helm's install refuses a release name still in use ("cannot re-use a name that is still in use",
            # helm pkg/action/install.go availableName), whatever the provider's upsertExistingObjects: adopt it.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=release_deps, import_=adopted(args, "release"))),
        )
        self.namespace_name = name_of(self.namespace)
        self.register_outputs({"namespace_name": self.namespace_name})
