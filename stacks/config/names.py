"""Names and identifiers: DNS labels, PostgreSQL identifiers, and postgres.name (whose length rule, for every
name derived from it, is the component's: components/postgres_names.py name_too_long)."""

from __future__ import annotations

from pydantic import (
    AfterValidator,
)

from components.postgres_conf import MAX_REPLICAS
from components.postgres_names import name_too_long
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


def postgres_name(value: str) -> str:
    if not DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            "a DNS-1035 label, because the name is also the Services' names (<name>, <name>-ro, <name>-hl): lowercase "
            f"letters, digits and '-', starting with a letter and ending with a letter or digit, {such_as('postgres', 'orders-db')}"
        )
    # The component's rule (components/postgres_names.py), checked here too so that the line names the key.
    too_long = name_too_long(value, MAX_REPLICAS)
    if too_long:
        raise ValueError(f"{too_long}; {such_as('postgres', 'orders-db')}")
    return value
