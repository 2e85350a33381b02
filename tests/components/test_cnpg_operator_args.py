"""CnpgOperatorArgs: a pinned chart version and a namespace name."""

from __future__ import annotations

import pytest

from components.cnpg_operator_args import CNPG_CHART_VERSION, CnpgOperatorArgs
from components.validation import ArgsError


def test_defaults_are_the_checked_chart() -> None:
    args = CnpgOperatorArgs()
    assert (args.chart_version, args.namespace, CNPG_CHART_VERSION) == ("0.29.0", "cnpg-system", "0.29.0")


@pytest.mark.parametrize(("field", "value"), [("chart_version", "v0.29.0"), ("chart_version", "0.29"), ("namespace", "Cnpg")])
def test_refused(field: str, value: str) -> None:
    with pytest.raises(ArgsError) as err:
        CnpgOperatorArgs(**{field: value})
    assert err.value.field == field
