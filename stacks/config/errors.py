"""ConfigError and the pieces every message is made of: the project prefix, "such as" examples, the
field error a validator raises, and the did-you-mean finder for a mistyped key."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

PROJECT = "pgstack"


class ConfigError(Exception):
    """Invalid stack configuration, one line per key. A plain exception, so the tools that read stack files
    import no Pulumi; __main__.py turns it into a pulumi.RunError, which Pulumi prints as the message alone."""


def such_as(*examples: Any) -> str:
    """'such as "1Gi", "20Gi" or 2': examples as JSON scalars, which a stack file's YAML reads the same way."""
    shown = [json.dumps(e) for e in examples]
    return "such as " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1])


# ---------------------------------------------------------------- errors


class FieldError(ValueError):
    """An error that knows which key (below the validated object; "" for the object itself) it is about."""

    def __init__(self, key: str, value: Any, accepted: str) -> None:
        super().__init__(accepted)
        self.key, self.value, self.accepted = key, value, accepted


# "No value" where None is a value a message could suggest (null).


def closest_key(name: str, known: Iterable[str]) -> str | None:
    """The known key a mistyped one most likely meant: the same in another case, else within two edits."""
    known = list(known)
    same = [k for k in known if k.lower() == name.lower()]
    if same:
        return same[0]
    near = sorted((edit_distance(name.lower(), k.lower()), k) for k in known)
    return near[0][1] if near and near[0][0] <= min(2, len(name) // 2) else None


def case_note(name: str, meant: str) -> str:
    return " (keys are case-sensitive)" if name.lower() == meant.lower() else ""


def error_line(key: str, value: Any, accepted: str, prefix: str) -> str:
    return f"{prefix}{key}: got {show_value(value)}; expected {accepted}"


def show_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict) else "an object"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]
