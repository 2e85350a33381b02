"""Benchmark: a point-in-time restore (wal-pitr.sh, then replay through wal-restore.sh to the target) against a
plain copy of the same data (a pg_basebackup directory, `cp -a`) replaying the same WAL with `cp` as its
restore_command, to the same target.

One primary (init.sh, 16 MiB segments, archiving through wal-archive.sh to a directory target under --dir) is
filled with `pgbench -i`; then, back to back with no write between, wal-basebackup.sh stores a base backup in the
archive and pg_basebackup takes the plain copy. pgbench then writes for --write seconds, the target is the time
after its last commit, and every segment up to it is archived. Each round, each side restores into an empty
data directory and starts the server, which replays to the target and promotes (timed until it is out of
recovery), then stops; the sides alternate which goes first (benchstats.interleave). The ratio per round is
pitr / plain (above 1.0: the archive's path costs time: the download and gunzip of the backup, the md5
checks, an rclone run per segment).

    python benchmarks/bench_pitr.py           # 5 rounds, pgbench -s 10, 15 s of writes
    python benchmarks/bench_pitr.py --quick   # 3 rounds, pgbench -s 4, 5 s of writes

Needs the harness's PostgreSQL 18 (requirements-dev.txt), rclone (apt-get install rclone), and root or the
postgres OS user, like tests/components/scripts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from bench_pgbench import conn, run_as
from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.components.scripts.pg_harness import (
    BENCH_SETTINGS,
    Cluster,
    Node,
    require_pg_bin,
    run_wal_job,
    wait_archived,
    wait_for,
    wal_settings,
)

RESTORED = {"listen_addresses": "127.0.0.1", "archive_mode": "off"}
# pg_basebackup as the replication role over TCP, as wal-basebackup.sh connects (init.sh's pg_hba), its password
# from the Secret's file through a 0600 passfile (pgpass escapes ':' and '\\').
PLAIN_COPY = r"""set -euo pipefail
umask 077
passfile=$(mktemp)
trap 'rm -f "$passfile"' EXIT
printf '*:*:*:%s:' "$REPLICATION_USER" >"$passfile"
sed -e 's/[\\:]/\\&/g' "$SECRETS_DIR/replication-password" >>"$passfile"
PGPASSFILE=$passfile "$1" -h 127.0.0.1 -p "$3" -U "$REPLICATION_USER" -w -D "$2" -X stream -c fast
"""


def empty(node: Node) -> None:
    """Stop the node's server and remove its data directory: the next restore starts from nothing."""
    node.stop()
    shutil.rmtree(node.pgdata, ignore_errors=True)
    run_as(node, ["mkdir", "-p", str(node.pgdata.parent)])


def promoted(node: Node, started: float) -> float:
    wait_for(lambda: not node.in_recovery(), 600, f"{node.name} to promote")
    return time.monotonic() - started


def pitr(cluster: Cluster, node: Node, target: str) -> float:
    empty(node)
    started = time.monotonic()
    run_wal_job(cluster, "wal-pitr.sh", "--time", target, PGDATA=str(node.pgdata))
    node.start(BENCH_SETTINGS | RESTORED, base_settings={})
    return promoted(node, started)


def plain(node: Node, copy: Path, archive: Path, target: str) -> float:
    empty(node)
    started = time.monotonic()
    run_as(node, ["cp", "-a", str(copy), str(node.pgdata)])
    run_as(node, ["touch", str(node.pgdata / "recovery.signal")])
    recovery = {
        "restore_command": f"cp {archive}/wal/%f %p",
        "recovery_target_time": target,
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
    }
    node.start(BENCH_SETTINGS | RESTORED | recovery, base_settings={})
    return promoted(node, started)


def prepare(cluster: Cluster, args: argparse.Namespace) -> tuple[Path, Path, str, int]:
    """The archive (a base backup, then WAL), the plain copy taken at the same point, the target and the WAL bytes."""
    archive = cluster.job_dir("archive")
    cluster.extra_env["WAL_TARGET"] = str(archive)
    primary = cluster.primary
    primary.init()
    primary.start(BENCH_SETTINGS | wal_settings(), base_settings={"listen_addresses": "127.0.0.1"})
    print(f"pgbench -i -s {args.scale} ...", file=sys.stderr, flush=True)
    run_as(primary, [str(cluster.pg_bin / "pgbench"), "-i", "-q", "-s", str(args.scale), *conn(primary)])
    run_wal_job(cluster, "wal-basebackup.sh")
    copy = cluster.job_dir("plain") / "copy"
    run_as(primary, ["bash", "-c", PLAIN_COPY, "plain-copy", str(cluster.pg_bin / "pg_basebackup"), str(copy), str(primary.port)])
    start_lsn = primary.psql("SELECT pg_current_wal_lsn()")
    print(f"pgbench -T {args.write} ...", file=sys.stderr, flush=True)
    run_as(primary, [str(cluster.pg_bin / "pgbench"), "-T", str(args.write), "-c", "2", "-j", "2", *conn(primary)])
    target = primary.psql("SELECT clock_timestamp()")
    wal_bytes = int(primary.psql(f"SELECT pg_current_wal_lsn() - '{start_lsn}'::pg_lsn"))
    time.sleep(0.05)
    primary.psql("CREATE TABLE after_target (id int)")  # a commit past the target: replay stops before it
    wait_archived(primary, timeout=300)
    primary.stop()
    return archive, copy, target, wal_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, one restore of each side (default 5)")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale factor of the base backup (default 10)")
    parser.add_argument("--write", type=int, default=15, help="seconds of pgbench writes after the backup: the WAL replayed (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, -s 4, 5 s of writes")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the data directories live (default /tmp)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.scale, args.write = 3, 4, 5
    started = time.monotonic()
    cluster = Cluster(require_pg_bin(), base_dir=args.dir)
    try:
        archive, copy, target, wal_bytes = prepare(cluster, args)
        pitr_node, plain_node = cluster.node(1), cluster.node(2)
        seconds = interleave(
            {"pitr": lambda: pitr(cluster, pitr_node, target), "plain": lambda: plain(plain_node, copy, archive, target)},
            rounds=args.rounds,
        )
        # Both sides stopped at the target: the table committed after it is in neither.
        for node in (pitr_node, plain_node):
            assert node.psql("SELECT to_regclass('after_target') IS NULL") == "t", f"{node.name} replayed past the target"
    finally:
        cluster.close()
    slowdown = ratios(seconds["pitr"], seconds["plain"])
    print(f"\nbench_pitr: {args.rounds} rounds, pgbench -s {args.scale}, {wal_bytes / 2**20:.0f} MiB of WAL replayed, {machine_load()}")
    print(f"  pitr (wal-pitr.sh + wal-restore.sh)   {Spread.of(seconds['pitr']).show('.2f', ' s')}")
    print(f"  plain (cp -a + cp restore_command)    {Spread.of(seconds['plain']).show('.2f', ' s')}")
    print(f"  pitr/plain                            {Spread.of(slowdown).show('.2f', 'x')}")
    print(f"  {noise_verdict(slowdown)}")
    print(f"  took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
