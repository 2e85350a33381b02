"""docs/configuration.md is generated from the config schema (tools/config_doc.py): it is current, it documents
every field, and every field has a description to document."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stacks.config import CONFIG_KEYS, SECRET_KEYS, Secrets, Settings
from tools.config_doc import COMMAND, DOC, escape, main, render

ROW = re.compile(r"^\| `([^`]+)` \| (.*?) \| (.*?) \| (.*) \|$", re.MULTILINE)


def rows() -> dict[str, tuple[str, str, str]]:
    """key -> (form, default, description), from the committed file."""
    return {key: (form, default, text) for key, form, default, text in ROW.findall(DOC.read_text())}


def models(hint: Any) -> list[type[BaseModel]]:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return [hint]
    return [m for arg in typing.get_args(hint) for m in models(arg)]


def fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, description) of every field below `model`: list items as key[].field. An object field without a
    docstring of its own is described by its model's docstring."""
    found = []
    for name, field in model.model_fields.items():
        nested = models(field.annotation)
        text = field.description or (nested[0].__doc__ if nested else None) or ""
        found.append((prefix + name, text.strip()))
        for m in nested:
            found += fields(m, prefix + name + ("[]." if typing.get_origin(field.annotation) is list else "."))
    return found


EVERY_FIELD = fields(Settings) + fields(Secrets)


def test_the_committed_reference_is_current() -> None:
    expected, committed = render(), DOC.read_text()
    if committed != expected:
        diff = difflib.unified_diff(committed.splitlines(), expected.splitlines(), "committed", "generated", lineterm="", n=1)
        pytest.fail(f"docs/configuration.md is stale: run {COMMAND}\n" + "\n".join(list(diff)[:40]))


def test_every_field_has_a_description() -> None:
    assert len({key for key, _ in EVERY_FIELD}) >= 75, "the walk found fewer fields than the schema has"
    assert [key for key, text in EVERY_FIELD if not text] == []


def test_the_reference_has_a_row_for_every_field_and_no_other() -> None:
    """A top-level object (pgstack:postgres) is a section, its description above the table of its fields."""
    keys = [key for key, _ in EVERY_FIELD]
    sections = {key for key in keys if "." not in key and any(k.startswith(key + ".") for k in keys)}
    assert sorted(rows()) == sorted(set(keys) - sections)
    text = DOC.read_text()
    for key, description in EVERY_FIELD:
        if key in sections:
            assert f"## pgstack:{key}" in text
            assert escape(" ".join(description.split())) in text


def test_each_top_level_key_and_secret_has_its_anchor() -> None:
    text = DOC.read_text()
    for key in (*CONFIG_KEYS, *SECRET_KEYS):
        assert f'<a id="{key}"></a>\n\n## pgstack:{key}' in text


def test_defaults_are_the_ones_the_program_applies() -> None:
    """Resources complete their defaults in a validator: the reference shows "1", not the "" the field starts at.
    A field of an object that is null by default shows its default once the object is set, or "required"."""
    found = rows()
    assert found["postgres.resources.requests.cpu"][1] == '`"1"`'
    assert found["postgres.resources.limits.cpu"][1] == '`"2"`'
    assert found["backup.dumps"][1] == "`null`"
    assert found["backup.dumps.schedule"][1] == '`"30 2 * * *"`'
    assert found["backup.snapshots.retain"][:2] == ("integer 1 to 100", "required")
    assert found["postgres.image.tag"][1] == '`"18.6"`'
    assert found["postgres.networkPolicy.allowFrom"][1] == '`[{"podLabels": {}, "namespaceLabels": null, "cidr": null}]`'


def test_forms_name_the_accepted_values() -> None:
    found = rows()
    assert found["storage.dataLocality"][0] == "`disabled` \\| `best-effort` \\| `strict-local`"
    assert found["postgres.storageSize"][0] == "[size, whole bytes, at least 100Mi](#quantity)"
    assert found["postgres.username"][0] == "[PostgreSQL identifier](#pg-identifier) or null"
    assert found["postgres.networkPolicy.dns.cidrs"][0] == "list of [CIDR](#cidr)"
    assert found["postgres.service.nodePort"][0] == "integer 30000 to 32767 or null"


def test_secret_keys_say_they_are_secret_and_how_to_set_them() -> None:
    text = DOC.read_text()
    for key in SECRET_KEYS:
        section = text.split(f'<a id="{key}"></a>', 1)[1].split("<a id=", 1)[0]
        assert f"## pgstack:{key} (secret)" in section
        assert f"pulumi config set --stack <stack> --secret --path '{key}." in section
    assert "--secret --path 'backupTarget.credentials.<KEY>' '<value>'" in text


def test_check_fails_on_a_stale_file_and_names_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "configuration.md"
    assert main(["--check", "--out", str(out)]) == 1  # missing
    out.write_text(render().replace("Longhorn replicas of each database volume.", "Something else."))
    assert main(["--check", "--out", str(out)]) == 1
    assert COMMAND in capsys.readouterr().err
    assert main(["--out", str(out)]) == 0
    assert out.read_text() == render()
    assert main(["--check", "--out", str(out)]) == 0


def test_prose_is_escaped_for_markdown_outside_code() -> None:
    assert escape("data-<name>-0, pg_* or a|b, `<kept> * |`") == "data-&lt;name>-0, pg_\\* or a\\|b, `<kept> * |`"
