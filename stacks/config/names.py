"""Names and identifiers: DNS labels, PostgreSQL identifiers, and the length of every name derived from
postgres.name (StatefulSets, pods, Services, CronJobs)."""

from __future__ import annotations

from pydantic import (
    AfterValidator,
)

from components.postgres_conf import MAX_REPLICAS
from components.postgres_names import (
    backup_job,
    claim_name,
    credentials_secret,
    headless_service,
    pod_name,
    read_only_service,
    scripts_config_map,
    standby_pod,
    standby_set,
)
from components.validation import DNS_1035_LABEL, DNS_1123_LABEL, DNS_1123_SUBDOMAIN, PG_IDENTIFIER
from stacks.config.errors import such_as

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


def dns_subdomain(value: str) -> str:
    if len(value) > 253 or not DNS_1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter "
            f"or digit, at most 253 characters, {such_as('longhorn-postgres', 'csi-disk')}"
        )
    return value


def pg_identifier(value: str) -> str:
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
        (backup_job(name), "the dump CronJob", _CRONJOB),
        (credentials_secret(name), "the credentials Secret", _SUBDOMAIN),
        (scripts_config_map(name), "the scripts ConfigMap", _SUBDOMAIN),
        (f"{name}-dumps", "the dumps PersistentVolumeClaim", _SUBDOMAIN),
        (f"{name}-dumps-s3", "the dump S3 Secret", _SUBDOMAIN),
        (claim_name(standby_pod(name, last)), "a data PersistentVolumeClaim", _SUBDOMAIN),
    ]


def postgres_name(value: str) -> str:
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
