"""TLS on real PostgreSQL: the pod scripts' pg_hba rules, standbys and the dumps job
connecting with verify-full, and a renewed certificate reloaded without a restart.

The certificates are made here with `cryptography`, as the stack makes them (an ECDSA P-256
CA and a server certificate with the SANs of the rw, ro and headless Services of stack `pg`
in namespace `db`), and mounted the way the kubelet mounts a Secret volume: files root-owned,
group postgres (fsGroup), mode 0440, reached through a ``..data`` symlink that a renewal
swaps. The servers run with components.postgres_conf.tls_parameters, what the pods pass.

PostgreSQL 18 with TLS: PyPI's wheel, the harness's default, is built without OpenSSL (its
server stops with "SSL is not supported by this build"), so these servers are npm's 18
(OpenSSL 1.1, an earlier 18 minor) and the client tools the wheel's with npm's libpq
(pg_harness.tls_client_bin). The postgres image installs the PostgreSQL project's Debian
packages, built with OpenSSL like Debian's 15 here (its postgres links libssl.so.3).

The harness's pods live on 127.0.0.1, where no Service name resolves: client tests connect to
the Service names with ``hostaddr``; the standby (PRIMARY_HOST) and the dumps job
(BACKUP_HOSTS), whose host settings have no hostaddr, connect to 127.0.0.1, which the test
certificate carries as an extra IP SAN (libpq matches iPAddress SANs:
pq_verify_peer_name_matches_certificate_ip, fe-secure-common.c).
One primary and one standby serve the whole module.
"""

from __future__ import annotations

import datetime
import os
import pwd
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components.postgres_conf import tls_parameters

from .pg_harness import (
    RUN_USER,
    Cluster,
    HarnessError,
    Node,
    as_run_user,
    chown_run_user,
    npm_native,
    scripts_dir,
    tls_client_bin,
    wait_for,
)
from .test_backup import complete_dumps, job_env
from .test_majors import use_major

NAME, NAMESPACE, DOMAIN = "pg", "db", "cluster.local"
RW_FQDN = f"{NAME}.{NAMESPACE}.svc.{DOMAIN}"


def service_sans() -> list[str]:
    """The stack's server certificate names: each Service in every form, and each pod."""
    names = []
    for svc in (NAME, f"{NAME}-ro", f"{NAME}-hl"):
        names += [svc, f"{svc}.{NAMESPACE}", f"{svc}.{NAMESPACE}.svc", f"{svc}.{NAMESPACE}.svc.{DOMAIN}"]
    return [*names, f"*.{NAME}-hl.{NAMESPACE}.svc.{DOMAIN}"]


# ------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _builder(subject: str, issuer: x509.Name | None, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def make_ca(subject: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(subject, None, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),  # keyCertSign, cRLSign
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def make_server(ca: Issued, key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in service_sans()]
    sans.append(x509.IPAddress(IPv4Address("127.0.0.1")))  # the harness's pods (module docstring)
    cert = (
        _builder(NAME, ca.cert.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),  # digitalSignature
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)


class KubeletTlsDir:
    """A Secret volume as the kubelet writes it (AtomicWriter): the files in a timestamped
    directory, ``..data`` a symlink to it, each key a symlink through ``..data``; an update
    writes a new directory and renames a new ``..data`` over the old one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(mode=0o755)
        self.generation = 0

    def publish(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        old = (self.path / "..data").resolve() if (self.path / "..data").exists() else None
        target = self.path / f"..2026_12_06_00_00_00.{self.generation:09d}"
        target.mkdir(mode=0o755)
        for name, content in files.items():
            (target / name).write_bytes(content)
            if os.geteuid() == 0:
                os.chown(target / name, 0, pwd.getpwnam(RUN_USER).pw_gid)
                (target / name).chmod(0o440)
            else:
                (target / name).chmod(0o400)  # the tests run as postgres: its own key, 0400
        (self.path / "..data_tmp").symlink_to(target.name)
        os.replace(self.path / "..data_tmp", self.path / "..data")
        for name in files:
            if not (self.path / name).is_symlink():
                (self.path / name).symlink_to(f"..data/{name}")
        if old is not None:
            for f in old.iterdir():
                f.unlink()
            old.rmdir()

    def publish_pair(self, server: Issued, ca: Issued) -> None:
        self.publish({"tls.crt": server.cert_pem(), "tls.key": server.key_pem(), "ca.crt": ca.cert_pem()})


def served_certificate(port: int) -> x509.Certificate:
    """The certificate the server on 127.0.0.1:port presents to a new connection: the
    protocol's SSLRequest, then a TLS handshake that verifies nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(struct.pack("!II", 8, 80877103))
        assert raw.recv(1) == b"S", "the server refused the SSLRequest"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


# ---------------------------------------------------------------- fixtures


@dataclass
class Stack:
    cluster: Cluster
    ca: Issued
    server: Issued
    tls: KubeletTlsDir
    ca_file: Path  # the stack's CA, as a client has it
    wrong_ca_file: Path  # another CA's certificate

    @property
    def primary(self) -> Node:
        return self.cluster.primary


def server_settings(tls_dir: Path) -> dict[str, str]:
    return tls_parameters(str(tls_dir), "TLSv1.2")


def client_files(base: Path, issued: dict[str, Issued]) -> dict[str, Path]:
    out = {}
    for name, ca in issued.items():
        path = base / f"{name}.crt"
        path.write_bytes(ca.cert_pem())
        path.chmod(0o644)
        out[name] = path
    return out


def tls_cluster(ca: Issued, server: Issued, **kwargs: Any) -> tuple[Cluster, KubeletTlsDir]:
    """A cluster of PostgreSQL 18 pods with TLS (TLS_REQUIRED=true) and its mounted TLS files."""
    try:
        native = npm_native("18")
        cluster = Cluster(tls_client_bin(), server_bin=native / "bin", lib_dir=native / "lib", extra_env={"TLS_REQUIRED": "true"}, **kwargs)
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    tls = KubeletTlsDir(cluster.base / "tls")
    tls.publish_pair(server, ca)
    cluster.extra_env["TLS_DIR"] = str(tls.path)
    return cluster, tls


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A primary and a streaming standby with TLS required, set up by init.sh."""
    ca, other = make_ca("pgstack pg CA"), make_ca("some other CA")
    server = make_server(ca)
    cluster, tls = tls_cluster(ca, server)
    try:
        files = client_files(cluster.base, {"ca": ca, "wrong": other})
        cluster.start_node(0, server_settings(tls.path))
        cluster.start_node(1, server_settings(tls.path))
        wait_for(cluster.node(1).is_streaming, 30, "the standby to stream")
        yield Stack(cluster, ca, server, tls, files["ca"], files["wrong"])
    finally:
        cluster.close()


def client(
    node: Node, sslmode: str, root: Path | None, host: str = RW_FQDN, user: str = "app", db: str = "appdb"
) -> subprocess.CompletedProcess[str]:
    """psql over TCP to 127.0.0.1 (hostaddr) as `host`, the name the certificate is checked against."""
    conninfo = f"host={host} hostaddr=127.0.0.1 port={node.port} user={user} dbname={db} sslmode={sslmode}"
    if root is not None:
        conninfo += f" sslrootcert={root}"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(node.cluster.base / "home"),
        "PGPASSWORD": node.cluster.passwords["password" if user == "app" else "postgres-password"],
        "PGCONNECT_TIMEOUT": "5",
    }
    sql = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    psql = [str(node.cluster.pg_bin / "psql"), "-X", "-A", "-t", "-w", "-d", conninfo, "-c", sql]
    return subprocess.run(psql, env=env, capture_output=True, text=True, timeout=30)


def run_pod_library(node: Node, snippet: str, libs: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A bash snippet with pod libraries sourced (lib-base.sh and pod-config.sh first), as
    init.sh runs them: OS user postgres, this node's environment with ``env``."""
    prelude = 'd=$1; shift; for f in lib-base.sh pod-config.sh "$@"; do . "$d/$f"; done; load_config; '
    argv = as_run_user(["bash", "-c", prelude + snippet, "init.sh", str(scripts_dir()), *libs], node.env(**env))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------ pg_hba rules


HBA_HEAD = """\
# Managed by init.sh: rewritten on every pod start, edits are lost.
# TYPE  DATABASE     USER             ADDRESS  METHOD
local   all          postgres                  peer
local   all          replicator                reject
local   all          all                       scram-sha-256
"""


def host_rules(kind: str) -> str:
    return "".join(
        f"{kind:<7} {db:<12} {user:<16} {'all':<8} {method}\n"
        for db, user, method in (
            ("replication", "replicator", "scram-sha-256"),
            ("replication", "all", "reject"),
            ("all", "replicator", "reject"),
            ("all", "all", "scram-sha-256"),
        )
    )


@pytest.fixture
def scratch_node(make_cluster: Callable[..., Cluster], tmp_path: Path) -> Node:
    """A node whose PGDATA is an empty directory (write_hba's output only)."""
    node = make_cluster().primary
    node.pgdata.mkdir(parents=True)
    chown_run_user(node.pgdata)
    return node


@pytest.mark.parametrize(
    ("tls_dir", "required", "expected"),
    [
        ("", "false", HBA_HEAD + host_rules("host")),  # TLS off: the file as before TLS existed
        ("/etc/postgresql/tls", "false", HBA_HEAD + host_rules("hostssl") + host_rules("host")),
        (
            "/etc/postgresql/tls",
            "true",
            HBA_HEAD + host_rules("hostssl") + "hostnossl all          all              all      reject\n"
            "hostnossl replication  all              all      reject\n",
        ),
    ],
    ids=["tls-off", "tls-on", "tls-required"],
)
def test_hba_puts_hostssl_first_and_rejects_plain_tcp_when_required(scratch_node: Node, tls_dir: str, required: str, expected: str) -> None:
    cp = run_pod_library(scratch_node, "write_hba", ["init-volume.sh", "init-managed-conf.sh"], TLS_DIR=tls_dir, TLS_REQUIRED=required)
    assert cp.returncode == 0, cp.stderr
    assert (scratch_node.pgdata / "pg_hba.conf").read_text() == expected


def test_tls_required_without_certificates_is_refused(scratch_node: Node) -> None:
    cp = scratch_node.run_script("init.sh", env={"TLS_DIR": "", "TLS_REQUIRED": "true"}, check=False)
    assert cp.returncode != 0
    assert "FATAL: TLS_REQUIRED=true needs TLS_DIR (the mounted server certificate and CA), but TLS_DIR is empty" in cp.stderr
    assert not (scratch_node.pgdata / "PG_VERSION").exists(), "refused before initdb"


# ------------------------------------------------------- client connections


def test_the_server_starts_with_the_files_as_the_kubelet_mounts_them(stack: Stack) -> None:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        st = (stack.tls.path / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, pwd.getpwnam(RUN_USER).pw_gid, 0o440), name
    p = stack.primary
    assert p.psql("SELECT current_setting('ssl'), current_setting('ssl_key_file')") == f"on|{stack.tls.path}/tls.key"
    assert served_certificate(p.port).serial_number == stack.server.cert.serial_number


@pytest.mark.parametrize(
    "host",
    [RW_FQDN, f"{NAME}-ro", f"{NAME}-0.{NAME}-hl.{NAMESPACE}.svc.{DOMAIN}"],
    ids=["rw-service", "ro-short", "pod-wildcard"],
)
def test_verify_full_with_the_stacks_ca_connects_to_the_service_names(stack: Stack, host: str) -> None:
    """The rw Service, the ro one by its short name, and a pod by its headless name (what a
    standby's PRIMARY_HOST is), through the *.<name>-hl.<ns>.svc.<domain> SAN."""
    cp = client(stack.primary, "verify-full", stack.ca_file, host=host)
    assert cp.returncode == 0, cp.stderr
    ssl_on, version = cp.stdout.strip().split("|")
    assert ssl_on == "t" and version in ("TLSv1.2", "TLSv1.3")


def test_another_ca_is_refused(stack: Stack) -> None:
    cp = client(stack.primary, "verify-full", stack.wrong_ca_file)
    assert cp.returncode != 0
    assert "certificate verify failed" in cp.stderr


def test_a_host_name_outside_the_certificate_is_refused(stack: Stack) -> None:
    cp = client(stack.primary, "verify-full", stack.ca_file, host=f"{NAME}.other.svc.{DOMAIN}")
    assert cp.returncode != 0
    assert f'does not match host name "{NAME}.other.svc.{DOMAIN}"' in cp.stderr


def test_plain_tcp_is_refused_when_required_and_accepted_when_not(stack: Stack) -> None:
    p = stack.primary
    cp = client(p, "disable", None)
    assert cp.returncode != 0
    assert "pg_hba.conf rejects connection" in cp.stderr and "no encryption" in cp.stderr
    # The Unix socket is not TCP: untouched by the TLS rules (the pods' own scripts, the exporter).
    assert p.psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == "f"
    try:
        cp = run_pod_library(p, "write_hba", ["init-volume.sh", "init-managed-conf.sh"], TLS_REQUIRED="false")
        assert cp.returncode == 0, cp.stderr
        p.psql("SELECT pg_reload_conf()")
        wait_for(lambda: client(p, "disable", None).returncode == 0, 10, "plain TCP accepted without TLS_REQUIRED")
        assert client(p, "disable", None).stdout.strip() == "f|"
    finally:
        assert run_pod_library(p, "write_hba", ["init-volume.sh", "init-managed-conf.sh"]).returncode == 0
        p.psql("SELECT pg_reload_conf()")
    wait_for(lambda: client(p, "disable", None).returncode != 0, 10, "plain TCP refused again")


# ---------------------------------------------------------------- standbys


def test_the_standby_streams_over_tls_verified_against_the_stacks_ca(stack: Stack) -> None:
    p, s = stack.primary, stack.cluster.node(1)
    rows = p.psql("SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == f"{s.name}|t"
    conninfo = s.psql("SELECT conninfo FROM pg_stat_wal_receiver")
    assert "sslmode=verify-full" in conninfo and f"sslrootcert={stack.tls.path}/ca.crt" in conninfo
    managed = (s.pgdata / "k8s-replication.conf").read_text()
    assert f"sslmode=verify-full sslrootcert={stack.tls.path}/ca.crt'" in managed


def test_the_standbys_checks_of_the_primary_verify_its_certificate(stack: Stack) -> None:
    """The replication connections of init.sh and readiness.sh (pod-upstream.sh) use
    verify-full: with another CA as the stack's, the primary cannot be asked."""
    s = stack.cluster.node(1)
    probe = 'upstream_probe && printf "%s\\n" "$UP_SLOT" || { printf "%s\\n" "$UP_ERROR"; exit 1; }'
    cp = run_pod_library(s, probe, ["pod-upstream.sh"])
    assert (cp.returncode, cp.stdout.strip()) == (0, "ok"), cp.stderr
    wrong = KubeletTlsDir(stack.cluster.base / "tls-wrong-ca")
    wrong.publish({"ca.crt": stack.wrong_ca_file.read_bytes()})
    cp = run_pod_library(s, probe, ["pod-upstream.sh"], TLS_DIR=str(wrong.path))
    assert cp.returncode == 1 and "certificate verify failed" in cp.stdout, cp.stdout + cp.stderr


# ----------------------------------------------------------------- renewal


def reload_passes(stderr: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in stderr.splitlines() if "reloaded the server configuration" in line]


def test_a_renewed_certificate_is_served_after_the_sidecars_pass_without_a_restart(stack: Stack) -> None:
    p = stack.primary
    started = p.psql("SELECT pg_postmaster_start_time()")
    pid = p.postmaster_pid()
    (p.socket_dir / ".tls-reload.state").unlink(missing_ok=True)  # a new pod's emptyDir
    first = p.sync_passwords_once()
    assert first.returncode == 0, first.stderr
    assert reload_passes(first.stderr) == [f"reloaded the server configuration: first look at the TLS files in {stack.tls.path}"]
    unchanged = p.sync_passwords_once()
    assert unchanged.returncode == 0 and reload_passes(unchanged.stderr) == [], unchanged.stderr

    renewed = make_server(stack.ca)
    stack.tls.publish_pair(renewed, stack.ca)
    cp = p.sync_passwords_once()
    assert cp.returncode == 0, cp.stderr
    assert reload_passes(cp.stderr) == [f"reloaded the server configuration: the TLS files in {stack.tls.path} changed"]
    assert renewed.key_pem().decode() not in cp.stderr
    wait_for(lambda: served_certificate(p.port).serial_number == renewed.cert.serial_number, 10, "the renewed certificate")
    assert client(p, "verify-full", stack.ca_file).returncode == 0
    assert (p.postmaster_pid(), p.psql("SELECT pg_postmaster_start_time()")) == (pid, started)
    stack.server = renewed


def test_the_sidecar_reloads_only_once_the_server_is_up(scratch_node: Node) -> None:
    """Before the server accepts connections a pass reloads nothing and remembers nothing
    (exit 3: server not up, as for the passwords), so the first pass after the start reloads."""
    ca = make_ca("pgstack pg CA")
    tls = KubeletTlsDir(scratch_node.cluster.base / "tls")
    tls.publish_pair(make_server(ca), ca)
    cp = scratch_node.sync_passwords_once(TLS_DIR=str(tls.path))
    assert cp.returncode == 3, cp.stderr
    assert "local server is not accepting connections yet; TLS files not reloaded" in cp.stderr
    assert not (scratch_node.socket_dir / ".tls-reload.state").exists()


def test_a_key_that_does_not_match_leaves_the_old_certificate_served(stack: Stack) -> None:
    p = stack.primary
    serving = served_certificate(p.port).serial_number
    bad = make_server(stack.ca)
    stack.tls.publish({"tls.crt": bad.cert_pem(), "tls.key": make_server(stack.ca).key_pem(), "ca.crt": stack.ca.cert_pem()})
    try:
        log_size = p.log_path.stat().st_size
        cp = p.sync_passwords_once()
        assert cp.returncode == 0 and len(reload_passes(cp.stderr)) == 1, cp.stderr
        wait_for(lambda: "SSL configuration was not reloaded" in p.log_path.read_text()[log_size:], 10, "the refused reload in the log")
        assert served_certificate(p.port).serial_number == serving
        assert client(p, "verify-full", stack.ca_file).returncode == 0
    finally:
        stack.tls.publish_pair(stack.server, stack.ca)
        assert p.sync_passwords_once().returncode == 0


# --------------------------------------------------------------- dumps job


@pytest.mark.parametrize(("root", "ok"), [("ca", True), ("wrong", False)])
def test_the_dumps_job_connects_with_verify_full(stack: Stack, root: str, ok: bool) -> None:
    """backup.sh with the job's libpq settings (DUMP_ENV: PGSSLMODE, PGSSLROOTCERT) against
    a server that rejects plain TCP: it dumps with the stack's CA, and stops with another."""
    c, p = stack.cluster, stack.primary
    dumps = c.job_dir(f"dumps-{root}")
    ca = stack.ca_file if root == "ca" else stack.wrong_ca_file
    env = job_env(c, dumps, "127.0.0.1", p.port, PGSSLMODE="verify-full", PGSSLROOTCERT=str(ca), BACKUP_CONNECT_SECONDS="1")
    cp = c.run_job("backup.sh", env=env, check=False, timeout=60)
    if ok:
        assert cp.returncode == 0, cp.stderr
        assert len(complete_dumps(dumps)) == 1
    else:
        assert cp.returncode != 0
        assert "certificate verify failed" in cp.stderr
        assert complete_dumps(dumps) == []


# ------------------------------------------------------------ every major


@pytest.mark.parametrize("major", ["15", "16", "17"])
def test_each_major_serves_tls_with_the_pods_settings_and_hba(pg_bin: Path, major: str) -> None:
    """PostgreSQL 18 is the module's stack; the other supported majors start with the same
    settings and pg_hba.conf and take a verify-full connection. Debian's 15 links its libssl,
    npm's 16 and 17 ship theirs (native/lib/libssl.so.1.1)."""
    ca = make_ca("pgstack pg CA")
    cluster, tls = tls_cluster(ca, make_server(ca), replication=False)
    try:
        p = cluster.primary
        use_major(p, major, pg_bin)  # the server binaries of that major (pg_bin: the 18 they are not)
        cluster.start_node(0, server_settings(tls.path))
        assert p.psql("SHOW server_version_num")[:2] == major
        ca_file = client_files(cluster.base, {"ca": ca})["ca"]
        cp = client(p, "verify-full", ca_file)
        assert cp.returncode == 0 and cp.stdout.startswith("t|"), cp.stderr
        assert "pg_hba.conf rejects connection" in client(p, "disable", None).stderr
    finally:
        cluster.close()
