"""bin/restore-pitr: what it prints, what it runs with --apply, and what it refuses (no cluster, no Pulumi CLI here:
the steps run through an injected executor; one test runs the real bin/ script for its argument errors)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.restore_pitr import run, same_stack_confirmation
from tools.stack_files import ROOT

SCRIPT = ROOT / "bin" / "restore-pitr"
ARCHIVE = "backups/orders-wal"


def stack(root: Path, name: str, namespace: str, archive: str | None = ARCHIVE, **extra: object) -> None:
    config: dict[str, object] = {"pgstack:namespace": namespace, **extra}
    if archive is not None:
        config["pgstack:backup"] = {"wal": {"s3Remote": archive}}
    (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    stack(tmp_path, "prod", "orders", **{"kubernetes:context": "east"})
    stack(tmp_path, "restored", "orders-restored", archive="backups/orders-restored-wal")
    return tmp_path


def call(root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str, list[list[str]]]:
    ran: list[list[str]] = []

    def execute(step: list[str]) -> int:
        ran.append(step)
        return 0

    code = run(list(argv), execute=execute, root=root)
    out, err = capsys.readouterr()
    return code, out, err, ran


def test_a_new_stack_prints_the_range_check_the_restore_from_lines_and_pulumi_up(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, ran = call(root, capsys, "prod", "--time", "2026-12-06 02:03:04+00", "--into", "restored")
    assert (code, err, ran) == (0, "", [])
    assert out.splitlines() == [
        "bin/restore-pitr: restore prod (orders, archive backups/orders-wal) to time 2026-12-06 02:03:04+00 into stack restored",
        "  1. kubectl --context east -n orders exec postgres-0 -c postgres -- /scripts/wal-pitr.sh --check --time '2026-12-06 02:03:04+00'",
        "  2. pulumi config set --path --stack restored pgstack:backup.wal.restoreFrom.target backups/orders-wal",
        "  3. pulumi config set --path --stack restored pgstack:backup.wal.restoreFrom.time '2026-12-06 02:03:04+00'",
        "  4. pulumi up --stack restored",
        "bin/restore-pitr: printed only; --apply runs the steps",
    ]


def test_apply_runs_the_steps_in_order_and_stops_at_the_first_failure(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _, ran = call(root, capsys, "prod", "--lsn", "0/3000148", "--into", "restored", "--apply", "--context", "west")
    assert code == 0
    assert [s[:2] for s in ran] == [["kubectl", "--context"], ["pulumi", "config"], ["pulumi", "config"], ["pulumi", "up"]]
    assert ran[0][-3:] == ["--check", "--lsn", "0/3000148"] and ran[0][2] == "west"
    assert ran[2][-2:] == ["pgstack:backup.wal.restoreFrom.lsn", "0/3000148"]
    # The range check refuses (wal-pitr.sh names the range on its stderr): nothing is written, nothing deployed.
    ran.clear()
    code = run(["prod", "--latest", "--into", "restored", "--apply"], execute=lambda s: ran.append(s) or 1, root=root)
    assert code == 1 and len(ran) == 1 and ran[0][-2:] == ["--check", "--latest"]
    assert "step 1 exited 1: stopped; prod is untouched" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prod", "--time", "yesterday", "--into", "restored"], "--time 'yesterday': expected a time such as"),
        (["prod", "--time", "2026-12-06 02:03'; rm -rf /", "--into", "restored"], "expected a time such as"),
        (["prod", "--lsn", "0/3000xyz", "--into", "restored"], "--lsn '0/3000xyz': expected a WAL position X/Y"),
        (["prod", "--latest", "--into", "prod"], "--into prod is the source stack: use --same-stack"),
        (["prod", "--latest", "--into", "nosuch"], "no stack file Pulumi.nosuch.yaml: copy Pulumi.prod.yaml, give it its own"),
        (["plain", "--latest", "--into", "restored"], "stack plain has no WAL archive (pgstack:backup.wal.s3Remote)"),
        (["prod", "--latest", "--into", "clash"], "stack clash uses namespace orders too"),
        (["prod", "--latest", "--into", "shared"], "stack shared archives to backups/orders-wal, the archive it restores from"),
        (["operator", "--latest", "--into", "restored"], "stack operator runs pgstack:postgres.engine cloudnative-pg: its archive is"),
        (
            ["prod", "--latest", "--same-stack"],
            "needs --confirm with exactly this sentence: 'prod: restore orders to latest true",
        ),
    ],
)
def test_refusals_name_the_problem_and_run_nothing(root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    stack(root, "plain", "plain", archive=None)
    stack(root, "clash", "orders", archive="backups/other")
    stack(root, "shared", "orders-shared")
    stack(root, "operator", "ops", archive="backups/ops-wal", **{"pgstack:postgres": {"engine": "cloudnative-pg"}})
    code, out, err, ran = call(root, capsys, *argv, "--apply")
    assert (code, out, ran) == (1, "", [])
    assert err.startswith("bin/restore-pitr: ") and message in err, err


def test_the_same_stack_goes_through_a_scratch_stack_with_the_sentence_and_never_in_place(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentence = same_stack_confirmation("prod", "orders", "time 2026-12-06 02:03:04+00")
    assert sentence == ("prod: restore orders to time 2026-12-06 02:03:04+00 through prod-pitr; keep the old volumes until I delete them")
    when = ["--time", "2026-12-06 02:03:04+00"]
    # A sentence for another target does not do.
    other = same_stack_confirmation("prod", "orders", "latest true")
    assert call(root, capsys, "prod", *when, "--same-stack", "--confirm", other, "--apply")[:1] == (1,)
    code, _, err, _ = call(root, capsys, "prod", *when, "--same-stack", "--confirm", sentence)
    assert code == 1 and "no stack file Pulumi.prod-pitr.yaml" in err
    stack(root, "prod-pitr", "orders-pitr", archive="backups/orders-pitr-wal")
    code, out, err, ran = call(root, capsys, "prod", *when, "--same-stack", "--confirm", sentence, "--apply")
    assert (code, err) == (0, "")
    assert [s[-1] for s in ran] == [when[1], ARCHIVE, when[1], "prod-pitr"]
    assert all("prod" not in s or "prod-pitr" in s or s[0] == "kubectl" for s in ran)  # nothing of prod but the exec
    assert "then: then copy it back into prod with docs/backups.md#restore-dump-same-stack, dumping from prod-pitr" in out


def test_bin_restore_pitr_runs_the_module_and_argparse_refuses_a_missing_target() -> None:
    cp = subprocess.run([str(SCRIPT), "prod", "--into", "x"], capture_output=True, text=True, cwd="/", timeout=60)
    assert cp.returncode == 2 and "one of the arguments --time --lsn --latest is required" in cp.stderr
    cp = subprocess.run([str(SCRIPT), "prod", "--latest"], capture_output=True, text=True, cwd="/", timeout=60)
    assert cp.returncode == 2 and "one of the arguments --into --same-stack is required" in cp.stderr
