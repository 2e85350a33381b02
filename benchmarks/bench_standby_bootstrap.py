"""Benchmark: bootstrapping a standby with init.sh versus copying the data directory.

Builds a primary holding about --size-mb of data (pgbench -i), then, in the same
run and on the same disk, times:

  (a) init.sh on an empty standby volume (wait for the primary, pg_basebackup,
      publish) plus starting postgres, until the standby streams;
  (b) a plain `cp -a` of the primary's data directory (the floor: same bytes,
      no PostgreSQL protocol, no fsync).

It prints both and the ratio a/b; the target is <= 1.5x. Page cache is warmed
with one untimed copy first, so both read from memory and the comparison is
about how the bytes are moved and written, not about cold reads.

    python benchmarks/bench_standby_bootstrap.py                # ~500 MB
    python benchmarks/bench_standby_bootstrap.py --size-mb 50   # smoke run

Needs PostgreSQL server binaries (Debian's postgresql package) and root or the
postgres OS user, like tests/scripts.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scripts.pg_harness import BENCH_SETTINGS, Cluster, Node, as_run_user, du_bytes, require_pg_bin

TARGET_RATIO = 1.5
MB = 1024 * 1024
PGBENCH_MB_PER_SCALE = 15  # pgbench -i: about 15 MB (tables and indexes) per scale unit


def run_as(node: Node, argv: list[str]) -> None:
    subprocess.run(as_run_user(argv, node.env()), check=True, capture_output=True)


def settle() -> None:
    """Flush dirty pages so that one measurement's writeback does not slow the next."""
    subprocess.run(["sync"], check=True)


def timed_copy(node: Node, dest: Path, durable: bool = False) -> float:
    """Seconds for `cp -a PGDATA dest` (with durable: followed by a syncfs of that filesystem)."""
    shutil.rmtree(dest, ignore_errors=True)
    settle()
    argv = ["cp", "-a", str(node.pgdata), str(dest)]
    if durable:
        argv = ["bash", "-c", 'cp -a "$1" "$2" && sync -f "$2"', "copy", str(node.pgdata), str(dest)]
    started = time.perf_counter()
    run_as(node, argv)
    elapsed = time.perf_counter() - started
    shutil.rmtree(dest)
    return elapsed


def timed_bootstrap(node: Node) -> tuple[float, float]:
    """Seconds for init.sh, and from init.sh start until the standby streams."""
    node.stop()
    shutil.rmtree(node.pgdata.parent, ignore_errors=True)
    settle()
    started = time.perf_counter()
    node.init()
    cloned = time.perf_counter()
    node.start(BENCH_SETTINGS, wait=False)
    deadline = time.monotonic() + 600
    while True:
        try:
            if node.receiver_status() == "streaming":
                break
        except AssertionError:
            pass  # not accepting connections yet
        if time.monotonic() > deadline:
            raise SystemExit(f"standby did not stream within 600s\n{node.log_tail()}")
        time.sleep(0.005)
    done = time.perf_counter()
    return cloned - started, done - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="approximate size of the primary's data (default 500)")
    parser.add_argument("--runs", type=int, default=5, help="timed repetitions of each side (default 5; medians reported)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the volumes live (default /tmp)")
    args = parser.parse_args()

    cluster = Cluster(require_pg_bin(), base_dir=args.dir)
    try:
        primary = cluster.node(0)
        primary.init()
        primary.start(BENCH_SETTINGS)
        scale = max(1, round(args.size_mb / PGBENCH_MB_PER_SCALE))
        print(f"populating the primary: pgbench -i -s {scale} ...", flush=True)
        bench = str(cluster.pg_bin / "pgbench")
        run_as(
            primary,
            [bench, "-i", "-q", "-s", str(scale), "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres", "postgres"],
        )
        primary.psql("CHECKPOINT")
        data_bytes = du_bytes(primary.pgdata)
        db_bytes = int(primary.psql("SELECT pg_database_size('postgres')"))
        print(f"primary data directory: {data_bytes / MB:.0f} MB (database {db_bytes / MB:.0f} MB)", flush=True)

        copy_dest = primary.volume / "copy"  # same filesystem, writable by postgres
        timed_copy(primary, copy_dest)  # warm the page cache, untimed
        standby = cluster.node(1)
        copies: list[float] = []
        durable_copies: list[float] = []
        clones: list[float] = []
        totals: list[float] = []
        for _ in range(args.runs):
            copies.append(timed_copy(primary, copy_dest))
            durable_copies.append(timed_copy(primary, copy_dest, durable=True))
            clone, total = timed_bootstrap(standby)
            clones.append(clone)
            totals.append(total)
        rows = standby.psql("SELECT count(*) FROM pgbench_accounts")
        assert rows == str(scale * 100_000), f"standby has {rows} pgbench_accounts rows"

        cp_s, dcp_s, clone_s, total_s = (statistics.median(x) for x in (copies, durable_copies, clones, totals))
        ratio = total_s / cp_s
        print()
        print(f"runs (medians)                       : {args.runs}")
        print(f"(b) cp -a PGDATA                     : {cp_s:6.2f} s  ({data_bytes / MB / cp_s:5.0f} MB/s)  baseline")
        print(f"    cp -a PGDATA && sync -f          : {dcp_s:6.2f} s  {dcp_s / cp_s:5.2f}x  (durable copy, for reference)")
        print(f"(a) init.sh alone (clone, synced)    : {clone_s:6.2f} s  {clone_s / cp_s:5.2f}x")
        print(f"(a) init.sh + postgres -> streaming  : {total_s:6.2f} s  {ratio:5.2f}x")
        print(
            f"ratio a/b = {ratio:.2f}x (target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'}); "
            f"against the durable copy: {total_s / dcp_s:.2f}x"
        )
        return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
