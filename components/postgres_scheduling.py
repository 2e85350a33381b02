"""Where the database pods run: one per node, preferred (soft) or required (hard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi_kubernetes as k8s

from components.postgres_names import instance_labels

if TYPE_CHECKING:
    from components.postgres_args import AntiAffinity

HOSTNAME = "kubernetes.io/hostname"


def affinity(name: str, anti_affinity: AntiAffinity) -> k8s.core.v1.AffinityArgs:
    """Pod anti-affinity between the set's pods across nodes: required when hard, else weight 100."""
    term = k8s.core.v1.PodAffinityTermArgs(
        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
        topology_key=HOSTNAME,
    )
    if anti_affinity == "hard":
        anti = k8s.core.v1.PodAntiAffinityArgs(required_during_scheduling_ignored_during_execution=[term])
    else:
        anti = k8s.core.v1.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.core.v1.WeightedPodAffinityTermArgs(weight=100, pod_affinity_term=term)
            ]
        )
    return k8s.core.v1.AffinityArgs(pod_anti_affinity=anti)


def topology_spread(name: str, anti_affinity: AntiAffinity) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread the set's pods over nodes, at most one apart; refuse to schedule otherwise when hard."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=HOSTNAME,
            when_unsatisfiable="DoNotSchedule" if anti_affinity == "hard" else "ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=instance_labels(name)),
        )
    ]
