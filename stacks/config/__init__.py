"""Typed, validated stack settings: a package by concern.

Every key lives under the project namespace as an object (``pgstack:postgres``,
``pgstack:storage``, ...). Each object is validated by a pydantic model with
``extra="forbid"`` and strict types, so a typo or a wrong type fails at preview
time with one message naming the key, the value and the accepted form, before
any resource is registered.

Values are checked the way the cluster will check them: quantities with the API
server's grammar, names for every kind of object they become, label keys and
values with the Kubernetes rules, CIDRs with ``ipaddress``, image repositories
with the OCI reference grammar; then the settings are turned into the components' Args,
whose own checks (the cross-field rules Longhorn's webhooks and the image enforce) refuse
a bad combination under the YAML key it came from. Every "such as" in a message lists values (as JSON, which YAML
reads the same way) that the same key accepts; tests/stacks/test_config.py parses them.

    errors.py    ConfigError, the message pieces, did-you-mean
    majors.py    PostgreSQL end-of-life calendar, supported majors, known image digests
    names.py     DNS labels, identifiers, the length of every name derived from postgres.name
    formats.py   field types: quantities, schedules, labels, CIDRs, image references; the base model
    schema.py    what a stack can set: Settings, storage, Longhorn, backups (postgres.py: the postgres: block;
                 metrics.py: the metrics: block; tls.py: the tls: block)
    runbooks.py  the names the runbooks rely on (Longhorn release, uninstall confirmation)
    secrets.py   secret config models and parse_secrets
    contract.py  the components' rules on the Args the stack would build (stacks/args.py), each refusal
                 said under its YAML key: the cross-field rules live in the Args only
    parse.py     raw config -> Settings with one line per bad key; unread keys, provider flags, warnings
    load.py      the only module that reads pulumi.Config (load_settings, load_secrets); not re-exported here
"""

from components.postgres_args import MIN_STORAGE
from stacks.config.errors import PROJECT, ConfigError, closest_key, edit_distance, such_as
from stacks.config.formats import (
    Cidr,
    CpuQuantity,
    DnsName,
    DnsSubdomain,
    MemoryQuantity,
    NamespaceLabels,
    NamespaceName,
    PgIdentifier,
    PodLabels,
    Schedule,
    ShmQuantity,
    StorageSize,
    quantity_fixes,
)
from stacks.config.majors import ALPINE_UID, KNOWN_DIGESTS, PG_END_OF_LIFE, POD_UID, SUPPORTED_PG_MAJORS, tag_names_version
from stacks.config.metrics import ExporterImageSettings, MetricsSettings
from stacks.config.names import dns_label
from stacks.config.parse import (
    PROVIDER_NAMESPACES,
    REQUIRED_PROVIDER_FLAGS,
    end_of_life_warning,
    ignored_settings_warnings,
    parse_settings,
    provider_flag_error,
    unread_config_keys,
)
from stacks.config.postgres import (
    ClientPeer,
    DnsSettings,
    ImageSettings,
    NetworkPolicySettings,
    NodeCapacity,
    PostgresSettings,
    ReplicationSettings,
    ResourceAmounts,
    ResourceSettings,
    ServiceSettings,
)
from stacks.config.runbooks import BACKUP_TARGET_SECRET, LONGHORN_RELEASE, uninstall_confirmation
from stacks.config.schema import (
    CONFIG_KEYS,
    LONGHORN_CLASS_ONLY,
    LONGHORN_INSTALL_ONLY,
    SYSTEM_NAMESPACES,
    BackupSettings,
    DumpSettings,
    LonghornJob,
    LonghornSettings,
    Settings,
    StorageSettings,
    adoptable,
    check_runbook_keys,
)
from stacks.config.secrets import (
    LONGHORN_CREDENTIAL_KEYS,
    SECRET_FORMS,
    SECRET_KEYS,
    SECRET_UNKNOWN,
    BackupTargetSecret,
    DumpS3Secret,
    Secrets,
    parse_secrets,
)
from stacks.config.tls import CertManagerSettings, IssuerRefSettings, TlsSettings

__all__ = [
    "ALPINE_UID",
    "BACKUP_TARGET_SECRET",
    "CONFIG_KEYS",
    "KNOWN_DIGESTS",
    "LONGHORN_CLASS_ONLY",
    "LONGHORN_CREDENTIAL_KEYS",
    "LONGHORN_INSTALL_ONLY",
    "LONGHORN_RELEASE",
    "MIN_STORAGE",
    "PG_END_OF_LIFE",
    "POD_UID",
    "PROJECT",
    "PROVIDER_NAMESPACES",
    "REQUIRED_PROVIDER_FLAGS",
    "SECRET_FORMS",
    "SECRET_KEYS",
    "SECRET_UNKNOWN",
    "SUPPORTED_PG_MAJORS",
    "SYSTEM_NAMESPACES",
    "BackupSettings",
    "BackupTargetSecret",
    "CertManagerSettings",
    "Cidr",
    "ClientPeer",
    "ConfigError",
    "CpuQuantity",
    "DnsName",
    "DnsSettings",
    "DnsSubdomain",
    "DumpS3Secret",
    "DumpSettings",
    "ExporterImageSettings",
    "ImageSettings",
    "IssuerRefSettings",
    "LonghornJob",
    "LonghornSettings",
    "MemoryQuantity",
    "MetricsSettings",
    "NamespaceLabels",
    "NamespaceName",
    "NetworkPolicySettings",
    "NodeCapacity",
    "PgIdentifier",
    "PodLabels",
    "PostgresSettings",
    "ReplicationSettings",
    "ResourceAmounts",
    "ResourceSettings",
    "Schedule",
    "Secrets",
    "ServiceSettings",
    "Settings",
    "ShmQuantity",
    "StorageSettings",
    "StorageSize",
    "TlsSettings",
    "adoptable",
    "check_runbook_keys",
    "closest_key",
    "dns_label",
    "edit_distance",
    "end_of_life_warning",
    "ignored_settings_warnings",
    "parse_secrets",
    "parse_settings",
    "provider_flag_error",
    "quantity_fixes",
    "such_as",
    "tag_names_version",
    "uninstall_confirmation",
    "unread_config_keys",
]
