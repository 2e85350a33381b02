"""The only module that reads pulumi.Config: load_settings and load_secrets, for __main__.py."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pulumi

from stacks.config.errors import PROJECT, ConfigError, case_note, closest_key
from stacks.config.parse import (
    REQUIRED_PROVIDER_FLAGS,
    end_of_life_warning,
    ignored_settings_warnings,
    parse_settings,
    provider_flag_error,
    unread_config_keys,
)
from stacks.config.schema import CONFIG_KEYS, Settings
from stacks.config.secrets import SECRET_KEYS, SECRET_MODELS, SECRET_UNKNOWN, Secrets, parse_secrets, unknown_object


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
            raw[key] = unknown_object(SECRET_MODELS[key])
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"invalid configuration:\n  {full}: not an object; expected a YAML mapping (value hidden: secret)") from None
    return parse_secrets(raw, settings)


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
        hint = f"did you mean {PROJECT}:{meant}?{case_note(name, meant)}" if meant else f"expected one of {', '.join(sorted(allowed))}"
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
