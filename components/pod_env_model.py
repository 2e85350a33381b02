"""The pod env contract's model: an environment variable (``EnvVar``) and a contract (``EnvContract``),
the environment of one kind of container and the entry scripts it runs, with the checks a declaration
must pass. components/pod_env_contract.py declares the contracts with them (its docstring says how the
scripts apply them).

Pure Python: nothing here needs pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from components.pod_env_formats import Format

V = TypeVar("V")

#: The generated file's name in the scripts ConfigMap (components/pod_env_contract_sh.py).
ENV_CONTRACT_FILE = "env-contract.sh"

_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SCRIPT_RE = re.compile(r"^[a-z][a-z0-9-]*\.sh$")


class UndeclaredVariableError(ValueError):
    """An environment variable that its contract does not declare."""


@dataclass(frozen=True)
class EnvVar:
    """One environment variable of a contract."""

    name: str
    #: What it means, one line (rendered as a comment into env-contract.sh).
    meaning: str
    #: The value it takes when unset or empty; None: required (unset or empty stops the script).
    default: str | None = None
    #: What a value must look like (checked by env-contract.sh); an empty default allows empty.
    format: Format | None = None
    #: The pod spec sets it. False: left to its default (a tuning knob the tests set, libpq's own).
    set_by_pod: bool = True
    #: Set from the downward API (e.g. metadata.name) instead of a value.
    field_path: str | None = None
    #: The entry scripts that read it; None: every script of the contract; (): none (set for
    #: people and tools in the pod, not for the scripts).
    read_by: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def expected(self) -> str:
        """What the refusal of a bad value says is expected."""
        assert self.format is not None
        return f"empty or {self.format.expected}" if self.default == "" else self.format.expected


@dataclass(frozen=True)
class EnvContract:
    """The environment of one kind of container and the entry scripts it runs."""

    name: str
    #: Which container, for messages ("the database pods").
    container: str
    scripts: tuple[str, ...]
    variables: tuple[EnvVar, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for script in self.scripts:
            if not _SCRIPT_RE.match(script):
                raise ValueError(f"{self.name}: script name {script!r} is not a flat *.sh name")
        for v in self.variables:
            where = f"{self.name}.{v.name}"
            if not _NAME_RE.match(v.name):
                raise ValueError(f"{where}: not an environment variable name ([A-Z_][A-Z0-9_]*)")
            if v.name in seen:
                raise ValueError(f"{where}: declared twice")
            seen.add(v.name)
            if not v.meaning or "\n" in v.meaning:
                raise ValueError(f"{where}: the meaning must be one non-empty line")
            if v.default is not None and any(c in v.default for c in "\n\r\0"):
                raise ValueError(f"{where}: a default must be one line")
            if v.required and not v.set_by_pod:
                raise ValueError(f"{where}: a required variable must be set by the pod")
            if v.format is None and v.read_by != ():
                raise ValueError(f"{where}: a variable the scripts read needs a format")
            if v.format is not None and v.default and not re.search(v.format.regex, v.default):
                raise ValueError(f"{where}: the default {v.default!r} is not {v.format.expected}")
            if v.field_path is not None and not v.set_by_pod:
                raise ValueError(f"{where}: field_path needs set_by_pod")
            unknown = set(v.read_by or ()) - set(self.scripts)
            if unknown:
                raise ValueError(f"{where}: read_by names scripts outside {self.scripts}: {sorted(unknown)}")

    @property
    def names(self) -> frozenset[str]:
        """Every declared name."""
        return frozenset(v.name for v in self.variables)

    def pod_names(self) -> tuple[str, ...]:
        """The names the pod spec sets, in declaration order."""
        return tuple(v.name for v in self.variables if v.set_by_pod)

    def read_by(self, script: str) -> tuple[EnvVar, ...]:
        """The variables ``script`` reads, in declaration order."""
        if script not in self.scripts:
            raise ValueError(f"{script} is not a script of {self.name} ({', '.join(self.scripts)})")
        return tuple(v for v in self.variables if v.read_by is None or script in v.read_by)

    def required_by(self, script: str) -> tuple[str, ...]:
        """The variables without which ``script`` refuses to start."""
        return tuple(v.name for v in self.read_by(script) if v.required)

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse any name this contract does not declare."""
        undeclared = sorted(set(names) - self.names)
        if undeclared:
            raise UndeclaredVariableError(
                f"{', '.join(undeclared)}: not declared in components/pod_env_contract.py {self.name} "
                f"(the environment of {self.container}); declare it there first"
            )

    def pod_entries(self, values: Mapping[str, V]) -> list[tuple[EnvVar, V | None]]:
        """What the pod spec sets, in declaration order: each variable with its value from
        ``values``, or None for one set from the downward API (``EnvVar.field_path``).

        ``values`` must hold exactly the other ``set_by_pod`` variables.
        """
        self.check_names(values)
        wanted = {v.name for v in self.variables if v.set_by_pod and v.field_path is None}
        missing, extra = sorted(wanted - set(values)), sorted(set(values) - wanted)
        if missing or extra:
            raise ValueError(f"{self.name}: values lack {missing} and have {extra} that the pod spec does not set by value")
        return [(v, None if v.field_path else values[v.name]) for v in self.variables if v.set_by_pod]
