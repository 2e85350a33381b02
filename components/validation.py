"""Checks for the components' ``*Args`` dataclasses, run in ``__post_init__``.

A wrong argument fails at construction, before any resource is registered, with one
ArgsError (a ValueError) of the form ``<Args>.<field>: got <value>; expected <accepted form>``.
The error keeps its parts, so stacks/config/ can say the same thing in terms of the YAML keys
the Args were built from: these checks are the only home of each rule.
Fields typed ``pulumi.Input`` may hold Outputs, which have no value yet: the checks
below skip them (``plain`` is False), so only plain values are checked.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any, Literal, NoReturn

import pulumi

from components.cron import ACCEPTED_FORM, schedule_problem
from components.quantity import QUANTITY_MAX, quantity

# apimachinery validation.go: DNS-1123 label and subdomain, DNS-1035 label, IANA service (port) name.
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
IANA_SVC_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
# A PostgreSQL role or database name as the pod scripts quote it: unquoted-identifier rules, lowercase.
PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# A WAL position as PostgreSQL prints it (pg_current_wal_lsn, IDENTIFY_SYSTEM): X/Y, upper-case hex.
WAL_POSITION_RE = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")


class ArgsError(ValueError):
    """One refused argument: which Args class and field, the value, and the accepted form.

    ``expected`` may name other fields of the same Args (``refs``, as written in it, such as
    ``requests['cpu']``) and end in ``examples`` and a reason (``why``): stacks/config/ renames
    the fields to their YAML keys and shows the examples as YAML reads them."""

    def __init__(
        self,
        args_class: type,
        field: str,
        value: Any,
        expected: str,
        *,
        refs: tuple[str, ...] = (),
        examples: tuple[Any, ...] = (),
        why: str = "",
    ) -> None:
        self.args_class, self.field, self.value, self.expected = args_class, field, value, expected
        self.refs, self.examples, self.why = refs, examples, why
        super().__init__(f"{args_class.__name__}.{field}: got {value!r}; expected {self.accepted(repr)}")

    def accepted(self, show: Callable[[Any], str], rename: Callable[[str], str] = lambda ref: ref) -> str:
        """The accepted form, examples shown with ``show`` and every field in ``refs`` renamed."""
        text = self.expected
        if self.examples:
            shown = [show(e) for e in self.examples]
            text += ", such as " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1])
        text += f": {self.why}" if self.why else ""
        for ref in self.refs:
            # Whole field names only: keep is not keep_days, requests not requests['cpu'].
            text = re.sub(rf"(?<![\w.\[]){re.escape(ref)}(?![\w\[])", rename(ref).replace("\\", "\\\\"), text)
        return text


def fail(
    args: object, field: str, value: Any, expected: str, *, refs: tuple[str, ...] = (), examples: tuple[Any, ...] = (), why: str = ""
) -> NoReturn:
    raise ArgsError(type(args), field, value, expected, refs=refs, examples=examples, why=why)


def plain(value: Any) -> bool:
    """A value known now (not an Output, which is checked by whoever computed it)."""
    return not isinstance(value, pulumi.Output)


_LITERALS: dict[type, dict[str, tuple[Any, ...]]] = {}


def _literals(cls: type) -> dict[str, tuple[Any, ...]]:
    """Fields declared as a Literal (or an optional Literal), with their accepted values (cached per class)."""
    if cls in _LITERALS:
        return _LITERALS[cls]
    # pulumi.Input is Union[T, Awaitable[T], "Output[T]"]: that forward reference names pulumi's own
    # Output and type variable, which the Args' modules do not import.
    hints = typing.get_type_hints(cls, localns={"Output": pulumi.Output, "T": Any})
    out: dict[str, tuple[Any, ...]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        options = [hint, *typing.get_args(hint)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
        literal = [o for o in options if typing.get_origin(o) is Literal]
        if literal:
            out[f.name] = typing.get_args(literal[0]) + ((None,) if type(None) in options else ())
    _LITERALS[cls] = out
    return out


def check_literals(args: object) -> None:
    """Every Literal-typed field holds one of its values: the type annotation is the contract."""
    for name, allowed in _literals(type(args)).items():
        value = getattr(args, name)
        if plain(value) and value not in allowed:
            fail(args, name, value, "one of " + ", ".join(repr(a) for a in allowed))


def check_range(args: object, field: str, value: int, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        fail(args, field, value, f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}")


def check_name(args: object, field: str, value: Any, kind: str = "label", max_len: int | None = None) -> None:
    """A Kubernetes name: ``label`` (DNS-1123 label), ``subdomain`` (DNS-1123 subdomain) or ``dns1035``."""
    if not plain(value):
        return
    grammar = {"label": DNS_1123_LABEL, "subdomain": DNS_1123_SUBDOMAIN, "dns1035": DNS_1035_LABEL}[kind]
    limit = max_len if max_len is not None else 253 if kind == "subdomain" else 63
    if not isinstance(value, str) or len(value) > limit or not grammar.fullmatch(value):
        how = "letters, digits, '-' and '.'" if kind == "subdomain" else "letters, digits and '-'"
        first = "starting with a letter" if kind == "dns1035" else "starting with a letter or digit"
        fail(
            args, field, value, f"a DNS name ({kind}): lowercase {how}, {first}, ending with a letter or digit, at most {limit} characters"
        )


def check_port_name(args: object, field: str, value: Any) -> None:
    """An IANA service name, as a container or Service port name (validation.go IsValidPortName)."""
    if not isinstance(value, str) or len(value) > 15 or not IANA_SVC_NAME.fullmatch(value) or not re.search("[a-z]", value):
        fail(args, field, value, "a port name: at most 15 lowercase letters, digits and single '-', with a letter, such as 'postgresql'")


def check_pg_identifier(args: object, field: str, value: Any) -> None:
    if not isinstance(value, str) or not PG_IDENTIFIER.fullmatch(value):
        fail(args, field, value, "a PostgreSQL identifier: lowercase letters, digits and '_', not starting with a digit, at most 63")


def check_quantity(args: object, field: str, value: Any, whole: bool = False, minimum: str | None = None) -> None:
    """A Kubernetes quantity above zero (or at least ``minimum``); ``whole``: a whole number of bytes (memory, storage)."""
    if not plain(value):
        return
    try:
        amount = quantity(value) if isinstance(value, str) else None
    except ValueError:
        amount = None
    least = quantity(minimum) if minimum is not None else None
    if amount is None or amount <= 0 or amount > QUANTITY_MAX or (whole and amount % 1 != 0) or (least and amount < least):
        unit = "a whole number of bytes such as '512Mi' or '20Gi'" if whole else "such as '500m' or '2'"
        size = f"of at least {minimum}" if minimum is not None else "above zero"
        fail(args, field, value, f"a Kubernetes quantity {size} without spaces, {unit}")


def check_resources(args: object, field: str, value: Any, required: Iterable[str] = ()) -> None:
    """requests or limits: cpu and memory quantities (memory in whole bytes)."""
    if not isinstance(value, dict) or set(value) - {"cpu", "memory"} or set(required) - set(value):
        need = " and ".join(repr(k) for k in required) or "none"
        fail(args, field, value, f"a mapping with keys among 'cpu' and 'memory' (required: {need})")
    for key, amount in value.items():
        check_quantity(args, f"{field}[{key!r}]", amount, whole=key == "memory")


def check_cron(args: object, field: str, value: Any) -> None:
    """A schedule both Kubernetes CronJobs and Longhorn RecurringJobs accept (components/cron.py)."""
    problem = schedule_problem(value) if isinstance(value, str) else "not a string"
    if problem is not None:
        fail(args, field, value, f"{ACCEPTED_FORM}, such as '0 3 * * *' or '@daily' ({problem})")
