"""Benchmark: pgbench with WAL archiving on (wal-archive.sh to a directory target through rclone)
against the same server with archiving off.

One primary is made with init.sh and filled with `pgbench -i`; its stopped data directory is
copied, and two servers run side by side from the two copies, with the benchmark settings of
the harness (fsync on) and 16 MiB segments:

  archiving  archive_mode=on, archive_command=wal-archive.sh "%p" "%f", WAL_TARGET a directory
             under --dir (rclone's local backend: copy, md5 check, rename, fsync per segment);
  off        archive_mode=off.

pgbench (TPC-B like) runs on each in turn, interleaved over --rounds rounds (A B, B A, ...),
after one untimed warm-up run each, with a CHECKPOINT after every run. The ratio per round is
off tps / archiving tps (above 1.0: archiving costs throughput); the target is at most 1.10.
The archiver must keep up: the archiving side's pg_stat_archiver is shown at the end (its
failures, and how many segments were still waiting when the last run ended).

    python benchmarks/bench_wal_archive.py           # 8 rounds of 15 s
    python benchmarks/bench_wal_archive.py --quick   # 4 rounds of 5 s
    python benchmarks/bench_wal_archive.py --archive-dir /dev/shm   # the archive off the data's disk
    python benchmarks/bench_wal_archive.py --aa      # A/A: both sides off

Needs the harness's PostgreSQL 18 (requirements-dev.txt), rclone (apt-get install rclone), and
root or the postgres OS user, like tests/components/scripts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_pgbench import conn, run_as
from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.components.scripts.pg_harness import (
    BENCH_SETTINGS,
    Cluster,
    Node,
    chown_run_user,
    require_pg_bin,
    wal_settings,
)

TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)


def pgbench_run(node: Node, seconds: int, clients: int) -> float:
    """tps of one pgbench run, then a CHECKPOINT."""
    argv = [str(node.cluster.pg_bin / "pgbench"), "-T", str(seconds), "-c", str(clients), "-j", str(clients), *conn(node)]
    out = run_as(node, argv)
    node.psql("CHECKPOINT")
    found = TPS.search(out)
    if found is None:
        raise SystemExit(f"pgbench printed no tps:\n{out}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds, one run of each side (default 8)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each pgbench run (default 15)")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale factor (default 10)")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients (default 2)")
    parser.add_argument("--quick", action="store_true", help="4 rounds of 5 s")
    parser.add_argument("--aa", action="store_true", help="an A/A run: archiving off on both sides (the noise, and any asymmetry)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the data directories live (default /tmp)")
    parser.add_argument(
        "--archive-dir", type=Path, help="where the archive lives (default: beside the data; elsewhere: the disk cost apart)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 4, 5
    started = time.monotonic()
    cluster = Cluster(require_pg_bin(), base_dir=args.dir, replication=False)
    try:
        target = cluster.job_dir("archive")
        if args.archive_dir is not None:
            target.rmdir()
            target = Path(tempfile.mkdtemp(prefix="wal-archive-", dir=args.archive_dir))
            chown_run_user(target)
        cluster.extra_env["WAL_TARGET"] = str(target)
        archiving, off = cluster.node(0), cluster.node(1)
        archiving.init()
        archiving.start(BENCH_SETTINGS, base_settings={"listen_addresses": "127.0.0.1"})
        print(f"pgbench -i -s {args.scale} ...", file=sys.stderr, flush=True)
        run_as(archiving, [str(cluster.pg_bin / "pgbench"), "-i", "-q", "-s", str(args.scale), *conn(archiving)])
        archiving.stop()
        off.pgdata.parent.mkdir(parents=True, exist_ok=True)
        chown_run_user(off.pgdata.parent)
        run_as(archiving, ["cp", "-a", str(archiving.pgdata), str(off.pgdata)])
        base = {"listen_addresses": "127.0.0.1"}
        archiving.start(BENCH_SETTINGS | ({"archive_mode": "off"} if args.aa else wal_settings()), base_settings=base)
        off.start(BENCH_SETTINGS | {"archive_mode": "off"}, base_settings=base)
        for node in (archiving, off):  # warm-up, untimed
            pgbench_run(node, max(3, args.duration // 2), args.clients)
        tps = interleave(
            {
                "archiving": lambda: pgbench_run(archiving, args.duration, args.clients),
                "off": lambda: pgbench_run(off, args.duration, args.clients),
            },
            rounds=args.rounds,
        )
        stats = archiving.psql("SELECT archived_count, failed_count, coalesce(last_archived_wal, '-') FROM pg_stat_archiver")
        waiting = len(list((archiving.pgdata / "pg_wal" / "archive_status").glob("*.ready")))
        archived_bytes = sum(p.stat().st_size for p in (target / "wal").glob("*"))
    finally:
        cluster.close()
        if args.archive_dir is not None:
            shutil.rmtree(target, ignore_errors=True)
    slowdown = ratios(tps["off"], tps["archiving"])
    print(f"\nbench_wal_archive: {args.rounds} rounds of {args.duration} s, pgbench -s {args.scale} -c {args.clients}, {machine_load()}")
    print(f"  tps archiving   {Spread.of(tps['archiving']).show('.1f')}")
    print(f"  tps off         {Spread.of(tps['off']).show('.1f')}")
    print(f"  off/archiving   {Spread.of(slowdown).show('.3f', 'x')} (target <= 1.10x)")
    print(f"  {noise_verdict(slowdown)}")
    archived, failed, last = stats.split("|")
    mib = archived_bytes / 2**20
    print(f"  archiver: {archived} segments ({mib:.0f} MiB), {failed} failures, last {last}, {waiting} waiting at the end")
    print(f"  took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
