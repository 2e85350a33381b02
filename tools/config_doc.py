"""docs/configuration.md, generated from the config schema: every key a stack can set, its form, default and
description. The descriptions are the field docstrings in stacks/config/ (an object field without one: its model's
docstring); edit them there, then regenerate. tests/tools/test_config_doc.py fails while the file is stale.

    .venv/bin/python -m tools.config_doc           # writes docs/configuration.md
    .venv/bin/python -m tools.config_doc --check   # exits 1 when docs/configuration.md is not what the schema gives
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from components.cron import ACCEPTED_FORM
from components.postgres_args import MIN_STORAGE
from stacks.config import formats
from stacks.config.errors import PROJECT
from stacks.config.schema import Settings
from stacks.config.secrets import Secrets

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
COMMAND = ".venv/bin/python -m tools.config_doc"

# The named value forms: each field type of stacks/config/formats.py -> (its name in the form column, the anchor of
# its entry under "Value forms").
FORMS: list[tuple[object, str, str]] = [
    (formats.CpuQuantity, "CPU quantity", "quantity"),
    (formats.MemoryQuantity, "memory quantity, whole bytes", "quantity"),
    (formats.ShmQuantity, "memory quantity, whole bytes", "quantity"),
    (formats.StorageSize, f"size, whole bytes, at least {MIN_STORAGE}", "quantity"),
    (formats.Schedule, "cron schedule", "cron"),
    (formats.DnsName, "DNS-1123 label", "dns-label"),
    (formats.NamespaceName, "DNS-1123 label", "dns-label"),
    (formats.DnsSubdomain, "DNS-1123 subdomain", "dns-subdomain"),
    (formats.PgIdentifier, "PostgreSQL identifier", "pg-identifier"),
    (formats.PodLabels, "labels", "labels"),
    (formats.NamespaceLabels, "labels", "labels"),
    (formats.Cidr, "CIDR", "cidr"),
]

# anchor -> (title, what it accepts), in the order the section lists them.
FORM_TEXTS: dict[str, tuple[str, str]] = {
    "quantity": (
        "Quantity",
        "A Kubernetes quantity as the API server reads it: a number and an optional suffix, written without spaces; "
        "suffixes are Ki Mi Gi Ti Pi Ei (powers of 1024), n u m k M G T P E (powers of 1000) or an exponent (e6), no B "
        'or unit words. A plain number is accepted too (`cpu: 2`, `memory: 1073741824`). Such as `"500m"`, `"1.5"`, '
        '`"1Gi"`. Memory and sizes are whole bytes (`m` means thousandths, not mega).',
    ),
    "cron": ("Cron schedule", ACCEPTED_FORM[0].upper() + ACCEPTED_FORM[1:] + '. Such as `"0 3 * * *"`, `"@daily"`.'),
    "dns-label": (
        "DNS-1123 label",
        "At most 63 lowercase letters, digits and '-', starting and ending with a letter or digit. Such as `postgres-prod`.",
    ),
    "dns-subdomain": (
        "DNS-1123 subdomain",
        "At most 253 characters: lowercase letters, digits, '-' and '.', each part between dots starting and ending "
        "with a letter or digit. Such as `longhorn-postgres`.",
    ),
    "pg-identifier": (
        "PostgreSQL identifier",
        "Lowercase letters, digits and '_', not starting with a digit, at most 63 characters. Such as `billing_app`.",
    ),
    "labels": (
        "Labels",
        "A map of label keys to values, with the Kubernetes rules: a key is an optional DNS-1123 subdomain prefix and "
        "'/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit; a "
        'value is empty or such a name. Such as `{"app.kubernetes.io/name": "orders-api"}`.',
    ),
    "cidr": (
        "CIDR",
        "An IPv4 or IPv6 network with its prefix length, written as its network address (no host bits set). Such as "
        "`10.0.0.0/8`, `fd00::/8`.",
    ),
}


@dataclass(frozen=True)
class Row:
    key: str
    form: str
    default: str
    description: str


REQUIRED = object()  # a field without a default: the stack must set it once it sets the object


def model_doc(model: type[BaseModel]) -> str:
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


def models_in(hint: Any) -> list[type[BaseModel]]:
    """The models a field holds: itself, inside an Optional or as list items."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return [hint]
    if typing.get_origin(hint) is typing.Annotated:
        return []
    return [m for arg in typing.get_args(hint) for m in models_in(arg)]


def description(field: FieldInfo, hint: Any) -> str:
    """The field's docstring, else (an object field) its model's docstring."""
    if field.description:
        return " ".join(field.description.split())
    models = models_in(hint)
    return model_doc(models[0]) if models else ""


def form(hint: Any, field: FieldInfo | None = None) -> str:
    """What a value of this type looks like, as the form column shows it."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return form(inner[0], field) + " or null"
    for alias, name, anchor in FORMS:
        if hint == alias:
            return f"[{name}](#{anchor})"
    if typing.get_origin(hint) is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if typing.get_origin(hint) is list:
        return "list of " + ("objects" if models_in(args[0]) else "strings" if args[0] is str else form(args[0]))
    if typing.get_origin(hint) is dict:
        return "map of strings"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return "object"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer" + bounds(field)
    return "string"


def bounds(field: FieldInfo | None) -> str:
    metadata = field.metadata if field else []
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    if low is not None and high is not None:
        return f" {low} to {high}"
    return f", at least {low}" if low is not None else ""


def default_instance(model: type[BaseModel]) -> BaseModel | None:
    """The model with every field at its default; None when a field is required."""
    try:
        return model()
    except ValidationError:
        return None


def default_text(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if isinstance(value, BaseModel):
        return "fields below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [item.model_dump(mode="json") for item in value]
    return f"`{json.dumps(value)}`"


def rows(model: type[BaseModel], instance: BaseModel | None, prefix: str) -> list[Row]:
    """A row per field of `model`, then its nested fields. Defaults are read from `instance` (the defaults as
    the program completes them, resources included), else from the field: the defaults of an object the stack
    leaves null once it sets it."""
    hints = typing.get_type_hints(model, include_extras=True)
    found = []
    for name, field in model.model_fields.items():
        hint, key = hints[name], prefix + name
        if instance is not None:
            value = getattr(instance, name)
        else:
            value = REQUIRED if field.is_required() else field.get_default(call_default_factory=True)
        found.append(Row(key, form(hint, field), default_text(value), description(field, hint)))
        for nested in models_in(hint):
            is_list = typing.get_origin(hint) is list
            child = value if isinstance(value, nested) else default_instance(nested)
            found += rows(nested, child, key + ("[]." if is_list else "."))
    return found


def escape(text: str) -> str:
    """Prose for Markdown: outside `code`, '<' and '*' escaped (a tag, or emphasis, to a renderer), and '|' (a table
    cell's end)."""
    parts = text.split("`")
    parts[::2] = [p.replace("<", "&lt;").replace("*", "\\*").replace("|", "\\|") for p in parts[::2]]
    return "`".join(parts)


def table(found: list[Row]) -> list[str]:
    lines = ["| key | form | default | description |", "|---|---|---|---|"]
    return lines + [f"| `{r.key}` | {r.form} | {r.default} | {escape(r.description)} |" for r in found]


@dataclass(frozen=True)
class Section:
    key: str  # the top-level key, also the section's anchor
    title: str
    lines: list[str]


def section(key: str, title: str, intro: list[str], found: list[Row]) -> Section:
    return Section(key, title, [f'<a id="{key}"></a>', "", f"## {title}", "", *intro, *table(found), ""])


def setting_sections() -> list[Section]:
    """One section per top-level key: an object's fields in a table under its description, a plain value in a
    table of one row."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    every = rows(Settings, Settings(), "")
    found = []
    for key, field in Settings.model_fields.items():
        below = [r for r in every if r.key.startswith(key + ".")]
        intro = [escape(description(field, hints[key])), ""] if below else []
        found.append(section(key, f"{PROJECT}:{key}", intro, below or [r for r in every if r.key == key]))
    return found


def secret_sections() -> list[Section]:
    found = []
    for key, field in Secrets.model_fields.items():
        (model,) = models_in(field.annotation)
        below = rows(model, None, key + ".")
        maps = {name for name, f in model.model_fields.items() if typing.get_origin(f.annotation) is dict}
        paths = [f"{key}.{name}" + (".<KEY>" if name in maps else "") for name in model.model_fields]
        commands = [f"pulumi config set --stack <stack> --secret --path '{path}' '<value>'" for path in paths]
        intro = [
            escape(description(field, field.annotation)),
            "",
            "**Secret.** Set each field with `pulumi config set --secret --path`: Pulumi keeps it encrypted in the stack "
            "file (`{secure: v1:...}`), never in plain text and never in `Pulumi.yaml`. Offline (the render, the tests) a "
            "secure value counts as set, its value unknown.",
            "",
            "```bash",
            *commands,
            "```",
            "",
        ]
        found.append(section(key, f"{PROJECT}:{key} (secret)", intro, below))
    return found


def forms_section() -> list[str]:
    lines = ['<a id="value-forms"></a>', "", "## Value forms", ""]
    for anchor, (title, text) in FORM_TEXTS.items():
        lines += [f'<a id="{anchor}"></a>', "", f"### {title}", "", escape(text), ""]
    return lines


HEADER = f"""# Configuration reference

<!-- Generated from the field docstrings in stacks/config/ (schema.py, postgres.py, secrets.py): edit those, then run
`{COMMAND}`. -->

Every key a stack can set, with its form, its default and what it does. Every key is under the project namespace
`{PROJECT}:` (in a stack file a bare `postgres:` is `{PROJECT}:postgres` too). Most keys are objects: a stack lists
only the fields it changes, and every other field keeps its default (the same defaults as `Pulumi.yaml`, which fit
a small lab cluster). A bad value stops `pulumi preview` before anything is registered, with one line naming the
key, the value given and the form accepted ([Configuration](operations.md#configuration)).
"""


def render() -> str:
    sections = [*setting_sections(), *secret_sections()]
    contents = ["Contents:", "", *(f"- [{s.title}](#{s.key})" for s in sections), "- [Value forms](#value-forms)"]
    contents += [f"  - [{title}](#{anchor})" for anchor, (title, _) in FORM_TEXTS.items()]
    body = [line for s in sections for line in s.lines] + forms_section()
    return "\n".join([HEADER, *contents, "", *body]).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.config_doc", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from the schema's")
    parser.add_argument("--out", type=Path, default=DOC, help="the file to write or check (default: docs/configuration.md)")
    args = parser.parse_args(argv)
    text = render()
    current = args.out.read_text() if args.out.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.out} is stale: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
