"""Field types: the grammars a value must match (quantities, schedules, labels, CIDRs, image references)
as Annotated pydantic types, and the base model every settings block derives from."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

from components.cron import ACCEPTED_FORM, schedule_problem
from components.postgres_args import ALPINE_TAG, MIN_STORAGE
from components.postgres_conf import pg_major
from components.quantity import QUANTITY_GRAMMAR, QUANTITY_MAX, quantity
from components.validation import DNS_1123_SUBDOMAIN, WAL_POSITION_RE
from stacks.config.errors import FieldError, such_as
from stacks.config.majors import ALPINE_UID, PG_END_OF_LIFE, POD_UID, SUPPORTED_PG_MAJORS
from stacks.config.names import dns_label, dns_subdomain, pg_identifier

# ---------------------------------------------------------------- grammars

# apimachinery's DNS-1123 label and subdomain, DNS-1035 label, qualified name and label value
# (k8s.io/apimachinery/pkg/util/validation/validation.go).
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")

# distribution/reference regexp.go: a repository name is [domain[:port]/]path-component[/...].
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + rf"(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + rf"(?:\.{_DOMAIN_COMPONENT})*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_AND_PORT = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})(?::[0-9]+)?"
_REPOSITORY = re.compile(rf"(?:({_DOMAIN_AND_PORT})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)")
_REPOSITORY_PATH_MAX = 255  # reference.go RepositoryNameTotalLengthMax
_IMAGE_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)  # regexp.go tag (Go's \w is ASCII)


# ---------------------------------------------------------------- quantities


def _quantity_text(examples: tuple[Any, ...]) -> Callable[[Any], Any]:
    """Before the str check: Kubernetes takes a quantity as a string or as a plain number (`cpu: 2`)."""

    def to_text(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float) and math.isfinite(value):
            return format(Decimal(repr(value)).normalize(), "f")
        if isinstance(value, str):
            return value
        raise ValueError(f"a Kubernetes quantity, as a string or a plain number, {such_as(*examples)}")

    return to_text


# What people write after a number -> the quantity suffixes that mean it (decimal units: the exact suffix, then
# the binary one Kubernetes users usually mean). Case-insensitive; only the field's own kind of unit.
_BYTE_UNITS = {"b": [""], "bytes": [""], **{f"{p}b": [p.upper() if p != "k" else "k", f"{p.upper()}i"] for p in "kmgtpe"}}
_BYTE_UNITS |= {f"{p}ib": [f"{p.upper()}i"] for p in "kmgtpe"} | {f"{p}i": [f"{p.upper()}i"] for p in "kmgtpe"}
_CPU_UNITS = {"core": [""], "cores": [""], "cpu": [""], "cpus": [""], "millicore": ["m"], "millicores": ["m"], "mcpu": ["m"]}
_QUANTITY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E")


def quantity_fixes(value: str, cpu: bool) -> list[str]:
    """What a refused quantity such as "10 GB", "4 GiB" or "2 cores" most likely meant: "10G" and "10Gi", "4Gi", "2"."""
    match = re.fullmatch(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([A-Za-z]*)\s*", value)
    if not match:
        return []
    number, unit = match.groups()
    units = _CPU_UNITS if cpu else _BYTE_UNITS
    suffixes = [unit] if unit in _QUANTITY_SUFFIXES else units.get(unit.lower(), [])
    return [number + suffix for suffix in suffixes]


def _quantity_rule(examples: tuple[Any, ...], whole_bytes: bool = False, minimum: str | None = None) -> Callable[[str], str]:
    def accepted(value: str) -> bool:
        try:
            check(value)
        except ValueError:
            return False
        return True

    def check(value: str) -> str:
        if not QUANTITY_GRAMMAR.fullmatch(value):
            # Only fixes the rule accepts are offered: "10 MB" for a volume (below its minimum) gets the usual examples.
            fixes = [fix for fix in quantity_fixes(value, cpu=not whole_bytes) if accepted(fix)]
            raise ValueError(
                "a Kubernetes quantity: a number and an optional suffix, written without spaces; suffixes are Ki Mi Gi Ti "
                "Pi Ei (powers of 1024), n u m k M G T P E (powers of 1000) or an exponent (e6), no B or unit words; "
                f"{such_as(*(fixes or examples))}"
            )
        amount = quantity(value)
        if abs(amount) > QUANTITY_MAX:
            raise ValueError(f"a quantity of at most 2^63-1, just under 8Ei (the API server caps larger ones), {such_as(*examples)}")
        if minimum is not None and amount < quantity(minimum):
            raise ValueError(
                f"a size of at least {minimum} ({int(quantity(minimum))} bytes; {minimum} itself is accepted), {such_as(*examples)}"
            )
        if amount <= 0:
            raise ValueError(f"a quantity above zero, {such_as(*examples)}")
        if whole_bytes and amount % 1 != 0:
            raise ValueError(
                f"a whole number of bytes: {value} is {amount.normalize():f} bytes (m means thousandths, not mega); {such_as(*examples)}"
            )
        return value

    return check


# MIN_STORAGE (components/postgres_args.py): the smallest volume, inclusive.
_CPU: tuple[Any, ...] = ("500m", 2, "1.5")
_MEMORY: tuple[Any, ...] = ("512Mi", "1Gi", 1073741824)
_SHM: tuple[Any, ...] = ("256Mi", "1Gi")
_STORAGE: tuple[Any, ...] = ("100Mi", "1Gi", "20Gi")
CpuQuantity = Annotated[str, BeforeValidator(_quantity_text(_CPU)), AfterValidator(_quantity_rule(_CPU))]
MemoryQuantity = Annotated[str, BeforeValidator(_quantity_text(_MEMORY)), AfterValidator(_quantity_rule(_MEMORY, whole_bytes=True))]
ShmQuantity = Annotated[str, BeforeValidator(_quantity_text(_SHM)), AfterValidator(_quantity_rule(_SHM, whole_bytes=True))]
StorageSize = Annotated[
    str, BeforeValidator(_quantity_text(_STORAGE)), AfterValidator(_quantity_rule(_STORAGE, whole_bytes=True, minimum=MIN_STORAGE))
]


# ---------------------------------------------------------------- other formats


def _schedule(value: str) -> str:
    # Exactly what both Kubernetes CronJobs and Longhorn RecurringJobs accept (components/cron.py cites both
    # parsers); croniter's extras (L, W, #, H, 7 for Sunday) would pass here and fail the preview.
    problem = schedule_problem(value)
    if problem is not None:
        raise ValueError(f"{ACCEPTED_FORM}, {such_as('0 3 * * *', '30 2 * * mon-fri', '@daily')}; here: {problem}")
    return value


def _labels(kind: str) -> Callable[[dict[str, str]], dict[str, str]]:
    """Label keys and values with apimachinery's rules (IsQualifiedName, IsValidLabelValue)."""

    def check(labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            prefix, slash, name = key.rpartition("/")
            if (
                key.count("/") > 1
                or (slash and (not prefix or len(prefix) > 253 or not DNS_1123_SUBDOMAIN.fullmatch(prefix)))
                or len(name) > 63
                or not _QUALIFIED_NAME.fullmatch(name)
            ):
                raise FieldError(
                    "",
                    key,
                    f"a {kind} key: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 letters, "
                    f"digits, '-', '_' and '.', starting and ending with a letter or digit, "
                    f"{such_as('app', 'app.kubernetes.io/name')}",
                )
            if len(value) > 63 or (value and not _QUALIFIED_NAME.fullmatch(value)):
                raise FieldError(
                    key,
                    value,
                    f"a {kind} value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
                    f"letter or digit (no spaces), {such_as('web', 'orders-api')}",
                )
        return labels

    return check


def _cidr(value: str) -> str:
    """An IPv4 or IPv6 network with its prefix, as NetworkPolicy ipBlock.cidr takes it."""
    examples = such_as("10.0.0.0/8", "192.168.1.0/24", "fd00::/8")
    if "/" not in value:
        raise ValueError(f"an IP network with its prefix length, {examples}")
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" not in str(exc):
            raise ValueError(f"an IPv4 or IPv6 network in CIDR form (octets 0-255, prefix at most 32 or 128), {examples}") from None
        network = ipaddress.ip_network(value, strict=False)
        raise ValueError(
            f"a network address: {value} has host bits set (bits after the /{network.prefixlen} prefix); "
            f"write the network it lies in, {such_as(str(network))}"
        ) from None
    return value


def _repository(value: str) -> str:
    """An image repository as distribution/reference parses a name: no scheme, no tag, no digest."""
    examples = such_as("docker.io/library/postgres", "registry.example.com:5000/db/postgres")
    last = value.rsplit("/", 1)[-1]
    if "://" in value:
        raise ValueError(f"a repository without a URL scheme: [registry[:port]/]path, {examples}")
    if "@" in value:
        raise ValueError(f"a repository without a digest (put the digest in image.digest), {examples}")
    if ":" in last:
        raise ValueError(f"a repository without a tag (put the tag in image.tag), {examples}")
    match = _REPOSITORY.fullmatch(value)
    if match and len(match.group(2)) > _REPOSITORY_PATH_MAX:
        raise ValueError(f"a repository whose path has at most {_REPOSITORY_PATH_MAX} characters, {examples}")
    if not match:
        lower = _REPOSITORY.fullmatch(value.lower())
        why = "the path must be lowercase" if lower else "path components are lowercase letters and digits joined by '.', '_', '__' or '-'"
        raise ValueError(f"an image repository in the OCI reference grammar ({why}): [registry[:port]/]path, {examples}")
    return value


def _image_tag(value: str) -> str:
    supported = ", ".join(map(str, SUPPORTED_PG_MAJORS[:-1])) + f" or {SUPPORTED_PG_MAJORS[-1]}"
    examples = such_as("18.1", "15")
    if not _IMAGE_TAG.fullmatch(value):
        raise ValueError(f"an image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-', {examples}")
    if ALPINE_TAG.search(value):
        raise ValueError(
            f"a Debian-based tag: the postgres image's Alpine variants run PostgreSQL as uid {ALPINE_UID}, and these pods "
            f"run as uid {POD_UID} (the Debian images' postgres user), so the data directory's owner would not match; "
            f"use the Debian tag of the same version, {such_as('18.1', '18.1-trixie')}"
        )
    major = pg_major(value)
    if major is not None and major < SUPPORTED_PG_MAJORS[0]:
        ended = PG_END_OF_LIFE.get(major)
        when = f"on {ended.isoformat()}" if ended else f"before {PG_END_OF_LIFE[min(PG_END_OF_LIFE)].isoformat()}"
        version = "9.6 (the last 9.x)" if major == 9 else str(major)
        raise ValueError(
            f"a supported major ({supported}): PostgreSQL {version} reached end of life {when} and gets no more fixes, "
            f"security ones included; {examples}. Existing {version.split()[0]} data moves by dump and restore into a stack at "
            f"{SUPPORTED_PG_MAJORS[0]} or newer (docs/operations.md#upgrade-major)"
        )
    if major not in SUPPORTED_PG_MAJORS:
        raise ValueError(f"a postgres image tag whose leading number is the major, one of {supported}, {examples}")
    return value


def _tag_is_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a quoted string: YAML reads {value} as a number (18.10 would become 18.1), {such_as('18.1', '15')}")
    return value


def _wal_position(value: str) -> str:
    if not WAL_POSITION_RE.fullmatch(value):
        raise ValueError(f"a WAL position X/Y in upper-case hex, as init.sh's refusal names it, {such_as('0/3000148')}")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        raise ValueError(f"sha256: followed by 64 lowercase hex digits, {such_as('sha256:' + 'ab' * 32)}")
    return value


DnsName = Annotated[str, dns_label(63)]
NamespaceName = Annotated[str, dns_label(63, ("postgres-prod", "orders-db"))]
Schedule = Annotated[str, AfterValidator(_schedule)]
DnsSubdomain = Annotated[str, AfterValidator(dns_subdomain)]
PgIdentifier = Annotated[str, AfterValidator(pg_identifier)]
PodLabels = Annotated[dict[str, str], AfterValidator(_labels("pod label"))]
NamespaceLabels = Annotated[dict[str, str], AfterValidator(_labels("namespace label"))]
Cidr = Annotated[str, AfterValidator(_cidr)]


class Model(BaseModel):
    # use_attribute_docstrings: the docstring under each field is its description (docs/configuration.md is
    # generated from them by tools/config_doc.py).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


def and_join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def explicit_fields(model: BaseModel, fields: Iterable[str]) -> list[str]:
    """The fields among `fields` the stack wrote itself (pydantic's model_fields_set), in declaration order."""
    return [f for f in type(model).model_fields if f in set(fields) & model.model_fields_set]
