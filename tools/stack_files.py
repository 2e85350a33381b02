"""Stack files, read as the Pulumi CLI reads them (no Pulumi import: the tools that only read config stay fast).

stacks()                  every stack with a Pulumi.<stack>.yaml (dotted names included)
stack_config(stack)       its config: Pulumi.yaml values overlaid by the stack file, keys namespaced
project_defaults(), stack_settings(stack), stack_file(stack), load_yaml(path), as_pulumi_config(values)
secret_config_keys(config)  the keys holding a stack file's `secure:` values (read as SECRET_UNKNOWN: no
                          passphrase here); tools/mock_run.py run_pulumi marks them secret, as the CLI does
StackFileError, MissingStackFileError (a bad or missing file, one line), StackFileWarning (ignored keys)
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from pathlib import Path
from typing import Any

import yaml

from stacks.config import SECRET_UNKNOWN

__all__ = [
    "PROJECT_FILE",
    "ROOT",
    "STACK_FILE_KEYS",
    "STACK_NAME",
    "MissingStackFileError",
    "StackFileError",
    "StackFileWarning",
    "as_pulumi_config",
    "load_yaml",
    "project_defaults",
    "secret_config_keys",
    "stack_config",
    "stack_file",
    "stack_settings",
    "stacks",
]

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "Pulumi.yaml"
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Pulumi's rule for stack names (local and cloud backends): ^[A-Za-z0-9_.-]{1,100}$.
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# The top-level keys Pulumi reads from a stack file (sdk/go/common/workspace/project.go, ProjectStack).
# It decodes the file without strict mode, so any other top-level key is dropped without a word.
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment", "mainEnvironment")


class StackFileError(ValueError):
    """A stack file that cannot be used, with a one-line message naming the file."""


class MissingStackFileError(StackFileError, FileNotFoundError):
    """No Pulumi.<stack>.yaml for the stack."""


class StackFileWarning(UserWarning):
    """Something in a stack file that Pulumi ignores."""


def stack_file(stack: str, root: Path = ROOT) -> Path:
    if not STACK_NAME.fullmatch(stack):
        raise StackFileError(f"{stack!r} is not a Pulumi stack name: letters, digits, '-', '_' and '.', at most 100")
    return root / f"Pulumi.{stack}.yaml"


def stacks(root: Path = ROOT) -> list[str]:
    """Every stack with a Pulumi.<stack>.yaml, dotted names included (Pulumi.eu.prod.yaml is stack eu.prod)."""
    names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
    return sorted(n for n in names if STACK_NAME.fullmatch(n))


# YAML as the Pulumi CLI reads a stack file, with gopkg.in/yaml.v3 (pulumi sdk/go/common/encoding/marshal.go:27
# and :115, used by workspace/loaders.go:181): a key twice in one mapping is an error (v3's decode.go "mapping key
# ... already defined at line"; unverified: no stored copy of v3), and a date-like scalar (2024-01-01) stays the
# text it is (go-yaml decode.go d.scalar: a timestamp decoded into interface{} is set as its string).


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the key {key_node.value} is given twice in one mapping (first at line {seen[key_node.value]}); keep one",
                key_node.start_mark,
            )
        seen[key_node.value] = key_node.start_mark.line + 1


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    _refuse_duplicate_keys(node)
    return loader.construct_mapping(node, deep=True)


def _timestamp_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _stack_file_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = type(f"StackFile{base.__name__}", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:map", _mapping)
    loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_text)
    return loader


_FAST_STACK_LOADER = _stack_file_loader(_FAST_LOADER)
_PURE_STACK_LOADER = _stack_file_loader(yaml.SafeLoader)


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StackFileError(
            f"{_shown(path)}, line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8, the encoding "
            "Pulumi reads YAML in"
        ) from None


def load_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error, a key given twice or text that is not UTF-8 becomes one line naming
    the file, the line and the column."""
    text = _text(path)
    try:
        # Each test reads the stack files again: parsed once per content, a copy per call.
        return copy.deepcopy(_parse(text))
    except yaml.YAMLError:
        pass
    # The pure-Python loader's messages, for the one line below.
    try:
        return yaml.load(text, Loader=_PURE_STACK_LOADER)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        position = f", line {where.line + 1}, column {where.column + 1}" if where else ""
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise StackFileError(f"{_shown(path)}{position}: not valid YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{_shown(path)}: not valid YAML: {' '.join(str(exc).split())}") from None


def _shared(path: Path) -> Any:
    """A YAML file's content as load_yaml reads it, without the copy: shared between calls, never to be changed
    (stack_config reads Pulumi.yaml and the stack file again for every test; copying the whole project file each
    time was most of that)."""
    text = _text(path)
    try:
        return _parse(text)
    except yaml.YAMLError:
        return load_yaml(path)  # raises the one-line error


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> Any:
    """YAML text parsed by libyaml when it is there (ten times faster than the pure-Python loader)."""
    return yaml.load(text, Loader=_FAST_STACK_LOADER)


def _shown(path: Path) -> str:
    """A path as the user would type it from the repository."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _namespaced(project: str, values: dict[str, Any]) -> dict[str, Any]:
    """Pulumi reads a config key without a namespace as the project's (`postgres:` is `pgstack:postgres`)."""
    return {(str(k) if ":" in str(k) else f"{project}:{k}"): v for k, v in values.items()}


def _project(root: Path) -> dict[str, Any]:
    """Pulumi.yaml, shared (read only)."""
    project = _shared(root / "Pulumi.yaml")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise StackFileError(f"{_shown(root / 'Pulumi.yaml')}: expected a project with a name")
    return project


def project_defaults(root: Path = ROOT) -> dict[str, Any]:
    """Project-level config from Pulumi.yaml: the CLI applies these, mocks do not."""
    project = _project(root)
    out: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        if isinstance(decl, dict) and "value" in decl:
            out[key] = decl["value"]
        elif isinstance(decl, dict) and "default" in decl:
            out[key] = decl["default"]
        else:
            out[key] = decl
    return _namespaced(project["name"], copy.deepcopy(out))


def _without_ciphertext(value: Any) -> Any:
    """A config value with each `secure:` value (a mapping of one key, secure, to a string: Pulumi's isSecureValue,
    sdk/go/common/resource/config/object.go:541) replaced by SECRET_UNKNOWN: set, but not readable without the
    stack's passphrase. `pulumi config set --secret --path a.b` writes one under a key, a top-level
    `pulumi config set --secret a` in place of the whole value."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("secure"), str):
            return SECRET_UNKNOWN
        return {k: _without_ciphertext(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ciphertext(v) for v in value]
    return value


def secret_config_keys(config: dict[str, Any]) -> list[str]:
    """The keys the CLI hands the program as secrets: those holding a `secure:` value anywhere inside. An object
    with one secure field is a secret as a whole (Pulumi's object.Secure and MarshalString, object.go:51 and :403;
    Map.SecureKeys, map.go:105, become the run's configSecretKeys, pkg/resource/deploy/source_eval.go:225)."""
    return sorted(k for k, v in config.items() if SECRET_UNKNOWN in json.dumps(v))


def stack_settings(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """A stack file's `config:` block as Pulumi reads it, `secure:` values as SECRET_UNKNOWN (secret_config_keys).
    Warns (StackFileWarning) about the keys Pulumi ignores."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise MissingStackFileError(f"no stack file {_shown(path)}")
    content = _shared(path)  # read only: _without_ciphertext below builds new mappings and lists
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise StackFileError(f"{_shown(path)}: expected a mapping with a config: block, got {type(content).__name__}")
    ignored = [str(k) for k in content if k not in STACK_FILE_KEYS]
    if ignored:
        hint = "" if "config" in content else "; with no config: block, every setting takes its Pulumi.yaml default"
        warnings.warn(
            f"{_shown(path)}: Pulumi ignores the top-level keys {', '.join(ignored)} (settings go under config:){hint}",
            StackFileWarning,
            stacklevel=2,
        )
    config = content.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(f"{_shown(path)}: config: must be a mapping of keys to values, got {type(config).__name__}")
    return _namespaced(_project(root)["name"], _without_ciphertext(config))


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """Config values as `pulumi up` would see them for a stack: project values overlaid by the stack file."""
    return project_defaults(root) | stack_settings(stack, root)


def as_pulumi_config(values: dict[str, Any]) -> dict[str, str]:
    """The engine hands objects to the program as JSON strings and strings as-is."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
