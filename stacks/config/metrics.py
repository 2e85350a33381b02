"""The metrics: block: the postgres_exporter sidecar, who may scrape it, and the prometheus-operator
objects (PodMonitor, PrometheusRule) built for it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from components.postgres_args import PullPolicy
from components.postgres_metrics_args import EXPORTER_DIGEST, EXPORTER_REPOSITORY, EXPORTER_TAG
from stacks.config.errors import FieldError, such_as
from stacks.config.formats import _IMAGE_TAG, Model, PodLabels, _digest, _repository
from stacks.config.postgres import ClientPeer


def _tag_is_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a quoted string: YAML reads {value} as a number, {such_as(EXPORTER_TAG)}")
    return value


def _exporter_tag(value: str) -> str:
    if not _IMAGE_TAG.fullmatch(value):
        raise ValueError(
            f"an image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-', {such_as(EXPORTER_TAG)}"
        )
    return value


class ExporterImageSettings(Model):
    """The postgres_exporter image (or a copy of it) the metrics sidecar runs."""

    repository: Annotated[str, AfterValidator(_repository)] = EXPORTER_REPOSITORY
    """Image repository, [registry[:port]/]path in the OCI reference grammar, without scheme, tag or digest."""
    tag: Annotated[str, BeforeValidator(_tag_is_text), AfterValidator(_exporter_tag)] = EXPORTER_TAG
    """Image tag, quoted. The alerts use the metric names of 0.20 (0.20.0 renamed the slot metrics)."""
    digest: Annotated[str, AfterValidator(_digest)] | None = EXPORTER_DIGEST
    """Pin the image by digest, sha256:<64 hex digits>; the default is v0.20.1's, dropped when tag is changed without a digest."""
    pullPolicy: PullPolicy = "IfNotPresent"
    """When the kubelet pulls the image."""

    @model_validator(mode="before")
    @classmethod
    def _default_digest_only_for_default_tag(cls, data: Any) -> Any:
        # The default digest is v0.20.1's: another tag without its own digest runs unpinned rather than
        # failing to pull (or, worse, running 0.20.1 under another tag's name).
        if isinstance(data, dict) and "tag" in data and data["tag"] != EXPORTER_TAG and "digest" not in data:
            return {**data, "digest": None}
        return data

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class MetricsSettings(Model):
    """Metrics: a postgres_exporter sidecar in every database pod, scraped by a Prometheus (prometheus-operator
    objects optional). The exporter logs in over the pod's socket as pgstack_monitor (pg_monitor), with no password."""

    enabled: bool = False
    """Run the exporter sidecar (port 9187, named metrics) in every database pod; changing it restarts the pods."""
    allowFrom: list[ClientPeer] = Field(default_factory=list)
    """Who may scrape port 9187 through the NetworkPolicy, entries of {podLabels, namespaceLabels} or {cidr}; default: nobody."""
    podMonitor: bool = False
    """Create a PodMonitor for the exporter (needs the prometheus-operator CRDs); needs enabled."""
    prometheusRule: bool = False
    """Create a PrometheusRule with pgstack's alerts (needs the prometheus-operator CRDs); needs enabled."""
    labels: PodLabels = Field(default_factory=dict)
    """Labels of the PodMonitor and PrometheusRule, for the Prometheus that selects them (kube-prometheus-stack: release: <its release>)."""
    image: ExporterImageSettings = ExporterImageSettings()

    @model_validator(mode="after")
    def _objects_need_the_exporter(self) -> MetricsSettings:
        for key in ("podMonitor", "prometheusRule"):
            if getattr(self, key) and not self.enabled:
                accepted = "false while enabled is false: it selects or alerts on the exporter, which runs only with enabled true"
                raise FieldError(key, True, accepted)
        return self
