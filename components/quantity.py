"""Kubernetes quantities (``1Gi``, ``500m``) read the way the API server reads them.

The one parser for the components and the stack settings (stacks/config/ imports it).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType


def _client_quantity_module() -> ModuleType:
    """The Kubernetes Python client's kubernetes/utils/quantity.py, loaded on its own: importing it as
    kubernetes.utils.quantity runs the package's __init__, which imports the whole API client (about 0.17 s of
    every process: the program, the render, each bin/ tool). The module itself needs only decimal and re."""
    package = importlib.util.find_spec("kubernetes")  # finds the top-level package without running it
    if package is None or package.origin is None:
        raise ImportError("the kubernetes client library is not installed (requirements.txt)")
    spec = importlib.util.spec_from_file_location("kubernetes_utils_quantity", Path(package.origin).parent / "utils" / "quantity.py")
    if spec is None or spec.loader is None:
        raise ImportError("kubernetes/utils/quantity.py not found in the kubernetes client library")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parse_quantity: Callable[[str], Decimal] = _client_quantity_module().parse_quantity

# apimachinery pkg/api/resource/quantity.go, the serialization format the API server parses:
#   <quantity> ::= <signedNumber><suffix>
#   <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
#   <binarySI> ::= Ki | Mi | Gi | Ti | Pi | Ei      <decimalSI> ::= n | u | m | "" | k | M | G | T | P | E
#   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber> (parseQuantityString takes digits only)
# No spaces anywhere: the client library's parse_quantity tolerates "1 Gi", the API server does not.
QUANTITY_GRAMMAR = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?")

# The API server keeps quantities up to 2^63-1 (quantity.go: binary ones are capped there; int64 accessors overflow).
QUANTITY_MAX = Decimal(2**63 - 1)


def quantity(value: str) -> Decimal:
    """The value of a Kubernetes quantity written in the API server's grammar.

    The grammar is checked here (apimachinery's, see QUANTITY_GRAMMAR); the client library's
    parse_quantity only computes the value, because it also accepts what the API server refuses.
    """
    if not QUANTITY_GRAMMAR.fullmatch(value):
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(parse_quantity(value))


def whole_bytes(value: str) -> int:
    """A memory or storage quantity in bytes (``1Gi`` -> 1073741824); refuses fractions and amounts <= 0."""
    amount = quantity(value)
    if amount <= 0 or amount % 1 != 0 or amount > QUANTITY_MAX:
        raise ValueError(f"not a whole, positive number of bytes: {value!r}")
    return int(amount)
