"""Restore a stack's database to a point in time (bin/restore-pitr; docs/backups.md#restore-to-a-point-in-time).

    bin/restore-pitr <stack> (--time TS | --lsn X/Y | --latest) --into <new stack> [--apply] [--context CTX]
    bin/restore-pitr <stack> (--time TS | --lsn X/Y | --latest) --same-stack --confirm '<sentence>' [--apply] [--context CTX]

It prints the steps, and with --apply runs them, stopping at the first that fails:

1. the range check: wal-pitr.sh --check in the source's primary pod says whether the archive holds the target
   (a base backup that ended before it, WAL up to it) and names the available range when not;
2. ``pulumi config set --path`` lines writing pgstack:backup.wal.restoreFrom (target: the source's archive,
   and the time, LSN or latest) into the NEW stack's file;
3. ``pulumi up`` on the new stack: its primary bootstraps from the archive (wal-pitr.sh in init), replays to the
   target and promotes. The source stack, its volumes and its archive are only read.

The same stack is never restored in place: its claims hold the only copy of the newest data. ``--same-stack``
restores into the scratch stack ``<stack>-pitr`` first (its own namespace, new volumes) and, once that server is
up and checked, prints the copy back with the dump runbook; it needs the confirmation sentence
(``same_stack_confirmation``), as longhorn.uninstallConfirmation does (stacks/config/runbooks.py).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.postgres_names import primary_pod_name
from components.postgres_pod import SCRIPTS_MOUNT
from stacks.config import PROJECT, ConfigError, parse_settings
from stacks.config.cnpg import CNPG
from tools.stack_files import ROOT, StackFileError, stack_config

PROG = "bin/restore-pitr"
LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
# A time as wal-pitr.sh reads it (GNU date): digits, separators, a zone; quoted into shell lines, so no quotes.
TIME = re.compile(r"[0-9][0-9 :+.TZ-]{9,40}")
SCRATCH_SUFFIX = "-pitr"


class RestoreError(Exception):
    """A refusal: the message says what and how to proceed."""


@dataclass(frozen=True)
class Source:
    stack: str
    namespace: str
    primary: str
    archive: str  # backup.wal.s3Remote: bucket/prefix
    context: str


def same_stack_confirmation(stack: str, namespace: str, target: str) -> str:
    """The sentence --confirm must hold: it names the stack, its namespace and the target, so a sentence copied
    from another run or stack does not match."""
    return f"{stack}: restore {namespace} to {target} through {stack}{SCRATCH_SUFFIX}; keep the old volumes until I delete them"


def target_flag(args: argparse.Namespace) -> tuple[str, str]:
    """(restoreFrom key, value) and the wal-pitr.sh arguments come from this; one of the three is required."""
    if args.time is not None:
        if not TIME.fullmatch(args.time):
            raise RestoreError(f"--time {args.time!r}: expected a time such as '2026-12-06 02:03:04+00' (a zone; none: UTC)")
        return "time", args.time
    if args.lsn is not None:
        if not LSN.fullmatch(args.lsn):
            raise RestoreError(f"--lsn {args.lsn!r}: expected a WAL position X/Y in upper-case hex, such as 0/3000148")
        return "lsn", args.lsn
    return "latest", "true"


def _settings(values: dict[str, Any]) -> Any:
    """The stack's validated settings for its names; backup.wal is read raw (_wal), so it is left out here."""
    prefix = f"{PROJECT}:"
    config = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    if isinstance(config.get("backup"), dict):
        config["backup"] = {k: v for k, v in config["backup"].items() if k != "wal"}
    return parse_settings(config)


def _wal(values: dict[str, Any]) -> dict[str, Any]:
    backup = values.get(f"{PROJECT}:backup")
    wal = backup.get("wal") if isinstance(backup, dict) else None
    return wal if isinstance(wal, dict) else {}


def _archive(stack: str, values: dict[str, Any]) -> str:
    remote = _wal(values).get("s3Remote")
    if not isinstance(remote, str) or not remote:
        raise RestoreError(f"stack {stack} has no WAL archive ({PROJECT}:backup.wal.s3Remote): there is nothing to restore from")
    return remote


def load_source(stack: str, context_flag: str | None = None, root: Path = ROOT) -> Source:
    values = stack_config(stack, root)
    settings = _settings(values)
    pg = settings.postgres
    if pg.engine == CNPG:
        # wal-pitr.sh and restoreFrom are the StatefulSet engine's; the operator archives through the Barman Cloud plugin.
        raise RestoreError(
            f"stack {stack} runs {PROJECT}:postgres.engine cloudnative-pg: its archive is the Barman Cloud plugin's, which "
            "this command does not restore from (restoreFrom is not built on that engine yet: docs/operations.md#cloudnative-pg)"
        )
    context = values.get("kubernetes:context")
    return Source(
        stack=stack,
        namespace=settings.namespace,
        primary=primary_pod_name(pg.name, pg.replication.primary),
        archive=_archive(stack, values),
        context=context_flag or (context if isinstance(context, str) else ""),
    )


def check_new_stack(source: Source, new: str, root: Path = ROOT) -> None:
    """The new stack's file exists, and shares neither the namespace nor the archive with the source."""
    if new == source.stack:
        raise RestoreError(f"--into {new} is the source stack: use --same-stack, which never restores in place")
    try:
        values = stack_config(new, root)
    except FileNotFoundError as exc:
        raise RestoreError(
            f"no stack file Pulumi.{new}.yaml: copy Pulumi.{source.stack}.yaml, give it its own {PROJECT}:namespace and "
            f"{PROJECT}:backup.wal.s3Remote, then `pulumi stack init {new}`"
        ) from exc
    namespace = _settings(values).namespace
    if namespace == source.namespace:
        raise RestoreError(f"stack {new} uses namespace {namespace} too: its objects would collide with {source.stack}'s; give it its own")
    if _wal(values).get("s3Remote") == source.archive:
        raise RestoreError(
            f"stack {new} archives to {source.archive}, the archive it restores from: give it its own backup.wal.s3Remote "
            "(a second primary writing there would mix two histories)"
        )


def plan(source: Source, new: str, key: str, value: str) -> list[list[str]]:
    """The commands, in order: the range check in the source's primary, the new stack's restoreFrom, pulumi up."""
    kube = ["kubectl", *(["--context", source.context] if source.context else []), "-n", source.namespace]
    pitr_args = [f"--{key}", value] if key != "latest" else ["--latest"]
    check = [*kube, "exec", source.primary, "-c", "postgres", "--", f"{SCRIPTS_MOUNT}/wal-pitr.sh", "--check", *pitr_args]
    path = f"{PROJECT}:backup.wal.restoreFrom"
    config = [
        ["pulumi", "config", "set", "--path", "--stack", new, f"{path}.target", source.archive],
        ["pulumi", "config", "set", "--path", "--stack", new, f"{path}.{key}", value],
    ]
    return [check, *config, ["pulumi", "up", "--stack", new]]


def copy_back(source: Source, scratch: str) -> list[str]:
    return [
        f"once {scratch} is up, check it: bin/verify {scratch}, and the rows you restored for",
        f"then copy it back into {source.stack} with docs/backups.md#restore-dump-same-stack, dumping from {scratch}",
        f"keep {scratch} and {source.stack}'s old data until the copy is checked; then `pulumi destroy --stack {scratch}`",
    ]


def run(argv: Sequence[str] | None = None, execute: Callable[[list[str]], int] | None = None, root: Path = ROOT) -> int:
    args = _parser().parse_args(argv)
    try:
        key, value = target_flag(args)
        source = load_source(args.stack, args.context, root)
        if args.same_stack:
            want = same_stack_confirmation(source.stack, source.namespace, f"{key} {value}")
            if args.confirm != want:
                raise RestoreError(f"--same-stack needs --confirm with exactly this sentence: {want!r}")
            new = f"{source.stack}{SCRATCH_SUFFIX}"
        else:
            new = args.into
        check_new_stack(source, new, root)
    except (RestoreError, FileNotFoundError, StackFileError, ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    steps = plan(source, new, key, value)
    print(f"{PROG}: restore {source.stack} ({source.namespace}, archive {source.archive}) to {key} {value} into stack {new}")
    for n, step in enumerate(steps, start=1):
        print(f"  {n}. {shlex.join(step)}")
        if args.apply:
            code = (execute or _execute)(step)
            if code != 0:
                print(f"{PROG}: step {n} exited {code}: stopped; {source.stack} is untouched", file=sys.stderr)
                return 1
    for line in copy_back(source, new) if args.same_stack else []:
        print(f"  then: {line}")
    if not args.apply:
        print(f"{PROG}: printed only; --apply runs the steps")
    return 0


def _execute(argv: list[str]) -> int:
    return subprocess.run(argv, cwd=ROOT, check=False).returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Restore a stack's database to a point in time into a new stack.")
    parser.add_argument("stack", help="the source stack: Pulumi.<stack>.yaml, with backup.wal archiving")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--time", help="the target time, such as '2026-12-06 02:03:04+00'")
    when.add_argument("--lsn", help="the target WAL position X/Y")
    when.add_argument("--latest", action="store_true", help="replay all archived WAL")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--into", metavar="NEW_STACK", help="the new stack to restore into (its Pulumi.<stack>.yaml must exist)")
    where.add_argument("--same-stack", action="store_true", help="through the scratch stack <stack>-pitr; needs --confirm")
    parser.add_argument("--confirm", default="", help="the sentence --same-stack asks for")
    parser.add_argument("--context", help="kubeconfig context of the source (default: its kubernetes:context)")
    parser.add_argument("--apply", action="store_true", help="run the steps (default: print them)")
    return parser


if __name__ == "__main__":
    sys.exit(run())
