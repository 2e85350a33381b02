"""Offline render: run the program for a stack under Pulumi's mocks and write its Kubernetes objects.

No cluster and no Pulumi CLI are needed. Reviewers and scanners (kubernetes-validate,
checkov) read the YAML this writes; the tests use the same runner to inspect the
resource graph. Secret values are never written: Secret data is replaced by a
placeholder, and generated passwords are random per run.

    python -m stacks.render dev            # writes rendered/dev/*.yaml
    python -m stacks.render prod --out /tmp/prod

Objects created by the Longhorn Helm chart are Helm's, not ours: the render lists
the Release itself (chart, version, values) in helm/release-*.yaml for review.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import secrets
import string
import sys
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


# ------------------------------------------------------------------ config


def project_defaults() -> dict[str, Any]:
    """Project-level config from Pulumi.yaml: the CLI applies these, mocks do not."""
    project = yaml.safe_load(PROJECT_FILE.read_text())
    out: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        if isinstance(decl, dict) and "value" in decl:
            out[key] = decl["value"]
        elif isinstance(decl, dict) and "default" in decl:
            out[key] = decl["default"]
        else:
            out[key] = decl
    return out


def stack_config(stack: str) -> dict[str, Any]:
    """Config values as `pulumi up` would see them for a stack: project values overlaid by the stack file."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}")
    return project_defaults() | ((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def stacks() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


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


def render(stack: str, out_dir: Path) -> list[Path]:
    """Write one YAML file per object (and per Helm release) and return their paths."""
    run = run_program(stack_config(stack), stack=stack)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("*.yaml"), *out_dir.glob("helm/*.yaml")]:
        old.unlink()
    written = []
    for obj in kubernetes_objects(run):
        meta = obj.get("metadata") or {}
        path = out_dir / f"{obj['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta['name']}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
    for release in helm_releases(run):
        (out_dir / "helm").mkdir(exist_ok=True)
        path = out_dir / "helm" / f"release-{release['name']}.yaml"
        path.write_text("# Helm release (rendered by Helm at deploy time, not here)\n" + yaml.safe_dump(release, sort_keys=False))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", choices=stacks())
    parser.add_argument("--out", type=Path, help="output directory (default rendered/<stack>)")
    ns = parser.parse_args(argv)
    try:
        written = render(ns.stack, ns.out or ROOT / "rendered" / ns.stack)
    except pulumi.RunError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
