"""Raw config to Settings: parse_settings turns pydantic's errors into one line per key, and the checks on
config the program never reads (unknown keys, provider flags, ignored settings, end of life)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import date
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ValidationError,
)

from stacks.config.contract import check_contract
from stacks.config.errors import PROJECT, ConfigError, FieldError, case_note, closest_key, edit_distance, error_line, show_value, such_as
from stacks.config.formats import explicit_fields
from stacks.config.majors import PG_END_OF_LIFE
from stacks.config.schema import CONFIG_KEYS, LONGHORN_INSTALL_ONLY, Settings
from stacks.config.secrets import SECRET_KEYS

_NOTHING = object()


def _describe(err: Any, prefix: str, unquoted: Any = _NOTHING) -> str:
    """One line for one pydantic error. unquoted: the value without its quotes when that is accepted there."""
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldError):
        return error_line(".".join([*loc, *([ctx_error.key] if ctx_error.key else [])]), ctx_error.value, ctx_error.accepted, prefix)
    value = err.get("input")
    if err["type"] == "missing":
        return f"{prefix}{'.'.join(loc)}: missing; this key is required here"
    if err["type"] in ("dict_type", "model_type", "model_attributes_type"):
        return error_line(".".join(loc), value, "an object (a YAML mapping)", prefix)
    if err["type"] == "extra_forbidden":
        meant = closest_key(str(err["loc"][-1]), _fields_at(err["loc"][:-1]))
        hint = "check the spelling against Pulumi.yaml"
        if meant:
            hint = f"did you mean {'.'.join([*loc[:-1], meant])}?" + case_note(loc[-1], meant)
        return f"{prefix}{'.'.join(loc)}: unknown key (value {show_value(value)}); {hint}"
    if err["type"] in _KINDS and isinstance(value, str):
        accepted = f"{_KINDS[err['type']]} without quotes (YAML reads quoted text as text)"
        return error_line(".".join(loc), value, accepted + (f", {such_as(unquoted)}" if unquoted is not _NOTHING else ""), prefix)
    if isinstance(ctx_error, ValueError):
        accepted = str(ctx_error)
    else:
        accepted = err["msg"].replace("Input should be ", "").replace("String should match pattern", "a string matching")
        if err["type"] in _NUMBER_BOUNDS:
            accepted = f"a number {accepted}"
    return error_line(".".join(loc), value, accepted, prefix)


_NUMBER_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
# Strict types: a quoted "2" or "true" in a stack file is text. What the key wanted, by pydantic error type.
_KINDS = {"int_type": "a whole number", "bool_type": "true or false", "float_type": "a number"}


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


def parse_settings(raw: dict[str, Any], stack: str | None = None) -> Settings:
    """Validate raw config objects (top-level key -> value) into Settings or raise ConfigError: first each
    key's type and form (the schema), then the components' own rules on the Args the stack would build.
    stack: the stack's name, which an armed Longhorn uninstall must confirm (check_runbook_keys)."""
    try:
        settings = Settings.model_validate(raw, context={"stack": stack})
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_describe(err, f"{PROJECT}:", _unquoted(raw, err, errors, stack)) for err in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    check_contract(settings)
    return settings


# ---------------------------------------------------------------- config the program never reads

# Namespaces whose keys belong to the providers this program uses (kubernetes:context,
# kubernetes:namespace, random:..., pulumi:tags): never ours, even when a name matches one of ours.
PROVIDER_NAMESPACES = ("kubernetes", "random", "pulumi")


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
# stack (docs/operations.md#changing-a-live-stack). The provider reads "true" only (provider.go, Configure).
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
    longhorn, warnings = settings.longhorn, []
    ignored = [] if longhorn.install else explicit_fields(longhorn, LONGHORN_INSTALL_ONLY)
    if ignored:
        warnings.append(
            f"{PROJECT}:{', '.join('longhorn.' + f for f in ignored)}: never applied while longhorn.install is false (this "
            "stack does not install Longhorn); set them on the stack that installs it, and remove them here"
        )
    # Compared with the defaults, not model_fields_set: Pulumi.yaml's value reaches every stack.
    if settings.postgres.engine != "cloudnative-pg" and settings.cnpg != type(settings.cnpg)():
        warnings.append(f"{PROJECT}:cnpg: never applied while postgres.engine is {settings.postgres.engine}; remove it here")
    return warnings


def end_of_life_warning(settings: Settings, today: date) -> str | None:
    """A supported major past its end of life still deploys, with a warning naming the date."""
    major = settings.postgres.image.major
    ended = PG_END_OF_LIFE.get(major)
    if ended is None or today <= ended:
        return None
    return (
        f"{PROJECT}:postgres.image.tag {settings.postgres.image.tag}: PostgreSQL {major} reached end of life on "
        f"{ended.isoformat()} and gets no more fixes; plan a dump and restore into a newer major "
        "(docs/operations.md#upgrade-major)"
    )
