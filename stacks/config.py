"""Typed, validated stack settings: the only module that reads ``pulumi.Config``.

Every key lives under the project namespace as an object (``pgstack:postgres``,
``pgstack:storage``, ...). Each object is validated by a pydantic model with
``extra="forbid"`` and strict types, so a typo or a wrong type fails at preview
time with one message naming the key, the value and the accepted form, before
any resource is registered.

Values are checked the way the cluster will check them: quantities with the API
server's grammar, names for every kind of object they become, label keys and
values with the Kubernetes rules, CIDRs with ``ipaddress``, image repositories
with the OCI reference grammar, and the cross-field rules Longhorn's webhooks and
the image enforce. Every "such as" in a message lists values (as JSON, which YAML
reads the same way) that the same key accepts; tests/stacks/test_config.py parses them.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.cron import ACCEPTED_FORM, schedule_problem
from components.longhorn_backups import RECURRING_JOB_NAME_MAX
from components.pod_security import POSTGRES_UID
from components.postgres_names import claim_name, headless_service, pod_name, pod_names, read_only_service, standby_pod, standby_set
from components.postgres_settings import MAX_REPLICAS, pg_major
from components.quantity import QUANTITY_GRAMMAR, QUANTITY_MAX, quantity
from components.validation import DNS_1035_LABEL, DNS_1123_LABEL, DNS_1123_SUBDOMAIN, PG_IDENTIFIER, WAL_POSITION_RE

PROJECT = "pgstack"

# ---------------------------------------------------------------- PostgreSQL majors

# The day each PostgreSQL major stops (or stopped) getting fixes, security fixes included: the
# "Final Release" column of https://www.postgresql.org/support/versioning/ (as mirrored by
# endoflife-date/endoflife.date products/postgresql.md). The one place these dates live.
# 9 stands for 9.6, the last 9.x (tags 9.6, 9.6.24).
PG_END_OF_LIFE: dict[int, date] = {
    9: date(2021, 11, 11),
    10: date(2022, 11, 10),
    11: date(2023, 11, 9),
    12: date(2024, 11, 21),
    13: date(2025, 11, 13),
    14: date(2026, 11, 12),
    15: date(2027, 11, 11),
    16: date(2028, 11, 9),
    17: date(2029, 11, 8),
    18: date(2030, 11, 14),
}

# Image majors whose data layout and entrypoint behaviour we have checked: 15-17 keep PGDATA under
# /var/lib/postgresql/data, 18 moved it (components/postgres_settings.data_layout), and
# tests/components/scripts/test_majors.py runs init.sh on a real server of each. Every major older than the
# first is past its end of life and refused with its date.
SUPPORTED_PG_MAJORS = (15, 16, 17, 18)

# The pods run PostgreSQL as POD_UID, the official Debian images' postgres user (docker-library/postgres
# */trixie/Dockerfile: useradd --uid=999); the Alpine images' postgres is 70 (*/alpine*/Dockerfile: adduser -u 70).
POD_UID = POSTGRES_UID
ALPINE_UID = 70

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
_ALPINE_TAG = re.compile(r"(^|[-.])alpine", re.IGNORECASE)


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. RunError makes Pulumi print just the message."""


def such_as(*examples: Any) -> str:
    """'such as "1Gi", "20Gi" or 2': examples as JSON scalars, which a stack file's YAML reads the same way."""
    shown = [json.dumps(e) for e in examples]
    return "such as " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1])


# ---------------------------------------------------------------- names and identifiers


def dns_label(max_len: int = 63, examples: tuple[str, ...] = ("postgres", "orders-db")) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > max_len or not DNS_1123_LABEL.fullmatch(value):
            raise ValueError(
                f"a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit, at most {max_len} characters, {such_as(*examples)}"
            )
        return value

    return AfterValidator(check)


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not DNS_1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter "
            f"or digit, at most 253 characters, {such_as('longhorn-postgres', 'csi-disk')}"
        )
    return value


def _pg_identifier(value: str) -> str:
    if not PG_IDENTIFIER.fullmatch(value):
        raise ValueError(
            "a PostgreSQL identifier: lowercase letters, digits and '_', not starting with a digit, at most 63 characters, "
            f"{such_as('orders', 'billing_app')}"
        )
    return value


# The most pods a set can have (PostgresSettings.replicas) is MAX_REPLICAS, so the highest ordinal is MAX_REPLICAS - 1.

# Why each kind of object limits the names made from postgres.name.
_STATEFULSET = (
    52,
    "a StatefulSet name can have at most 52 characters: the controller labels every pod controller-revision-hash="
    "<StatefulSet name>-<hash of up to 10 characters> (kubernetes pkg/controller/history ControllerRevisionName), "
    "and a label value has at most 63",
)
_POD = (63, "a StatefulSet pod's name is its hostname, a DNS-1123 label of at most 63 characters")
_SERVICE = (63, "a Service name is a DNS-1035 label of at most 63 characters")
_CRONJOB = (52, "Kubernetes refuses a CronJob name over 52 characters: each Job's name adds 11 (pkg/apis/batch/validation)")
_SUBDOMAIN = (253, "a DNS-1123 subdomain of at most 253 characters")


def derived_names(name: str) -> list[tuple[str, str, tuple[int, str]]]:
    """Every object name made from postgres.name, its kind and its (length limit, reason), at the largest size.

    Checked for MAX_REPLICAS and with replication, whatever the stack sets now: scaling up later
    must not meet a name the cluster refuses.
    """
    last = MAX_REPLICAS - 1
    return [
        (name, "the primary StatefulSet", _STATEFULSET),
        (standby_set(name), "the standby StatefulSet", _STATEFULSET),
        (standby_pod(name, last), "a standby pod", _POD),
        (pod_name(name, last), "a pod with replication off", _POD),
        (name, "the read-write Service", _SERVICE),
        (read_only_service(name), "the read-only Service", _SERVICE),
        (headless_service(name), "the headless Service", _SERVICE),
        (f"{name}-backup", "the dump CronJob", _CRONJOB),
        (f"{name}-credentials", "the credentials Secret", _SUBDOMAIN),
        (f"{name}-scripts", "the scripts ConfigMap", _SUBDOMAIN),
        (f"{name}-dumps", "the dumps PersistentVolumeClaim", _SUBDOMAIN),
        (f"{name}-dumps-s3", "the dump S3 Secret", _SUBDOMAIN),
        (claim_name(standby_pod(name, last)), "a data PersistentVolumeClaim", _SUBDOMAIN),
    ]


def _postgres_name(value: str) -> str:
    if not DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            "a DNS-1035 label, because the name is also the Services' names (<name>, <name>-ro, <name>-hl): lowercase "
            f"letters, digits and '-', starting with a letter and ending with a letter or digit, {such_as('postgres', 'orders-db')}"
        )
    too_long = [(limit - (len(obj) - len(value)), obj, kind, why) for obj, kind, (limit, why) in derived_names(value) if len(obj) > limit]
    if too_long:
        allowed, obj, kind, why = min(too_long)
        raise ValueError(
            f"a name of at most {allowed} characters: it makes {kind} {obj} ({len(obj)} characters), and {why}; "
            f"{such_as('postgres', 'orders-db')}"
        )
    return value


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


# The smallest volume: init.sh's WAL budget needs room beside the data. Inclusive.
MIN_STORAGE = "100Mi"

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
                raise _FieldError(
                    "",
                    key,
                    f"a {kind} key: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 letters, "
                    f"digits, '-', '_' and '.', starting and ending with a letter or digit, "
                    f"{such_as('app', 'app.kubernetes.io/name')}",
                )
            if len(value) > 63 or (value and not _QUALIFIED_NAME.fullmatch(value)):
                raise _FieldError(
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
    if _ALPINE_TAG.search(value):
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
            f"{SUPPORTED_PG_MAJORS[0]} or newer (README, Upgrade to a new PostgreSQL major)"
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


# The official postgres images whose digests we know: digest -> the PostgreSQL version it runs. Each major's
# trixie image as docker-library/repo-info lists it at commit 0b63eeca29bdd695a0db3d3249137b9929da650d,
# repos/postgres/remote/<major>-trixie.md: the index digest (line 4, what `docker pull postgres:<tag>` resolves)
# and the linux/amd64 image's (line 29), with the image's ENV PG_VERSION. A digest not listed here is accepted
# unchecked; init.sh still refuses a server of another major (STACK_PG_MAJOR).
KNOWN_DIGESTS: dict[str, str] = {
    "sha256:86c951e05bf56c93d95d397747fb8820ac76cc3bedb78f43abd83eedbe3666ae": "18.6",  # 18-trixie, the stacks' pin
    "sha256:0377e72c5289ed2f98cf61b1a9c2db9eb9d300317fe14244492fbc94343b3d04": "18.6",  # 18-trixie linux/amd64
    "sha256:f4c66b820c6f974249089d3d16d86a3698eae11e8746eb6644b2271031e91232": "17.11",  # 17-trixie
    "sha256:e31e3d5327d1806f6177827c9710643e4f35f7ab3f14d26d05332753d3e95ee0": "17.11",  # 17-trixie linux/amd64
    "sha256:a3b7f434b2dc57ce85a67e171163eb8ab1a1ebcb39d27484661f26b1dfbe30d6": "16.15",  # 16-trixie
    "sha256:a85daf0dbd5e79586e850e3fe4b21b796799828ad015ce2166aeb98cc24da61c": "16.15",  # 16-trixie linux/amd64
    "sha256:dfbbb0ad8cab91d41e99123664e37a9b25d0413426d4fb3154e4d668e5d35246": "15.19",  # 15-trixie
    "sha256:e27d24a29acce1b554771ba68c43afa55446069d228310451bb8c96c1531d2cb": "15.19",  # 15-trixie linux/amd64
}


def tag_names_version(tag: str, version: str) -> bool:
    """Whether a tag's version (18, 18.6, 18.6-trixie) is `version` (18.6) or a prefix of it."""
    numbers = re.match(r"[0-9]+(?:\.[0-9]+)*", tag)
    return numbers is not None and version.split(".")[: numbers[0].count(".") + 1] == numbers[0].split(".")


def _digest_matches_tag(tag: str, digest: str | None) -> None:
    """The digest decides what the node runs; the tag decides the data layout and what init.sh expects."""
    version = KNOWN_DIGESTS.get(digest or "")
    if version is None or tag_names_version(tag, version):
        return
    raise _FieldError(
        "tag",
        tag,
        f"the version image.digest runs: {digest} is postgres:{version} (docker-library/repo-info), so the pods would "
        f"run PostgreSQL {version} whatever the tag says; set the tag to it, {such_as(version, version.split('.')[0])}, "
        "or pin the digest of the version you mean",
    )


DnsName = Annotated[str, dns_label(63)]
NamespaceName = Annotated[str, dns_label(63, ("postgres-prod", "orders-db"))]
Schedule = Annotated[str, AfterValidator(_schedule)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
PgIdentifier = Annotated[str, AfterValidator(_pg_identifier)]
PodLabels = Annotated[dict[str, str], AfterValidator(_labels("pod label"))]
NamespaceLabels = Annotated[dict[str, str], AfterValidator(_labels("namespace label"))]
Cidr = Annotated[str, AfterValidator(_cidr)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _explicit(model: BaseModel, fields: Iterable[str]) -> list[str]:
    """The fields among `fields` the stack wrote itself (pydantic's model_fields_set), in declaration order."""
    return [f for f in type(model).model_fields if f in set(fields) & model.model_fields_set]


# ---------------------------------------------------------------- storage


_LOCALITIES = ("disabled", "best-effort", "strict-local")


def _strict_local_rule(locality_key: str, locality: str, count_key: str, count: int) -> None:
    """Longhorn's volume webhook refuses strict-local with more than one replica: longhorn-manager
    webhook/resources/volume/validator.go (validateReplicaCount, types.ValidateDataLocalityAndReplicaCount:
    "replica count should be 1 in data locality strict-local mode"). Volumes that leave both unset get
    them from the default-replica-count and default-data-locality settings (volume mutator.go)."""
    if locality == "strict-local" and count > 1:
        raise _FieldError(
            locality_key,
            locality,
            f"a locality that allows {count_key} {count}, {such_as('best-effort', 'disabled')}: strict-local keeps a "
            f"volume's only replica on the pod's node, and Longhorn's volume webhook refuses it with more than one "
            f"replica (for strict-local, set {count_key} to 1)",
        )


def _chart_version(value: str) -> str:
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", value):
        raise ValueError(f"a Helm chart version MAJOR.MINOR.PATCH, digits only (no v, no date), {such_as('1.10.1')}")
    return value


class LonghornSettings(_Model):
    """Longhorn install (helm.v3.Release) and its cluster-wide default settings."""

    install: bool = Field(
        True,
        description="Install Longhorn from this stack; false when another stack (or a platform team) already installed it",
    )
    chartVersion: Annotated[str, AfterValidator(_chart_version)] = Field("1.10.1", description="Pinned Longhorn chart version")
    namespace: DnsName = Field("longhorn-system", description="Namespace for the Longhorn release")
    defaultReplicaCount: int = Field(3, ge=1, le=20, description="Longhorn's default replica count for volumes")
    defaultDataLocality: Literal["disabled", "best-effort", "strict-local"] = "disabled"
    nodeDownPodDeletionPolicy: Literal[
        "do-nothing",
        "delete-statefulset-pod",
        "delete-deployment-pod",
        "delete-both-statefulset-and-deployment-pod",
    ] = Field(
        "delete-both-statefulset-and-deployment-pod",
        description="What Longhorn does with pods on a down node; seed 000's reboot recovers faster when it deletes them",
    )
    deleteAllVolumesOnUninstall: bool = Field(
        False,
        description=(
            "Arm Longhorn's deleting-confirmation-flag: uninstalling the release then deletes EVERY Longhorn volume in the "
            "cluster, whatever the reclaim policy. Off: destroy leaves Longhorn and its volumes installed"
        ),
    )
    uninstallConfirmation: str | None = Field(
        None,
        description="With deleteAllVolumesOnUninstall: the sentence uninstall_confirmation() gives for this stack (runbooks section)",
    )

    @model_validator(mode="after")
    def _check(self) -> LonghornSettings:
        _strict_local_rule("defaultDataLocality", self.defaultDataLocality, "defaultReplicaCount", self.defaultReplicaCount)
        return self


# Read only when this stack installs Longhorn (namespace is read either way: the recurring jobs live there).
LONGHORN_INSTALL_ONLY = (
    "chartVersion",
    "defaultReplicaCount",
    "defaultDataLocality",
    "nodeDownPodDeletionPolicy",
    "deleteAllVolumesOnUninstall",
    "uninstallConfirmation",
)
# Settings of the StorageClass this stack creates on Longhorn; an existing class is used as it is.
LONGHORN_CLASS_ONLY = ("className", "numberOfReplicas", "dataLocality", "reclaimPolicy")


class StorageSettings(_Model):
    """The StorageClass the database volumes use."""

    className: DnsSubdomain = Field("longhorn-postgres", description="Name of the StorageClass we create")
    existingClass: DnsSubdomain | None = Field(None, description="Use this existing class instead of creating className on Longhorn")
    numberOfReplicas: int = Field(3, ge=1, le=20, description="Longhorn replicas of each database volume")
    dataLocality: Literal["disabled", "best-effort", "strict-local"] = "best-effort"
    reclaimPolicy: Literal["Retain", "Delete"] = Field("Retain", description="Retain keeps the volume when a PVC is deleted")

    @model_validator(mode="after")
    def _check(self) -> StorageSettings:
        _strict_local_rule("dataLocality", self.dataLocality, "numberOfReplicas", self.numberOfReplicas)
        return self


# ---------------------------------------------------------------- postgres


class ImageSettings(_Model):
    repository: Annotated[str, AfterValidator(_repository)] = Field(
        "docker.io/library/postgres", description="[registry[:port]/]path, without tag or digest"
    )
    tag: Annotated[str, BeforeValidator(_tag_is_text), AfterValidator(_image_tag)] = Field(
        "18.6", description="Image tag; its leading number is the PostgreSQL major (15-18); Debian-based, not -alpine"
    )
    digest: Annotated[str, AfterValidator(_digest)] | None = Field(None, description="Pin by digest: sha256:<64 hex>")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    @model_validator(mode="after")
    def _tag_and_digest_agree(self) -> ImageSettings:
        _digest_matches_tag(self.tag, self.digest)
        return self

    @property
    def major(self) -> int:
        major = pg_major(self.tag)
        assert major is not None
        return major

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


# The resources a pod gets for what the stack leaves out; see ResourceSettings.
DEFAULT_REQUESTS = {"cpu": "1", "memory": "1Gi"}
DEFAULT_LIMITS = {"cpu": "2", "memory": "1Gi"}


class ResourceAmounts(_Model):
    # "" until ResourceSettings completes it: an unset field (not in model_fields_set) takes its default there.
    cpu: CpuQuantity = ""
    memory: MemoryQuantity = ""


class ResourceSettings(_Model):
    """Requests and limits; each of the four fields defaults on its own.

    A field the stack leaves out takes its default, moved only as far as it must to keep
    limits >= requests: a missing limit is max(its default, the request), a missing request is
    min(its default, the limit). So `limits: {memory: 4Gi}` alone gives requests.memory 1Gi,
    and `requests: {cpu: "4"}` alone gives limits.cpu 4. A request above a limit the stack set
    itself is refused as just that.
    """

    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()

    @model_validator(mode="after")
    def _complete(self) -> ResourceSettings:
        requests: dict[str, str] = {}
        limits: dict[str, str] = {}
        for res in ("cpu", "memory"):
            req = getattr(self.requests, res) if res in self.requests.model_fields_set else None
            lim = getattr(self.limits, res) if res in self.limits.model_fields_set else None
            if req is not None and lim is not None and quantity(lim) < quantity(req):
                raise _FieldError(
                    f"limits.{res}",
                    lim,
                    f"a limit at least requests.{res} ({req}), {such_as(req)}: Kubernetes refuses a container whose "
                    f"request is above its limit (or lower requests.{res})",
                )
            if req is None:
                req = DEFAULT_REQUESTS[res] if lim is None or quantity(DEFAULT_REQUESTS[res]) <= quantity(lim) else lim
            if lim is None:
                lim = DEFAULT_LIMITS[res] if quantity(DEFAULT_LIMITS[res]) >= quantity(req) else req
            requests[res], limits[res] = req, lim
        # Frozen model: set the completed amounts once, here, while it is being validated.
        object.__setattr__(self, "requests", ResourceAmounts(**requests))
        object.__setattr__(self, "limits", ResourceAmounts(**limits))
        return self


class ServiceSettings(_Model):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int = Field(5432, ge=1, le=65535)
    nodePort: int | None = Field(None, ge=30000, le=32767, description="Only with type NodePort")

    @model_validator(mode="after")
    def _node_port_needs_type(self) -> ServiceSettings:
        if self.nodePort is not None and self.type != "NodePort":
            raise _FieldError("nodePort", self.nodePort, "unset unless type is NodePort")
        return self


class ReplicationSettings(_Model):
    enabled: bool = Field(True, description="Stream from pod 0 to the other pods whenever replicas > 1")
    user: PgIdentifier = "replicator"
    maxLagBytes: int = Field(16 * 1024 * 1024, ge=0, description="A standby is ready only within this replay lag")
    podAntiAffinity: Literal["soft", "hard"] = "soft"
    primary: Annotated[str, dns_label(63, (pod_name("postgres", 0), standby_pod("postgres", 1)))] | None = Field(
        None, description="Pod that must be the primary; null means <name>-0. Set only by the promotion runbook"
    )
    acceptWalLossUpTo: Annotated[str, AfterValidator(_wal_position)] | None = Field(
        None,
        description="Promote replication.primary although a reachable pod's WAL reaches this far past its data "
        "(a WAL position X/Y, from init.sh's refusal); the commits in between are lost. Null: refuse",
    )


class ClientPeer(_Model):
    """Who may connect: pods matching podLabels in namespaces matching namespaceLabels
    (null: the database's namespace), or an IP range in cidr."""

    podLabels: PodLabels = Field(default_factory=dict)
    namespaceLabels: NamespaceLabels | None = None
    cidr: Cidr | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ClientPeer:
        if self.cidr is not None and (self.podLabels or self.namespaceLabels is not None):
            raise _FieldError("cidr", self.cidr, "either cidr or podLabels/namespaceLabels in one entry, not both")
        return self


class DnsSettings(_Model):
    """Where the pods may send DNS queries (UDP/TCP 53).

    The DNS pods (default: kube-dns in kube-system; OpenShift: dns-default in openshift-dns),
    plus any cidrs (NodeLocal DNSCache: ["169.254.20.10/32"]); or any: true for port 53 anywhere.
    """

    podLabels: PodLabels = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    namespaceLabels: NamespaceLabels = Field(default_factory=lambda: {"kubernetes.io/metadata.name": "kube-system"})
    cidrs: list[Cidr] = Field(default_factory=list)
    any: bool = Field(False, description="Port 53 to every address")

    @model_validator(mode="after")
    def _one_form(self) -> DnsSettings:
        # any replaces the peers: with peers also set, one of the two would be silently ignored.
        selectors = {"podLabels", "namespaceLabels"} & self.model_fields_set
        if self.any and (self.cidrs or selectors):
            raise _FieldError(
                "any", True, "false when cidrs or podLabels/namespaceLabels are set (any allows every address), such as false"
            )
        return self


class NetworkPolicySettings(_Model):
    enabled: bool = Field(True, description="Restrict ingress to peers and allowFrom, egress to DNS and peers")
    allowFrom: list[ClientPeer] = Field(default_factory=lambda: [ClientPeer()], description="Default: any pod in the namespace")
    dns: DnsSettings = DnsSettings()


# ---------------------------------------------------------------- rollouts: what the preview can refuse

# A pod that no node can take stays Pending, and the primary's rollout stops at it (stacks/rollout.py,
# README "Runbook: a rollout is stuck"). The program cannot see the nodes; a stack that states its largest
# node's allocatable resources gets the one check that is sure: the scheduler places a pod only on a node
# whose allocatable amount covers the pod's requests (kubernetes pkg/scheduler/framework/plugins/noderesources
# fit.go, fitsRequest), so a postgres container asking for more than the largest node has never fits. The pod
# asks for a little more (the password sidecar), and other pods use part of a node: passing is no promise.


class NodeCapacity(_Model):
    """The allocatable cpu and memory of the largest node the database pods may run on (kubectl get node
    -o jsonpath='{.status.allocatable}'), as the stack states it."""

    cpu: CpuQuantity
    memory: MemoryQuantity


def _fits_largest_node(resources: ResourceSettings, node: NodeCapacity | None) -> None:
    if node is None:
        return
    for res in ("cpu", "memory"):
        request, allocatable = getattr(resources.requests, res), getattr(node, res)
        if quantity(request) > quantity(allocatable):
            raise _FieldError(
                f"resources.requests.{res}",
                request,
                f"a request at most largestNode.{res} ({allocatable}), {such_as(allocatable)}: the scheduler never places "
                f"a pod on a node whose allocatable {res} is below its request, so the pod would stay Pending and the "
                "rollout would stop at it (or correct largestNode)",
            )


class PostgresSettings(_Model):
    """The PostgreSQL StatefulSet."""

    name: Annotated[str, AfterValidator(_postgres_name)] = Field(
        "postgres", description="Base name of the StatefulSets, Services, Secret, claims and CronJob"
    )
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS, description="PostgreSQL pods: 1 primary plus replicas-1 hot standbys")
    image: ImageSettings = ImageSettings()
    storageSize: StorageSize = Field("1Gi", description="Volume size of each pod")
    resources: ResourceSettings = ResourceSettings()
    database: PgIdentifier = Field("app", description="Database created for the application user")
    passwordRotation: int = Field(1, ge=1, description="Bump to generate new passwords; the pods roll and apply them")
    username: PgIdentifier | None = Field("app", description="Application role; null for superuser only")
    service: ServiceSettings = ServiceSettings()
    replication: ReplicationSettings = ReplicationSettings()
    shmSize: ShmQuantity = Field("256Mi", description="Size of the memory-backed /dev/shm")
    networkPolicy: NetworkPolicySettings = NetworkPolicySettings()
    largestNode: NodeCapacity | None = Field(
        None, description="Allocatable cpu and memory of the largest node the pods may run on; null: not checked"
    )

    @model_validator(mode="after")
    def _roles_and_primary(self) -> PostgresSettings:
        _fits_largest_node(self.resources, self.largestNode)
        for key, role in (("username", self.username), ("replication.user", self.replication.user)):
            if role is not None and (role == "postgres" or role.startswith("pg_")):
                raise _FieldError(
                    key,
                    role,
                    f"a role name other than postgres (the superuser) and not starting with pg_, {such_as('orders', 'billing_app')}",
                )
        if self.username is not None and self.username == self.replication.user:
            raise _FieldError(
                "username",
                self.username,
                f"a role name different from replication.user ({self.replication.user}), {such_as('orders', 'billing_app')}",
            )
        primary = self.replication.primary
        if primary is not None:
            pods = pod_names(self.name, self.replicas, replication=True)
            if primary not in pods or self.replicas == 1 or not self.replication.enabled:
                raise _FieldError("replication.primary", primary, f"null or one of this set's pods with replication on: {', '.join(pods)}")
        return self


# ---------------------------------------------------------------- backups


class LonghornJob(_Model):
    """A Longhorn RecurringJob for the database volumes: when, and how many to keep per volume.

    No defaults: a stack that turns a job on says when it runs and how many it keeps."""

    schedule: Schedule
    retain: int = Field(ge=1, le=100, description="Snapshots or backups kept per volume")


def _s3_remote(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", value):
        raise ValueError(
            "an rclone bucket/prefix without a scheme: letters, digits, '.', '_', '/' and '-', starting with a letter or "
            f"digit, {such_as('backups/orders-db', 'my-bucket')}"
        )
    return value


class DumpSettings(_Model):
    """The logical backup CronJob: pg_dumpall globals plus pg_dump -Fc per database."""

    schedule: Schedule = "30 2 * * *"
    keep: int = Field(7, ge=0, description="Complete dumps kept by count (0: no count rule)")
    keepDays: int = Field(0, ge=0, description="Complete dumps kept by age in days (0: no age rule)")
    storageSize: StorageSize = Field("5Gi", description="The dumps volume; grows in place like the data volumes")
    s3Remote: Annotated[str, AfterValidator(_s3_remote)] | None = Field(
        None,
        description="bucket/prefix to copy every dump to with rclone; credentials in pgstack:dumpS3 (secret)",
    )

    @model_validator(mode="after")
    def _some_retention(self) -> DumpSettings:
        if self.keep == 0 and self.keepDays == 0:
            raise _FieldError("keep", 0, f"at least 1 in keep or keepDays, {such_as(7, 14)}: with neither, dumps would fill their volume")
        return self


class BackupSettings(_Model):
    """Backups: Longhorn snapshots and off-cluster volume backups, and logical dumps. Each is off when null."""

    snapshots: LonghornJob | None = Field(None, description="Crash-consistent Longhorn snapshots, on the volumes' replicas")
    volumeBackups: LonghornJob | None = Field(None, description="Longhorn backups to the cluster's backup target (off-cluster)")
    dumps: DumpSettings | None = Field(None, description="pg_dump CronJob writing to a PVC of its own (and S3)")


# Namespaces a database must never live in: deleting the stack would delete them.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# The RecurringJobs are <className>-snapshot and <className>-backup (components/longhorn_backups.py); Longhorn
# refuses a job name over RECURRING_JOB_NAME_MAX characters, which also keeps the CronJob Longhorn runs under
# the same name within Kubernetes' 52.
RECURRING_JOB_TASKS = ("snapshot", "backup")


class Settings(_Model):
    """Everything a stack can set."""

    namespace: NamespaceName = "postgres"
    protect: bool = Field(True, description="Pulumi protect on every stateful resource: delete and replace are refused")
    longhorn: LonghornSettings = LonghornSettings()
    storage: StorageSettings = StorageSettings()
    postgres: PostgresSettings = PostgresSettings()
    backup: BackupSettings = BackupSettings()
    adopt: list[str] = Field(default_factory=list, description="Live objects this stack takes over instead of creating")
    holdDatabase: bool = Field(False, description="No database pod and no data claim: a restored volume is bound first")

    @model_validator(mode="after")
    def _runbook_keys(self, info: ValidationInfo) -> Settings:
        stack = info.context.get("stack") if isinstance(info.context, dict) else None
        check_runbook_keys(self, stack)
        return self

    @model_validator(mode="after")
    def _storage_class_source(self) -> Settings:
        if self.namespace in SYSTEM_NAMESPACES:
            raise _FieldError(
                "namespace",
                self.namespace,
                f"a namespace of its own, not one of {', '.join(SYSTEM_NAMESPACES)}, {such_as('postgres', 'orders-db')}",
            )
        if self.namespace == self.longhorn.namespace:
            raise _FieldError(
                "namespace",
                self.namespace,
                f"a namespace other than longhorn.namespace ({self.longhorn.namespace}), {such_as('postgres', 'orders-db')}: "
                "the database namespace is Pod Security restricted, Longhorn's is privileged",
            )
        existing = self.storage.existingClass
        if existing is not None:
            if self.longhorn.install:
                raise _FieldError("storage.existingClass", existing, "unset while longhorn.install is true")
            ignored = _explicit(self.storage, LONGHORN_CLASS_ONLY)
            if ignored:
                raise _FieldError(
                    f"storage.{ignored[0]}",
                    getattr(self.storage, ignored[0]),
                    f"unset with storage.existingClass ({existing}): {_and(['storage.' + f for f in ignored])} "
                    "configure the Longhorn StorageClass this stack would otherwise create, and an existing class is "
                    "used as it is",
                )
        longhorn_jobs = [k for k in ("snapshots", "volumeBackups") if getattr(self.backup, k) is not None]
        if longhorn_jobs and existing is not None:
            raise _FieldError(
                f"backup.{longhorn_jobs[0]}",
                "an object",
                "null with storage.existingClass: Longhorn snapshots and backups need the volumes on Longhorn",
            )
        if longhorn_jobs and len(self.storage.className) < 2:
            # The class name is also the jobs' group, and Longhorn's ValidateRecurringJob checks each group with
            # ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ (longhorn-manager v1.10.1 datastore/longhorn.go:5581, util/util.go:285).
            raise _FieldError(
                "storage.className",
                self.storage.className,
                f"a class name of at least 2 characters while backup.{longhorn_jobs[0]} is set, {such_as('longhorn-postgres')}: "
                "it is the Longhorn recurring-job group, and Longhorn refuses a one-character group",
            )
        if longhorn_jobs:
            job = max((f"{self.storage.className}-{task}" for task in RECURRING_JOB_TASKS), key=len)
            if len(job) > RECURRING_JOB_NAME_MAX:
                allowed = RECURRING_JOB_NAME_MAX - (len(job) - len(self.storage.className))
                raise _FieldError(
                    "storage.className",
                    self.storage.className,
                    f"a class name of at most {allowed} characters while backup.{longhorn_jobs[0]} is set, "
                    f"{such_as('longhorn-postgres')}: it names the Longhorn recurring job {job} ({len(job)} characters; "
                    "the longer of the two, so turning the other on later cannot fail), and Longhorn refuses a job name "
                    f"over {RECURRING_JOB_NAME_MAX} (longhorn-manager NameMaximumLength)",
                )
        return self

    @property
    def storage_class(self) -> str:
        return self.storage.existingClass or self.storage.className


# ---------------------------------------------------------------- runbooks: adoption, restore hold, Longhorn uninstall

# The Longhorn release's name (components/longhorn_install.py registers it under this name).
LONGHORN_RELEASE = "longhorn"


def uninstall_confirmation(stack: str, longhorn_namespace: str) -> str:
    """The sentence longhorn.uninstallConfirmation must hold to arm Longhorn's uninstall on this stack.

    It names the stack and the release, so no typo, and no stack file copied from another stack, can produce it.
    policy/rules.py builds the same sentence from the URN and the release (tests/policy pins that they agree).
    """
    return f"{stack}: no other stack uses {longhorn_namespace}/{LONGHORN_RELEASE}; delete every Longhorn volume in this cluster"


# Any stack's sentence, for a check without the stack name (tools/verify.py reads settings outside a Pulumi run).
_ANY_CONFIRMATION = re.compile(r"[A-Za-z0-9_.-]{1,100}: no other stack uses (\S+)/longhorn; delete every Longhorn volume in this cluster")


def adoptable(settings: Settings) -> dict[str, str]:
    """adopt entries this stack accepts -> what each takes over. An entry is <kind>/<import id>: the id the
    provider's Read takes (a cluster-scoped object's name, else <namespace>/<name>; a Helm release's is
    <namespace>/<release>, pulumi-kubernetes provider/pkg/provider/util.go parseFqName)."""
    entries = {f"namespace/{settings.namespace}": "the database namespace (made by kubectl, or kept from before)"}
    if settings.longhorn.install:
        ns = settings.longhorn.namespace
        entries[f"namespace/{ns}"] = "Longhorn's namespace, retained by a destroy"
        entries[f"release/{ns}/{LONGHORN_RELEASE}"] = "the Longhorn Helm release, retained by a destroy"
        entries[f"secret/{ns}/{BACKUP_TARGET_SECRET}"] = "the backup target's Secret, retained by a destroy"
    return entries


# components/longhorn_install.py BACKUP_CREDENTIALS_SECRET
BACKUP_TARGET_SECRET = "longhorn-backup-target"


def check_runbook_keys(settings: Settings, stack: str | None) -> None:
    """adopt names only objects this stack registers; an armed uninstall carries this stack's confirmation."""
    accepted = adoptable(settings)
    for entry in settings.adopt:
        if entry not in accepted:
            raise _FieldError(
                "adopt",
                entry,
                f'one of the objects this stack creates: {", ".join(accepted)} (<kind>/<import id>; README "Destroy and decommission")',
            )
    twice = [e for e in settings.adopt if settings.adopt.count(e) > 1]
    if twice:
        raise _FieldError("adopt", twice[0], "each object once")
    longhorn = settings.longhorn
    if not (longhorn.install and longhorn.deleteAllVolumesOnUninstall):
        return
    given = longhorn.uninstallConfirmation
    if stack is not None:
        expected = uninstall_confirmation(stack, longhorn.namespace)
        if given != expected:
            raise _FieldError(
                "longhorn.uninstallConfirmation",
                given,
                f"with longhorn.deleteAllVolumesOnUninstall true, exactly {json.dumps(expected)}: deleting the release then "
                "deletes every Longhorn volume in the cluster, other stacks' included; set it only once no other stack uses "
                "this Longhorn",
            )
    elif given is None or not (m := _ANY_CONFIRMATION.fullmatch(given)) or m.group(1) != longhorn.namespace:
        raise _FieldError("longhorn.uninstallConfirmation", given, "this stack's uninstall confirmation (uninstall_confirmation)")


# Top-level config keys: each is an object under the project namespace.
CONFIG_KEYS: tuple[str, ...] = tuple(Settings.model_fields)


# ---------------------------------------------------------------- secret config

# Keys Longhorn reads from the backup target's Secret (Longhorn docs, "Set up backup target";
# not in the reference files, which hold the chart and the CRDs).
LONGHORN_CREDENTIAL_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINTS",
    "AWS_CERT",
    "VIRTUAL_HOSTED_STYLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "CIFS_USERNAME",
    "CIFS_PASSWORD",
    "AZBLOB_ACCOUNT_NAME",
    "AZBLOB_ACCOUNT_KEY",
    "AZBLOB_ENDPOINT",
    "AZBLOB_CERT",
)


# A `secure:` value of a stack file where the value cannot be read: the offline render and the tests have no
# passphrase (tools/mock_run.py puts this in its place). Under the CLI the program gets the decrypted value
# instead. It stands for "set, value unknown here": every string field of the secret models accepts it (no
# colon, so a URL parser reads it as a host), and the checks that need the real value skip it.
SECRET_UNKNOWN = "<secret set in the stack file>"


def _unknown_passes(value: Any, handler: Callable[[Any], Any]) -> Any:
    """A string field's validation, skipped for SECRET_UNKNOWN (a dict field still refuses it, as it refuses
    the JSON text the CLI hands over for a `secure:` object)."""
    return value if value == SECRET_UNKNOWN else handler(value)


class BackupTargetSecret(_Model):
    """pgstack:backupTarget (secret): the cluster's Longhorn backup target and its credentials."""

    url: str = Field(pattern=r"^(s3|nfs|cifs|azblob)://\S+$")
    credentials: dict[str, str] = Field(default_factory=dict)
    _url_unknown = field_validator("url", mode="wrap")(_unknown_passes)

    @model_validator(mode="after")
    def _known_keys(self) -> BackupTargetSecret:
        unknown = sorted(set(self.credentials) - set(LONGHORN_CREDENTIAL_KEYS))
        if unknown:
            raise _FieldError(
                f"credentials.{unknown[0]}", "(hidden)", f"one of the keys Longhorn reads: {', '.join(LONGHORN_CREDENTIAL_KEYS)}"
            )
        if self.url.startswith("s3://") and not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(self.credentials):
            raise _FieldError("credentials", "(hidden)", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an s3:// target")
        return self


class DumpS3Secret(_Model):
    """pgstack:dumpS3 (secret): where rclone copies the dumps (backup.dumps.s3Remote names the bucket)."""

    provider: str = Field("AWS", pattern=r"^[A-Za-z0-9]+$", description="rclone's S3 provider: AWS, Minio, Ceph, Cloudflare, ...")
    accessKeyId: str = Field(min_length=1)
    secretAccessKey: str = Field(min_length=1)
    endpoint: str | None = Field(None, pattern=r"^(https?://)?[A-Za-z0-9.-]+(:\d+)?/?$")
    region: str | None = Field(None, pattern=r"^[a-z0-9-]+$")
    _unknown = field_validator("provider", "accessKeyId", "secretAccessKey", "endpoint", "region", mode="wrap")(_unknown_passes)


class Secrets(_Model):
    """Secret config: plain here, wrapped in pulumi.Output.secret wherever it leaves the program."""

    backupTarget: BackupTargetSecret | None = None
    dumpS3: DumpS3Secret | None = None


SECRET_KEYS: tuple[str, ...] = tuple(Secrets.model_fields)
_SECRET_MODELS: dict[str, type[_Model]] = {"backupTarget": BackupTargetSecret, "dumpS3": DumpS3Secret}


def _unknown_object(model: type[_Model]) -> dict[str, str]:
    """A secret object set as a whole (`pulumi config set --secret <key> '<json>'`) and not readable here:
    its required fields unknown, the others at their defaults."""
    return {name: SECRET_UNKNOWN for name, f in model.model_fields.items() if f.is_required()}


# ---------------------------------------------------------------- errors


class _FieldError(ValueError):
    """An error that knows which key (below the validated object; "" for the object itself) it is about."""

    def __init__(self, key: str, value: Any, accepted: str) -> None:
        super().__init__(accepted)
        self.key, self.value, self.accepted = key, value, accepted


# "No value" where None is a value a message could suggest (null).
_NOTHING = object()


def _describe(err: Any, prefix: str, unquoted: Any = _NOTHING) -> str:
    """One line for one pydantic error. unquoted: the value without its quotes when that is accepted there."""
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):
        return _line(".".join([*loc, *([ctx_error.key] if ctx_error.key else [])]), ctx_error.value, ctx_error.accepted, prefix)
    value = err.get("input")
    if err["type"] == "missing":
        return f"{prefix}{'.'.join(loc)}: missing; this key is required here"
    if err["type"] in ("dict_type", "model_type", "model_attributes_type"):
        return _line(".".join(loc), value, "an object (a YAML mapping)", prefix)
    if err["type"] == "extra_forbidden":
        meant = closest_key(str(err["loc"][-1]), _fields_at(err["loc"][:-1]))
        hint = "check the spelling against Pulumi.yaml"
        if meant:
            hint = f"did you mean {'.'.join([*loc[:-1], meant])}?" + _case_note(loc[-1], meant)
        return f"{prefix}{'.'.join(loc)}: unknown key (value {_show(value)}); {hint}"
    if err["type"] in _KINDS and isinstance(value, str):
        accepted = f"{_KINDS[err['type']]} without quotes (YAML reads quoted text as text)"
        return _line(".".join(loc), value, accepted + (f", {such_as(unquoted)}" if unquoted is not _NOTHING else ""), prefix)
    if isinstance(ctx_error, ValueError):
        accepted = str(ctx_error)
    else:
        accepted = err["msg"].replace("Input should be ", "").replace("String should match pattern", "a string matching")
        if err["type"] in _NUMBER_BOUNDS:
            accepted = f"a number {accepted}"
    return _line(".".join(loc), value, accepted, prefix)


_NUMBER_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
# Strict types: a quoted "2" or "true" in a stack file is text. What the key wanted, by pydantic error type.
_KINDS = {"int_type": "a whole number", "bool_type": "true or false", "float_type": "a number"}


def closest_key(name: str, known: Iterable[str]) -> str | None:
    """The known key a mistyped one most likely meant: the same in another case, else within two edits."""
    known = list(known)
    same = [k for k in known if k.lower() == name.lower()]
    if same:
        return same[0]
    near = sorted((edit_distance(name.lower(), k.lower()), k) for k in known)
    return near[0][1] if near and near[0][0] <= min(2, len(name) // 2) else None


def _case_note(name: str, meant: str) -> str:
    return " (keys are case-sensitive)" if name.lower() == meant.lower() else ""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (Optional, list[...], Annotated[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _fields_at(loc: tuple[Any, ...], model: type[BaseModel] | None = None) -> list[str]:
    """The keys the model at `loc` (below Settings) accepts."""
    model = model or Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _unquoted(raw: dict[str, Any], err: Any, errors: list[Any], stack: str | None) -> Any:
    """A quoted "2", "true" or "1.5" where a number or boolean goes, without its quotes, when the key accepts that."""
    value = err.get("input")
    if err["type"] not in _KINDS or not isinstance(value, str):
        return _NOTHING
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return _NOTHING
    if isinstance(parsed, bool) != (err["type"] == "bool_type") or not isinstance(parsed, int | float):
        return _NOTHING
    fixed = copy.deepcopy(raw)
    node: Any = fixed
    try:
        for part in err["loc"][:-1]:
            node = node[part]
        node[err["loc"][-1]] = parsed
    except (KeyError, IndexError, TypeError):  # a location that is not a path in the raw config
        return _NOTHING
    try:
        Settings.model_validate(fixed, context={"stack": stack})
    except ValidationError as again:
        # Accepted only if it brings no error of its own (an armed uninstall needs its confirmation, say).
        others = {(e["loc"], e["msg"]) for e in errors if e is not err}
        if any((e["loc"], e["msg"]) not in others for e in again.errors()):
            return _NOTHING
    return parsed


def _line(key: str, value: Any, accepted: str, prefix: str) -> str:
    return f"{prefix}{key}: got {_show(value)}; expected {accepted}"


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict) else "an object"


def parse_settings(raw: dict[str, Any], stack: str | None = None) -> Settings:
    """Validate raw config objects (top-level key -> value) into Settings or raise ConfigError.
    stack: the stack's name, which an armed Longhorn uninstall must confirm (check_runbook_keys)."""
    try:
        return Settings.model_validate(raw, context={"stack": stack})
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_describe(err, f"{PROJECT}:", _unquoted(raw, err, errors, stack)) for err in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


# What each secret field's pattern accepts, in words: a secret's message shows neither its value nor a regex.
SECRET_FORMS: dict[tuple[str, ...], str] = {
    ("backupTarget", "url"): "s3://, nfs://, cifs:// or azblob:// and the target (Longhorn's backup target URL), "
    + such_as("s3://backups@us-east-1/", "nfs://nfs.example.com:/backups"),
    ("dumpS3", "provider"): f"rclone's S3 provider name, letters and digits, {such_as('AWS', 'Minio')}",
    ("dumpS3", "endpoint"): "a host with an optional http:// or https:// and :port, no path, "
    + such_as("https://s3.example.com", "minio.local:9000"),
    ("dumpS3", "region"): f"lowercase letters, digits and '-', {such_as('us-east-1')}",
}


def parse_secrets(raw: dict[str, Any], settings: Settings) -> Secrets:
    """Validate secret config without ever echoing a value: errors name the key and the form only."""
    try:
        secrets = Secrets.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            key = ".".join([*map(str, err["loc"]), *([ctx_error.key] if isinstance(ctx_error, _FieldError) and ctx_error.key else [])])
            accepted = ctx_error.accepted if isinstance(ctx_error, _FieldError) else err["msg"].replace("Input should be ", "")
            accepted = SECRET_FORMS.get(tuple(map(str, err["loc"])), accepted) if err["type"] == "string_pattern_mismatch" else accepted
            lines.append(f"{PROJECT}:{key}: invalid (value hidden: secret); expected {accepted}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    secret_entry = f"secret/{settings.longhorn.namespace}/{BACKUP_TARGET_SECRET}"
    if secrets.backupTarget is None and secret_entry in settings.adopt:
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:adopt: got {json.dumps(secret_entry)}; expected it only with "
            f"{PROJECT}:backupTarget set (without a target this stack registers no such Secret)"
        )
    if secrets.backupTarget is not None and not settings.longhorn.install:
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:backupTarget: set on a stack that does not install Longhorn; expected it "
            "on the stack with longhorn.install true (the backup target is the cluster's)"
        )
    dumps = settings.backup.dumps
    wants_s3 = dumps is not None and dumps.s3Remote is not None
    if wants_s3 != (secrets.dumpS3 is not None):
        raise ConfigError(
            f"invalid configuration:\n  {PROJECT}:dumpS3: {'missing' if wants_s3 else 'set'} while backup.dumps.s3Remote is "
            f"{'set' if wants_s3 else 'unset'}; expected both or neither"
        )
    return secrets


def load_secrets(settings: Settings) -> Secrets:
    """Read the secret keys; each must have been set with `pulumi config set --secret`."""
    raw: dict[str, Any] = {}
    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        text = pulumi.runtime.get_config(full)
        if text is None:
            continue
        if not pulumi.runtime.is_config_secret(full):
            raise ConfigError(
                f"invalid configuration:\n  {full}: stored in plain text; expected a secret: "
                f"pulumi config set --secret --path '{key}.<field>' <value>"
            )
        if text == SECRET_UNKNOWN:  # the whole object is one `secure:` value, not readable here
            raw[key] = _unknown_object(_SECRET_MODELS[key])
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"invalid configuration:\n  {full}: not an object; expected a YAML mapping (value hidden: secret)") from None
    return parse_secrets(raw, settings)


# ---------------------------------------------------------------- config the program never reads

# Namespaces whose keys belong to the providers this program uses (kubernetes:context,
# kubernetes:namespace, random:..., pulumi:tags): never ours, even when a name matches one of ours.
PROVIDER_NAMESPACES = ("kubernetes", "random", "pulumi")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def unread_config_keys(keys: Iterable[str]) -> list[str]:
    """Warnings for config keys that look meant for this program but that it never reads.

    Pulumi hands the program fully qualified keys, `<namespace>:<name>`; a bare key in a stack
    file gets the project's namespace (Pulumi >= 3.44, sdk/go/common/workspace/loaders.go
    stackConfigNamespacedWithProject), so `postgres:` under `config:` IS pgstack:postgres. A key
    is suspicious when its namespace is not ours but its name (or its namespace) is one of our
    keys, or its namespace is within two edits of the project's (`pgstak:postgres`).
    """
    ours = set(CONFIG_KEYS) | set(SECRET_KEYS)
    warnings = []
    for key in sorted(keys):
        namespace, colon, name = key.partition(":")
        if not colon:
            namespace, name = "", key
        if namespace in (PROJECT, *PROVIDER_NAMESPACES):
            continue
        head = closest_key(name.split(".", 1)[0], ours)
        if head is not None:
            meant = f"{PROJECT}:{head}"
        elif namespace and (inside := closest_key(namespace, ours)) is not None:
            meant = f"{PROJECT}:{inside} (with {name} inside the object)"
        elif namespace and edit_distance(namespace.lower(), PROJECT) <= 2:
            # Never a key the program would refuse in turn: the namespace is meant, the name is none of ours.
            meant = f"{PROJECT}:<key> ({name} is none of its keys: {', '.join(sorted(ours))})"
        else:
            continue
        where = f"namespace {namespace}" if namespace else "no namespace"
        warnings.append(
            f"config key {key} ({where}) is never read: this program reads only {PROJECT}:<key>. "
            f"Did you mean {meant}? In the stack file write it under config: as {PROJECT}:<key> (or the bare key)"
        )
    return warnings


# Pulumi.yaml turns these on for every stack: off, Secret and ConfigMap content is replace-only in
# pulumi-kubernetes (provider/pkg/provider/diff.go), and a password rotation is refused on a protected
# stack (README "Changing a live stack"). The provider reads "true" only (provider.go, Configure).
REQUIRED_PROVIDER_FLAGS = ("kubernetes:enableSecretMutable", "kubernetes:enableConfigMapMutable")


def provider_flag_error(values: dict[str, str]) -> str | None:
    """A stack that turns a required provider flag off, as one line naming the key, the value and the form."""
    for key in REQUIRED_PROVIDER_FLAGS:
        value = values.get(key)
        if value is not None and value.strip().lower() != "true":
            return (
                f"invalid configuration:\n  {key}: {value!r}; expected true (set in Pulumi.yaml for every stack: "
                "remove it from the stack file). Off, a password rotation or a new pgstack version is refused on a protected stack"
            )
    return None


def ignored_settings_warnings(settings: Settings) -> list[str]:
    """Settings a stack wrote that this configuration never applies, and that are harmless enough to only warn
    about (an existingClass with Longhorn class settings is refused instead: Settings)."""
    longhorn = settings.longhorn
    ignored = [] if longhorn.install else _explicit(longhorn, LONGHORN_INSTALL_ONLY)
    if not ignored:
        return []
    return [
        f"{PROJECT}:{', '.join('longhorn.' + f for f in ignored)}: never applied while longhorn.install is false (this "
        "stack does not install Longhorn); set them on the stack that installs it, and remove them here"
    ]


def end_of_life_warning(settings: Settings, today: date) -> str | None:
    """A supported major past its end of life still deploys, with a warning naming the date."""
    major = settings.postgres.image.major
    ended = PG_END_OF_LIFE.get(major)
    if ended is None or today <= ended:
        return None
    return (
        f"{PROJECT}:postgres.image.tag {settings.postgres.image.tag}: PostgreSQL {major} reached end of life on "
        f"{ended.isoformat()} and gets no more fixes; plan a dump and restore into a newer major (README, Upgrade to a "
        "new PostgreSQL major)"
    )


def load_settings() -> Settings:
    """Read every top-level key from the stack's config and validate it."""
    config = pulumi.Config(PROJECT)
    known = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    for warning in unread_config_keys(known):
        pulumi.log.warn(warning)
    provider = {key: pulumi.Config(key.split(":")[0]).get(key.split(":")[1]) for key in REQUIRED_PROVIDER_FLAGS}
    flags = provider_flag_error({k: v for k, v in provider.items() if v is not None})
    if flags:
        raise ConfigError(flags)
    allowed = set(CONFIG_KEYS) | set(SECRET_KEYS)
    unknown = sorted(k for k in known if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] not in allowed)
    if unknown:
        name = unknown[0].split(":", 1)[1]
        meant = closest_key(name, allowed)
        hint = f"did you mean {PROJECT}:{meant}?{_case_note(name, meant)}" if meant else f"expected one of {', '.join(sorted(allowed))}"
        raise ConfigError(f"invalid configuration:\n  {unknown[0]}: unknown key; {hint}")
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        text = config.get(key)
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raw[key] = text  # a bare string such as the namespace name
    settings = parse_settings(raw, pulumi.get_stack())
    for late in [*ignored_settings_warnings(settings), end_of_life_warning(settings, date.today())]:
        if late:
            pulumi.log.warn(late)
    return settings
