"""Offline render: run the program for a stack under Pulumi's mocks and write its Kubernetes objects.

No cluster and no Pulumi CLI are needed. Reviewers and scanners (kubernetes-validate,
checkov) read the YAML this writes; the tests use the same runner to inspect the
resource graph. Secret values are never written: Secret data is replaced by a
placeholder, and generated passwords are random per run.

    python -m stacks.render dev            # writes rendered/dev/*.yaml
    python -m stacks.render prod --out /tmp/prod

Objects created by the Longhorn Helm chart are Helm's, not ours: the render lists
the Release itself (chart, version, values) in helm/release-*.yaml for review.

The render never deletes a file it did not write. It writes only into a new or empty
directory, or into one it wrote before: that directory holds a marker file
(.pgstack-render) listing the files of the last render, and a new render replaces
exactly those. Any other non-empty directory (`--out .` among them) is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import runpy
import secrets
import string
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "Pulumi.yaml"
REDACTED = "<redacted>"
# Marks a directory the render owns, and lists the files it wrote there.
MARKER = ".pgstack-render"


# ------------------------------------------------------------------ config

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


def load_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error becomes one line naming the file, the line and the column."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        position = f", line {where.line + 1}, column {where.column + 1}" if where else ""
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise StackFileError(f"{_shown(path)}{position}: not valid YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{_shown(path)}: not valid YAML: {' '.join(str(exc).split())}") from None


def _shown(path: Path) -> str:
    """A path as the user would type it from the repository."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _namespaced(project: str, values: dict[str, Any]) -> dict[str, Any]:
    """Pulumi reads a config key without a namespace as the project's (`postgres:` is `pgstack:postgres`)."""
    return {(str(k) if ":" in str(k) else f"{project}:{k}"): v for k, v in values.items()}


def _project(root: Path) -> dict[str, Any]:
    project = load_yaml(root / "Pulumi.yaml")
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
    return _namespaced(project["name"], out)


def stack_settings(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """A stack file's `config:` block as Pulumi reads it. Warns (StackFileWarning) about the keys Pulumi ignores."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise MissingStackFileError(f"no stack file {_shown(path)}")
    content = load_yaml(path)
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
    return _namespaced(_project(root)["name"], config)


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """Config values as `pulumi up` would see them for a stack: project values overlaid by the stack file."""
    return project_defaults(root) | stack_settings(stack, root)


def as_pulumi_config(values: dict[str, Any]) -> dict[str, str]:
    """The engine hands objects to the program as JSON strings and strings as-is."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


# ------------------------------------------------------------------ mocks


@dataclass(frozen=True)
class Options:
    """The resource options the engine acts on when a stack changes (what mocks otherwise drop)."""

    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    dependencies: list[str]
    parent: str
    # Input property -> URNs its value came from (outputs of those resources).
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    options: Options = field(default_factory=lambda: Options())


@dataclass
class Run:
    """Everything one program run registered."""

    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    generated: list[str] = field(default_factory=list)  # every generated password value
    # Set: passwords are a function of (seed, name, inputs), so two runs of the same config
    # agree and a diff shows only what the config changed (stacks/changes.py).
    seed: str | None = None

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Registered:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_} named {name}")
        return found[0]


def fake_password(inputs: dict[str, Any], seed: str | None = None, name: str = "") -> str:
    """A value shaped like RandomPassword's result, so leaks are detectable by value.

    Random per call, or, with a seed, derived from the seed, the name and the inputs
    (keepers included): like the provider, the same inputs keep the same password.
    """
    alphabet = string.ascii_letters + string.digits + str(inputs.get("overrideSpecial") or "")
    length = int(inputs.get("length", 32))
    if seed is None:
        return "".join(secrets.choice(alphabet) for _ in range(length))
    digest = hashlib.sha256(json.dumps([seed, name, inputs], sort_keys=True, default=str).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in (digest * 2)[:length])


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, run: Run) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = fake_password(args.inputs, self.run.seed, args.name)
            self.run.generated.append(state["result"])
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _alias(alias: Any) -> str:
    """An alias as `urn` or as its spec's parentUrn::name (the parts our tests check)."""
    if alias.HasField("urn"):
        return str(alias.urn)
    spec = alias.spec
    # The SDK adds empty specs of its own (inherited from parents without aliases): skip them.
    return f"{spec.parentUrn}::{spec.name}" if spec.parentUrn or spec.name else ""


class RecordingMonitor(mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and dependencies."""

    def __init__(self, m: RecordingMocks, run: Run) -> None:
        super().__init__(m)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    dependencies=list(request.dependencies),
                    parent=request.parent,
                    property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                    options=Options(
                        protect=request.protect,
                        retain_on_delete=request.retainOnDelete,
                        delete_before_replace=request.deleteBeforeReplace,
                        ignore_changes=tuple(request.ignoreChanges),
                        replace_on_changes=tuple(request.replaceOnChanges),
                        aliases=tuple(a for a in map(_alias, request.aliases) if a),
                    ),
                )
            )
        return response


def run_pulumi(
    program: Callable[[], object],
    config: dict[str, Any] | None = None,
    stack: str = "test",
    run: Run | None = None,
    secret_keys: list[str] | None = None,
) -> Run:
    """Run a Pulumi program function under mocks (preview=False, so every apply runs)."""
    run = run if run is not None else Run()
    m = RecordingMocks(run)
    # A fresh root Stack per run: set_mocks reuses an existing one, with its outputs.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(m, project="pgstack", stack=stack, preview=False, monitor=RecordingMonitor(m, run))
    pulumi.runtime.set_all_config(as_pulumi_config(config or {}), secret_keys=secret_keys or [])

    def body() -> None:
        program()

    _sync_await(run_pulumi_func(body))
    root = pulumi.runtime.settings.get_root_resource()
    for key, value in (getattr(root, "outputs", None) or {}).items():
        out = pulumi.Output.from_input(value)
        run.outputs[key] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            run.secret_outputs.add(key)
    return run


def run_program(config: dict[str, Any], stack: str = "test", run: Run | None = None, secret_keys: list[str] | None = None) -> Run:
    """Run __main__.py once with this config, as `pulumi up` would for a stack."""
    sys.path.insert(0, str(ROOT))
    try:
        return run_pulumi(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"), config, stack, run, secret_keys)
    finally:
        sys.path.remove(str(ROOT))


# ------------------------------------------------------------------ manifests


def _api_version_kind(type_token: str) -> tuple[str, str]:
    # kubernetes:apps/v1:StatefulSet -> ("apps/v1", "StatefulSet"); core/v1 -> "v1".
    # A *Patch resource is a server-side apply of the object of the base kind.
    _, group_version, kind = type_token.split(":")
    return (group_version.removeprefix("core/"), kind.removesuffix("Patch"))


def _plain(value: Any) -> Any:
    """Strip secret wrappers and turn mock floats back into ints."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest(resource: Registered) -> dict[str, Any]:
    """The Kubernetes object a registered resource would create; Secret data redacted."""
    api_version, kind = _api_version_kind(resource.type)
    body = {k: _plain(v) for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
    if kind == "Secret":
        for key in ("stringData", "data"):
            if key in body:
                body[key] = {k: REDACTED for k in body[key]}
    return {"apiVersion": api_version, "kind": kind, **_sorted(body)}


def _sorted(value: Any) -> Any:
    """Stable key order (metadata first) so rendered files diff cleanly."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "metadata", k))
        return {k: _sorted(value[k]) for k in keys}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def kubernetes_objects(run: Run) -> list[dict[str, Any]]:
    return [manifest(r) for r in run.resources if r.type.startswith("kubernetes:") and not r.type.startswith("kubernetes:helm")]


def helm_releases(run: Run) -> list[dict[str, Any]]:
    return [{"name": r.name, **_plain(r.inputs)} for r in run.of_type("kubernetes:helm.sh/v3:Release")]


class OutputDirError(Exception):
    """An output directory the render will not write into (one line: which and why)."""


def _owned_files(out_dir: Path, root: Path = ROOT) -> list[Path]:
    """The files a previous render wrote into out_dir, from its marker. Refuses a directory the render
    does not own: one that is not empty and has no marker, or one that holds the project."""
    resolved = out_dir.resolve()
    for project in {ROOT, root.resolve()}:
        if resolved == project or resolved in project.parents:
            raise OutputDirError(f"refusing to write into {out_dir}: it holds the project (Pulumi.yaml and the stack files)")
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise OutputDirError(f"refusing to write into {out_dir}: it is not a directory")
    marker = out_dir / MARKER
    if not marker.is_file():
        if any(out_dir.iterdir()):
            raise OutputDirError(
                f"refusing to write into {out_dir}: it is not empty and was not written by the render "
                f"(no {MARKER}); choose a new or empty directory, or delete this one if it holds only an older render"
            )
        return []
    owned = []
    for line in marker.read_text().splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            path = out_dir / name
            # Only names the render itself writes (x.yaml, helm/x.yaml): never a path out of the directory.
            if not name.endswith(".yaml") or path.resolve().parent not in (resolved, resolved / "helm"):
                raise OutputDirError(f"refusing to write into {out_dir}: {MARKER} lists {name!r}, not a file the render writes")
            owned.append(path)
    return owned


def _write_marker(out_dir: Path, files: list[Path]) -> None:
    lines = ["# Written by python -m stacks.render. It owns this directory and replaces only the files listed here.", ""]
    lines += [str(f.relative_to(out_dir)) for f in files]
    tmp = out_dir / f"{MARKER}.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out_dir / MARKER)


def render(stack: str, out_dir: Path, root: Path = ROOT) -> list[Path]:
    """Write one YAML file per object (and per Helm release) and return their paths.

    Raises OutputDirError, before anything is written or deleted, for a directory the render does not own."""
    previous = _owned_files(out_dir, root)
    run = run_program(stack_config(stack, root), stack=stack)
    files: list[tuple[Path, str]] = []
    for obj in kubernetes_objects(run):
        meta = obj.get("metadata") or {}
        path = out_dir / f"{obj['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta['name']}.yaml"
        files.append((path, yaml.safe_dump(obj, sort_keys=False)))
    for release in helm_releases(run):
        path = out_dir / "helm" / f"release-{release['name']}.yaml"
        files.append((path, "# Helm release (rendered by Helm at deploy time, not here)\n" + yaml.safe_dump(release, sort_keys=False)))
    written = [path for path, _ in files]

    out_dir.mkdir(parents=True, exist_ok=True)
    # The marker first lists both renders' files, so an interrupted render still owns all of them.
    _write_marker(out_dir, [*previous, *(p for p in written if p not in previous)])
    for old in previous:
        if old not in written:
            old.unlink(missing_ok=True)
    for path, text in files:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    helm = out_dir / "helm"
    if helm.is_dir() and not any(helm.iterdir()):
        helm.rmdir()
    _write_marker(out_dir, written)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help=f"a stack with a Pulumi.<stack>.yaml ({', '.join(stacks())})")
    parser.add_argument("--out", type=Path, help="output directory (default rendered/<stack>); new, empty, or written by an earlier render")
    ns = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StackFileWarning)
        try:
            written = render(ns.stack, ns.out or ROOT / "rendered" / ns.stack)
        except (StackFileError, OutputDirError) as exc:
            _print_warnings(caught)
            known = f"; the stacks here: {', '.join(stacks()) or 'none'}" if isinstance(exc, MissingStackFileError) else ""
            print(f"render: {exc}{known}", file=sys.stderr)
            return 2
        except pulumi.RunError as exc:
            _print_warnings(caught)
            print(exc, file=sys.stderr)
            return 1
    _print_warnings(caught)
    for path in written:
        print(path)
    return 0


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
