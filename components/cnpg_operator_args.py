"""CnpgOperatorArgs: the contract of CnpgOperator (components/cnpg_operator.py), field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from components.longhorn_install_args import CHART_VERSION
from components.validation import check_name, fail

# The chart whose values the component sets were checked against (../shared/reference/cloudnative-pg-1.30.0/
# chart-cloudnative-pg-0.29.0-values.yaml), and the operator it installs (Chart.yaml appVersion 1.30.0).
CNPG_CHART_VERSION = "0.29.0"
CNPG_OPERATOR_VERSION = "1.30.0"
# The Helm release's name in its namespace.
CNPG_RELEASE = "cnpg"
CnpgAdoptable = Literal["namespace", "release"]


@dataclass(frozen=True)
class CnpgOperatorArgs:
    chart_version: str = CNPG_CHART_VERSION
    """The pinned cloudnative-pg chart version, MAJOR.MINOR.PATCH (the values set here are checked against 0.29.0)."""
    namespace: str = "cnpg-system"
    """Namespace of the release (a DNS-1123 label), Pod Security restricted (the chart's pod complies)."""
    protect: bool = True
    """Pulumi protect on the namespace and the release."""
    adopt: frozenset[CnpgAdoptable] = frozenset()
    """The namespace and the release a destroy retained, taken over with Pulumi's import instead of created
    (AlreadyExists otherwise: pulumi-kubernetes >= 4.29 creates with Create, Helm refuses a name in use)."""

    def __post_init__(self) -> None:
        if not CHART_VERSION.fullmatch(self.chart_version):
            accepted = "a Helm chart version MAJOR.MINOR.PATCH, digits only"
            fail(self, "chart_version", self.chart_version, accepted, examples=(CNPG_CHART_VERSION,))
        check_name(self, "namespace", self.namespace)
        unknown = sorted(set(self.adopt) - set(get_args(CnpgAdoptable)))
        if unknown:
            fail(self, "adopt", unknown, "a set of " + ", ".join(repr(a) for a in get_args(CnpgAdoptable)))
