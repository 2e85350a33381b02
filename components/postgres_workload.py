"""The StatefulSets and the data claims: topology, rollout and what `pulumi up` waits for.

Each pod's claim is applied by the component itself (server-side apply) before the
StatefulSets, so a size change expands the claims in place and never touches the
immutable volumeClaimTemplates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.pod_security import checkov_skips
from components.postgres_names import DATA_VOLUME, Role, claim_name, instance_labels, role_labels
from components.postgres_pod import STARTUP_PROBE_SECONDS
from components.provider_annotations import PATCH_FORCE, SKIP_AWAIT, TIMEOUT_SECONDS

if TYPE_CHECKING:
    from components.postgres_args import PostgresStatefulSetArgs

# The primary is awaited long enough for the 15-minute startup probe (crash recovery) plus init.
PRIMARY_AWAIT_SECONDS = STARTUP_PROBE_SECONDS + 5 * 60


def await_annotations(role: Role) -> dict[str, str]:
    """What `pulumi up` waits for: the primary, with time for crash recovery; never a standby,
    which may legitimately be cloning or catching up (or be scaled to zero)."""
    if role == "primary":
        return {TIMEOUT_SECONDS: str(PRIMARY_AWAIT_SECONDS)}
    return {SKIP_AWAIT: "true"}


def statefulset_metadata(sts_name: str, role: Role, name: str, args: PostgresStatefulSetArgs) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=sts_name,
        namespace=args.namespace,
        labels=role_labels(name, role),
        annotations=checkov_skips(args.image, args.image_pull_policy, sidecar=True) | await_annotations(role),
    )


def statefulset_spec(
    name: str,
    role: Role,
    replicas: int,
    first_ordinal: int,
    args: PostgresStatefulSetArgs,
    service_name: pulumi.Input[str],
    template: k8s.core.v1.PodTemplateSpecArgs,
) -> k8s.apps.v1.StatefulSetSpecArgs:
    return k8s.apps.v1.StatefulSetSpecArgs(
        replicas=replicas,
        service_name=service_name,
        pod_management_policy="OrderedReady",
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=role_labels(name, role)),
        ordinals=k8s.apps.v1.StatefulSetOrdinalsArgs(start=first_ordinal) if first_ordinal else None,
        update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
        # Explicit: volumes outlive scale-down and deletion (seed 001's scale to zero).
        persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
            when_deleted="Retain", when_scaled="Retain"
        ),
        template=template,
        # Only ever applies to a claim that does not exist; the component creates the claims first.
        volume_claim_templates=[
            k8s.core.v1.PersistentVolumeClaimArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(name=DATA_VOLUME, labels=instance_labels(name)),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=args.storage_class,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.storage_size}),
                ),
            )
        ],
    )


def claim_metadata(name: str, pod: str, args: PostgresStatefulSetArgs) -> k8s.meta.v1.ObjectMetaPatchArgs:
    """A pod's data claim, labelled for the set and its Longhorn job groups, size field taken over."""
    return k8s.meta.v1.ObjectMetaPatchArgs(
        name=claim_name(pod), namespace=args.namespace, labels=instance_labels(name) | args.claim_labels, annotations={PATCH_FORCE: "true"}
    )


def claim_spec(args: PostgresStatefulSetArgs) -> k8s.core.v1.PersistentVolumeClaimSpecPatchArgs:
    """Only resources.requests of a bound claim may change: Kubernetes refuses a shrink or a new class."""
    return k8s.core.v1.PersistentVolumeClaimSpecPatchArgs(
        access_modes=["ReadWriteOnce"],
        storage_class_name=args.storage_class,
        resources=k8s.core.v1.VolumeResourceRequirementsPatchArgs(requests={"storage": args.storage_size}),
    )
