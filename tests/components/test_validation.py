"""components/validation.py: the Literal contract read from the Args' own annotations, without eval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pytest

from components.validation import check_literals

Mode = Literal["on", "off"]


@dataclass(frozen=True)
class Sample:
    namespace: pulumi.Input[str] = "db"
    mode: Mode = "on"
    tier: Literal["gold", "silver"] | None = None

    def __post_init__(self) -> None:
        check_literals(self)


def test_literal_fields_accept_their_values_and_optional_ones_none() -> None:
    assert Sample(mode="off", tier="gold") is not None
    assert Sample(namespace=pulumi.Output.from_input("x"), tier=None) is not None


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [("mode", "auto", "one of 'on', 'off'"), ("tier", "bronze", "one of 'gold', 'silver', None")],
)
def test_a_value_outside_the_literal_is_refused(field: str, value: str, accepted: str) -> None:
    with pytest.raises(ValueError, match=f"^Sample.{field}: got {value!r}; expected {accepted}$"):
        Sample(**{field: value})  # type: ignore[arg-type]
