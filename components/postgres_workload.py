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
from components.postgres_names import DATA_VOLUME, Role, claim_name, instance_labels, pod_name, primary_pod_name, role_labels
from components.postgres_pod import STARTUP_PROBE_SECONDS
from components.provider_annotations import PATCH_FORCE, SKIP_AWAIT, TIMEOUT_SECONDS

if TYPE_CHECKING:
    from components.postgres_args import PostgresStatefulSetArgs

# The primary is awaited long enough for the 15-minute startup probe (crash recovery) plus init.
PRIMARY_AWAIT_SECONDS = STARTUP_PROBE_SECONDS + 5 * 60
AWAIT_PRIMARY = {TIMEOUT_SECONDS: str(PRIMARY_AWAIT_SECONDS)}
NO_AWAIT = {SKIP_AWAIT: "true"}


def set_is_awaited(role: Role, name: str, primary_pod: str) -> bool:
    """pulumi-kubernetes awaits a StatefulSet until every replica is ready and updated
    (provider/pkg/await/statefulset.go), so only a set that runs nothing but the configured
    primary is awaited: ``<name>`` while the primary is pod 0. After a failover ``<name>-0`` is a
    standby, possibly diverged, and the primary shares the standby set with standbys that may be
    cloning: neither set is awaited then (the read-write Service waits for the primary instead)."""
    return role == "primary" and primary_pod == pod_name(name, 0)


def read_write_await(name: str, primary_pod: str, hold: bool = False) -> dict[str, str] | None:
    """The read-write Service selects only the primary pod; its endpoint wait (provider/pkg/await/service.go:
    endpoints settled with no not-ready address, 10 minutes by default) waits while the primary's pod is
    not ready, where no set await covers it, lengthened to the primary's window. It ends early while the
    pod has no address at all (docs/design.md#what-pulumi-up-waits-for). Held, no pod backs it: no wait."""
    if hold:
        return dict(NO_AWAIT)
    return None if primary_pod == pod_name(name, 0) else dict(AWAIT_PRIMARY)


def await_annotations(awaited: bool) -> dict[str, str]:
    """What `pulumi up` waits for: the primary, with time for crash recovery; never a standby,
    which may legitimately be cloning, catching up or diverged (or be scaled to zero)."""
    return dict(AWAIT_PRIMARY) if awaited else dict(NO_AWAIT)


def statefulset_metadata(sts_name: str, role: Role, name: str, args: PostgresStatefulSetArgs) -> k8s.meta.v1.ObjectMetaArgs:
    awaited = set_is_awaited(role, name, primary_pod_name(name, args.primary_pod))
    return k8s.meta.v1.ObjectMetaArgs(
        name=sts_name,
        namespace=args.namespace,
        labels=role_labels(name, role),
        annotations=checkov_skips(args.image, args.image_pull_policy, sidecar=True) | await_annotations(awaited),
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
    """A pod's data claim, labelled for the set and its Longhorn job groups, size field taken over.
    Not awaited: the provider waits at most a hard-coded 5 minutes for a new claim to bind
    (provider/pkg/await/awaiters.go untilCoreV1PersistentVolumeClaimReady, WatchUntil(..., 5*time.Minute),
    which pulumi.com/timeoutSeconds does not lengthen), too short while Longhorn installs on a first `up`;
    the primary's set await (20 minutes) covers its claim, and a standby's never fails `up`."""
    annotations = {PATCH_FORCE: "true"} | NO_AWAIT
    return k8s.meta.v1.ObjectMetaPatchArgs(
        name=claim_name(pod), namespace=args.namespace, labels=instance_labels(name) | args.claim_labels, annotations=annotations
    )


def claim_spec(args: PostgresStatefulSetArgs) -> k8s.core.v1.PersistentVolumeClaimSpecPatchArgs:
    """Only resources.requests of a bound claim may change: Kubernetes refuses a shrink or a new class."""
    return k8s.core.v1.PersistentVolumeClaimSpecPatchArgs(
        access_modes=["ReadWriteOnce"],
        storage_class_name=args.storage_class,
        resources=k8s.core.v1.VolumeResourceRequirementsPatchArgs(requests={"storage": args.storage_size}),
    )
