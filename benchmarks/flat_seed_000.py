"""Seed 000 (../shared/seeds/000_*.txt, the StatefulSets tutorial) written as a flat Pulumi program: the
baseline that benchmarks/bench_evaluation.py measures the real program against.

What the tutorial ends with, one resource per object it applies, and nothing else: Longhorn from its chart
(the tutorial applies longhorn.yaml v1.6.2 with kubectl; a flat Pulumi program would install the chart),
and the postgres StatefulSet with its volume claim template, PGDATA in a subdirectory and trust auth.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

LABELS = {"app": "postgres"}


def program() -> None:
    k8s.helm.v3.Release(
        "longhorn",
        chart="longhorn",
        version="1.6.2",
        namespace="longhorn-system",
        create_namespace=True,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://charts.longhorn.io"),
    )
    k8s.apps.v1.StatefulSet(
        "postgres",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="postgres", labels=LABELS),
        spec=k8s.apps.v1.StatefulSetSpecArgs(
            replicas=2,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
            service_name="postgres",
            volume_claim_templates=[
                k8s.core.v1.PersistentVolumeClaimArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name="postgres-pv"),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": "1Gi"}),
                        storage_class_name="longhorn",
                    ),
                )
            ],
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS),
                spec=k8s.core.v1.PodSpecArgs(
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name="postgres",
                            image="postgres:16",
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                limits={"cpu": "2", "memory": "1Gi"},
                                requests={"cpu": "1", "memory": "1Gi"},
                            ),
                            env=[
                                k8s.core.v1.EnvVarArgs(name="POSTGRES_HOST_AUTH_METHOD", value="trust"),
                                k8s.core.v1.EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
                            ],
                            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="postgres-pv", mount_path="/var/lib/postgresql/data")],
                        )
                    ]
                ),
            ),
        ),
    )
