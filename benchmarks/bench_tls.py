"""Benchmark: what TLS costs a client, pgbench over TCP with sslmode=verify-full against sslmode=disable.

One PostgreSQL 18 primary made by init.sh with TLS on (TLS_DIR; not required, so both sides
reach the same server), started with components.postgres_conf.tls_parameters as the pods
start it, and filled with `pgbench -i`. Then pgbench runs over TCP to 127.0.0.1, as the
rw Service name with the stack's CA and sslmode=verify-full (side "tls") or with
sslmode=disable (side "plain"), interleaved over --rounds rounds (A B, B A, B A, A B, ...),
after one untimed warm-up run each; every run is followed by a CHECKPOINT. Each side keeps
its connections for the whole run, as an application's pool does: the handshake is paid
once per connection (--connect, pgbench -C, pays it per transaction instead).

Printed: each side's tps and transactions per CPU second (the server's and pgbench's CPU, the
CHECKPOINT included; and the server's alone, what a pod's CPU limit pays), and per round the
ratios plain / tls: how much longer a transaction takes with TLS, and how much more CPU it
needs (target <= 1.15x), with their spread and a sign test. On this shared 2-core machine tps follows what other processes
leave (bench_pgbench's docstring); the CPU ratio is the steadier measure of TLS, which costs
CPU (the cipher, on both ends), not waiting.

PostgreSQL 18 with TLS on this machine: the wheel's PostgreSQL is built without OpenSSL, so the
server is npm's 18 (bin/install-pg-majors) and pgbench the wheel's with npm's libpq
(tests/components/scripts/pg_harness.tls_client_bin). Needs root or the postgres OS user.

    python benchmarks/bench_tls.py                          # 10 rounds of 15 s, tpcb-like
    python benchmarks/bench_tls.py --quick                  # 4 rounds of 5 s
    python benchmarks/bench_tls.py --builtin select-only    # the most TLS-bound workload
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from bench_pgbench import proc_cpu_children, server_cpu
from benchstats import Spread, interleave, machine_load, noise_verdict, ratios

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.postgres_conf import tls_parameters
from tests.components.scripts.pg_harness import BENCH_SETTINGS, Cluster, Node, as_run_user, chown_run_user, npm_native, tls_client_bin
from tests.components.scripts.test_tls import RW_FQDN, KubeletTlsDir, make_ca, make_server

# pgbench -C counts the connections in (its tps line says "including reconnection times").
TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)", re.M)
TRANSACTIONS = re.compile(r"^number of transactions actually processed: ([0-9]+)", re.M)


def client_env(node: Node, passfile: Path) -> dict[str, str]:
    return {"PATH": f"{node.cluster.pg_bin}:/usr/bin:/bin", "HOME": str(node.cluster.base / "home"), "PGPASSFILE": str(passfile)}


def run(node: Node, argv: list[str], env: dict[str, str], timeout: float = 3600) -> str:
    cp = subprocess.run(as_run_user(argv, env), capture_output=True, text=True, timeout=timeout)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}\n{node.log_tail()}")
    return cp.stdout


def write_passfile(node: Node) -> Path:
    """A 0600 pgpass file of the postgres OS user for the superuser's TCP connections."""
    password = node.cluster.passwords["postgres-password"].replace("\\", "\\\\").replace(":", "\\:")
    path = node.socket_dir / ".pgpass-bench"
    path.touch(mode=0o600)
    path.write_text(f"*:*:*:postgres:{password}\n")
    chown_run_user(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds, one run of each side (default 10)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each pgbench run (default 15)")
    parser.add_argument("--builtin", default="tpcb-like", help="pgbench's built-in script: tpcb-like (default), simple-update, select-only")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale factor (default 10, about 150 MB)")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients and threads (default 2: this machine's cores)")
    parser.add_argument("--connect", action="store_true", help="a new connection per transaction (pgbench -C): the handshake's cost")
    parser.add_argument("--quick", action="store_true", help="4 rounds of 5 s")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the data directory lives (default /tmp)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 4, 5

    ca = make_ca("pgstack pg CA")
    native = npm_native("18")
    cluster = Cluster(tls_client_bin(), base_dir=args.dir, replication=False, server_bin=native / "bin", lib_dir=native / "lib")
    started = time.monotonic()
    load_before = machine_load()
    try:
        tls = KubeletTlsDir(cluster.base / "tls")
        tls.publish_pair(make_server(ca), ca)
        (cluster.base / "ca.crt").write_bytes(ca.cert_pem())
        cluster.extra_env["TLS_DIR"] = str(tls.path)
        p = cluster.primary
        p.init()
        p.start(BENCH_SETTINGS | tls_parameters(str(tls.path), "TLSv1.2") | {"log_statement": "none"})
        passfile = write_passfile(p)
        env = client_env(p, passfile)
        pgbench = str(cluster.pg_bin / "pgbench")
        print(f"bench_tls: pgbench -i -s {args.scale} ...", file=sys.stderr, flush=True)
        run(p, [pgbench, "-i", "-q", "-s", str(args.scale), "-h", str(p.socket_dir), "-p", str(p.port), "-U", "postgres", "postgres"], env)
        p.psql("VACUUM ANALYZE")

        base = f"host={RW_FQDN} hostaddr=127.0.0.1 port={p.port} user=postgres dbname=postgres"
        conninfo = {"tls": f"{base} sslmode=verify-full sslrootcert={cluster.base / 'ca.crt'}", "plain": f"{base} sslmode=disable"}
        check = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        for side, expected in (("tls", "t"), ("plain", "f")):
            got = run(p, [str(cluster.pg_bin / "psql"), "-X", "-A", "-t", "-w", "-d", conninfo[side], "-c", check], env).strip()
            if got != expected:
                raise SystemExit(f"side {side}: pg_stat_ssl.ssl is {got!r}, expected {expected!r}")

        per_cpu: dict[str, list[float]] = {"tls": [], "plain": []}
        per_server_cpu: dict[str, list[float]] = {"tls": [], "plain": []}

        def measure(name: str, seconds: int | None = None) -> float:
            argv = [pgbench, "-b", args.builtin, "-T", str(seconds or args.duration), "-c", str(args.clients), "-j", str(args.clients)]
            server_before, client_before = server_cpu(p), proc_cpu_children()
            out = run(p, [*argv, *(["-C"] if args.connect else []), conninfo[name]], env)
            p.psql("CHECKPOINT")
            server = server_cpu(p) - server_before
            cpu = server + proc_cpu_children() - client_before
            tps, done = TPS.search(out), TRANSACTIONS.search(out)
            if not tps or not done:
                raise SystemExit(f"pgbench printed no tps:\n{out}")
            if seconds is None:
                per_cpu[name].append(int(done.group(1)) / cpu)
                per_server_cpu[name].append(int(done.group(1)) / server)
            return float(tps.group(1))

        for name in conninfo:  # warm-up, untimed
            measure(name, max(3, args.duration // 2))
        tps = interleave({"tls": lambda: measure("tls"), "plain": lambda: measure("plain")}, rounds=args.rounds)
    finally:
        cluster.close()

    mode = f"pgbench -b {args.builtin}{' -C' if args.connect else ''}, {args.clients} clients, -s {args.scale}"
    print(f"bench_tls: {args.rounds} rounds of {args.duration} s per side ({mode}); {time.monotonic() - started:.0f} s in all")
    print(f"machine: before {load_before}; after {machine_load()}")
    for name, values in tps.items():
        print(f"  {name:<6} tps {Spread.of(values).show('.0f')}; per CPU second {Spread.of(per_cpu[name]).show('.0f')}")
    sides = (
        ("tps", tps),
        ("transactions per CPU second", per_cpu),
        ("transactions per server CPU second (what the pod pays)", per_server_cpu),
    )
    for what, measured in sides:
        cost = ratios(measured["plain"], measured["tls"])
        print(f"  TLS cost, plain / verify-full {what} (target <= 1.15x): {Spread.of(cost).show('.3f', 'x')}")
        print(f"    {noise_verdict(cost, higher_is='slower')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
