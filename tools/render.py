"""Offline render: run the program for a stack under Pulumi's mocks and write its Kubernetes objects.

No cluster and no Pulumi CLI are needed. Reviewers and scanners (kubernetes-validate,
checkov) read the YAML this writes. The program runs through tools/mock_run.py, the
runner the tests use to inspect the resource graph. Secret values are never written: Secret data is replaced by a
placeholder, and generated passwords are random per run.

    python -m tools.render dev            # writes rendered/dev/*.yaml
    python -m tools.render prod --out /tmp/prod

Objects created by the Longhorn Helm chart are Helm's, not ours: the render lists
the Release itself (chart, version, values) in helm/release-*.yaml for review.

The render never deletes a file it did not write. It writes only into a new or empty
directory, or into one it wrote before: that directory holds a marker file
(.pgstack-render) listing the files of the last render, and a new render replaces
exactly those. Any other non-empty directory (`--out .` among them) is refused.

Before it writes, the render compares the stack with every other stack file (tools/collisions.py): names that
would collide on one cluster refuse the render when both stack files name the same kubernetes:context, and give a
warning when a cluster is unknown.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pulumi
import yaml

try:
    from tools.collisions import collisions
    from tools.mock_run import Registered, Run, plain, run_program
    from tools.stack_files import ROOT, MissingStackFileError, StackFileError, StackFileWarning, stack_config, stacks
except ModuleNotFoundError as missing:  # `python tools/render.py`: Python puts tools/, not the project, on the path
    if missing.name != "tools":
        raise
    sys.exit("render: run it as a module from the project directory: .venv/bin/python -m tools.render <stack>")

REDACTED = "<redacted>"
# Marks a directory the render owns, and lists the files it wrote there.
MARKER = ".pgstack-render"


# ------------------------------------------------------------------ manifests


def _api_version_kind(type_token: str) -> tuple[str, str]:
    # kubernetes:apps/v1:StatefulSet -> ("apps/v1", "StatefulSet"); core/v1 -> "v1".
    # A *Patch resource is a server-side apply of the object of the base kind.
    _, group_version, kind = type_token.split(":")
    return (group_version.removeprefix("core/"), kind.removesuffix("Patch"))


def manifest(resource: Registered) -> dict[str, Any]:
    """The Kubernetes object a registered resource would create; Secret data redacted."""
    api_version, kind = _api_version_kind(resource.type)
    body = {k: plain(v) for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
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
    return [{"name": r.name, **plain(r.inputs)} for r in run.of_type("kubernetes:helm.sh/v3:Release")]


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
        _check_creatable(out_dir)
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


def _check_creatable(out_dir: Path) -> None:
    """A directory that does not exist yet can be made: its nearest existing parent is a directory we may write."""
    parent = next(p for p in out_dir.absolute().parents if p.exists())
    if not parent.is_dir():
        raise OutputDirError(f"cannot write into {out_dir}: {parent} is a file, not a directory; choose a directory path for --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"cannot write into {out_dir}: {parent} is not writable by this user; choose a directory you can write")


def _write_marker(out_dir: Path, files: list[Path]) -> None:
    lines = ["# Written by python -m tools.render. It owns this directory and replaces only the files listed here.", ""]
    lines += [str(f.relative_to(out_dir)) for f in files]
    tmp = out_dir / f"{MARKER}.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out_dir / MARKER)


# libyaml's emitter when PyYAML has it: the same YAML, and most of a render's time with the pure-Python one.
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_DUMPER, sort_keys=False)


def render(stack: str, out_dir: Path, root: Path = ROOT) -> list[Path]:
    """Write one YAML file per object (and per Helm release) and return their paths.

    Raises OutputDirError, before anything is written or deleted, for a directory the render does not own or cannot
    make (a path under a file, a parent it may not write); and, as one line too, for a write the system refuses."""
    previous = _owned_files(out_dir, root)
    run = run_program(stack_config(stack, root), stack=stack)
    files: list[tuple[Path, str]] = []
    for obj in kubernetes_objects(run):
        meta = obj.get("metadata") or {}
        path = out_dir / f"{obj['kind'].lower()}-{meta.get('namespace', 'cluster')}-{meta['name']}.yaml"
        files.append((path, _dump(obj)))
    for release in helm_releases(run):
        path = out_dir / "helm" / f"release-{release['name']}.yaml"
        files.append((path, "# Helm release (rendered by Helm at deploy time, not here)\n" + _dump(release)))

    try:
        _write(out_dir, previous, files)
    except OSError as exc:  # a path the checks above could not foresee (/proc/x, a full disk)
        raise OutputDirError(f"cannot write into {out_dir}: {exc.strerror} ({exc.filename}); choose another directory for --out") from None
    return [path for path, _ in files]


def _write(out_dir: Path, previous: list[Path], files: list[tuple[Path, str]]) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help=f"a stack with a Pulumi.<stack>.yaml ({', '.join(stacks())})")
    parser.add_argument("--out", type=Path, help="output directory (default rendered/<stack>); new, empty, or written by an earlier render")
    ns = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StackFileWarning)
        try:
            errors, shared = collisions(ns.stack)
            if errors:
                _print_warnings(caught)
                for line in errors:
                    print(f"render: {line}", file=sys.stderr)
                return 2
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
    for line in shared:
        print(f"warning: {line}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
