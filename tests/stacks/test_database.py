"""Whole program, once per Pulumi.<stack>.yaml: resource graph, specs, outputs and secrecy."""

from __future__ import annotations

import json
import logging
import string
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from pulumi.runtime import rpc

from tests.conftest import CLAIM, PASSWORD, SECRET, STS, SVC, by_name, recorded_run, run_with, settings_of
from tools.mock_run import Registered, Run, plain, run_program
from tools.stack_files import stack_config

LONGHORN_TYPES = {
    "pgstack:index:LonghornInstall",
    "pgstack:index:LonghornStorageClass",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:storage.k8s.io/v1:StorageClass",
}
SC = "kubernetes:storage.k8s.io/v1:StorageClass"
TLS_KEY = "tls:index/privateKey:PrivateKey"


def _urn(run: Run, type_: str, name: str) -> str:
    return run.one(type_, name).urn


def test_resource_graph_types_and_names(stack_run: Run, stack: str) -> None:
    urns = [r.urn for r in stack_run.resources]
    assert len(urns) == len(set(urns)), "duplicate URNs are silently overwritten by mocks"
    names = {(r.type, r.name) for r in stack_run.resources}
    settings = settings_of(stack)
    longhorn = {
        ("pgstack:index:LonghornInstall", "longhorn"),
        ("kubernetes:core/v1:Namespace", "longhorn-ns"),
        ("kubernetes:helm.sh/v3:Release", "longhorn-release"),
    }
    assert (longhorn <= names) == settings.longhorn.install
    assert ((SC, "longhorn-sc") in names) == (settings.storage.existingClass is None)
    name = settings.postgres.name
    expected = {
        ("kubernetes:core/v1:Namespace", "database-ns"),
        ("pgstack:index:PostgresStatefulSet", name),
        ("pgstack:index:HeadlessService", f"{name}-hl"),
        (SVC, f"{name}-hl"),
        (SVC, name),
        (SECRET, f"{name}-credentials"),
        ("kubernetes:core/v1:ConfigMap", f"{name}-scripts"),
        ("kubernetes:core/v1:ServiceAccount", f"{name}-sa"),
        (STS, name),
        ("kubernetes:policy/v1:PodDisruptionBudget", f"{name}-pdb"),
        (PASSWORD, f"{name}-superuser-password"),
    }
    assert expected <= names
    assert ((PASSWORD, f"{name}-app-password") in names) == (settings.postgres.username is not None)
    # With replication on, the standby set exists even with no standby (scaling never touches the primary).
    assert ((STS, f"{name}-standby") in names) == settings.postgres.replication.enabled


def _component_of(r: Registered, name: str) -> tuple[str, str]:
    """The component each resource of the program belongs to (name: the stack's postgres.name)."""
    if r.type == SC:
        return ("pgstack:index:LonghornStorageClass", "longhorn")
    if r.name.startswith("longhorn-"):
        return ("pgstack:index:LonghornInstall", "longhorn")
    if r.name.startswith("backups-"):
        return ("pgstack:index:LonghornRecurringJobs", "backups")
    if r.name.startswith("dumps-"):
        return ("pgstack:index:LogicalBackup", "dumps")
    if r.name == f"{name}-hl":
        return ("pgstack:index:HeadlessService", f"{name}-hl")
    if r.name.startswith(f"{name}-tls-"):
        return ("pgstack:index:PostgresTls", f"{name}-tls")
    if r.name.startswith(f"{name}-monitoring-"):
        return ("pgstack:index:PostgresMonitoring", f"{name}-monitoring")
    return ("pgstack:index:PostgresStatefulSet", name)


def test_children_are_parented_to_their_component(stack_run: Run, stack: str) -> None:
    name = settings_of(stack).postgres.name
    # The stack's own: the namespace, and the rollout markers of stacks/rollout.py (state, not cluster objects).
    stack_level = ("database-ns", f"{name}-data-major", "database-engine", f"{name}-primary-template")
    for r in stack_run.resources:
        if r.type.startswith(("kubernetes:", "random:", "tls:")) and r.name not in (*stack_level, "destroy-guard"):
            assert r.parent == _urn(stack_run, *_component_of(r, name)), r.name
    # The chains: PostgresStatefulSet > HeadlessService > Service, and > PostgresTls > its certificates and
    # Secret (new URNs: no resource of a stack without TLS moved); components hang off the stack.
    headless = stack_run.one("pgstack:index:HeadlessService", f"{name}-hl")
    assert headless.parent == _urn(stack_run, "pgstack:index:PostgresStatefulSet", name)
    assert stack_run.one(SVC, f"{name}-hl").parent == headless.urn
    nested = ("pgstack:index:HeadlessService", "pgstack:index:PostgresTls")
    for tls in stack_run.of_type("pgstack:index:PostgresTls"):
        assert tls.parent == _urn(stack_run, "pgstack:index:PostgresStatefulSet", name)
    for r in stack_run.resources:
        if r.type.startswith("pgstack:index:") and r.type not in nested:
            assert r.parent == f"urn:pulumi:{stack}::pgstack::pulumi:pulumi:Stack::pgstack-{stack}", r.name


def test_storage_is_ready_before_the_database(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    for r in [*stack_run.of_type(STS), *stack_run.of_type(CLAIM)]:
        assert _urn(stack_run, "kubernetes:core/v1:Namespace", "database-ns") in r.dependencies, r.name
    for sts in stack_run.of_type(STS):
        assert sts.inputs["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == settings.storage_class
    if settings.storage.existingClass is not None:
        assert not stack_run.of_type(SC)
        return
    storage_class = stack_run.one(SC, "longhorn-sc")
    if settings.longhorn.install:
        release = stack_run.one("kubernetes:helm.sh/v3:Release", "longhorn-release")
        assert _urn(stack_run, "kubernetes:core/v1:Namespace", "longhorn-ns") in release.dependencies
        assert release.urn in storage_class.dependencies
    # The class moved out of LonghornInstall; the alias keeps it from being replaced.
    assert storage_class.options.aliases == (f"urn:pulumi:{stack}::pgstack::pgstack:index:LonghornInstall::longhorn::",)
    for r in [*stack_run.of_type(STS), *stack_run.of_type(CLAIM)]:
        assert storage_class.urn in r.dependencies, r.name
    # The class name is a known string, not the class's output: a replaced class is unknown during
    # preview, and an unknown volumeClaimTemplates would replace the StatefulSets with it.
    for r in [*stack_run.of_type(STS), *stack_run.of_type(CLAIM)]:
        assert storage_class.urn not in r.property_dependencies.get("spec", []), r.name
    # Issue 16, 9: the read-write Service's endpoint wait starts after the StatefulSets (which wait for
    # the storage above), never from the namespace on while Longhorn is still installing.
    rw = next(s for s in stack_run.of_type("kubernetes:core/v1:Service") if s.name == settings.postgres.name)
    assert {sts.urn for sts in stack_run.of_type(STS)} <= set(rw.dependencies)


def _pod(sts: Registered) -> dict[str, Any]:
    return dict(plain(sts.inputs["spec"]["template"]["spec"]))


def _container(sts: Registered, name: str = "postgres") -> dict[str, Any]:
    return next(c for c in _pod(sts)["containers"] if c["name"] == name)


# The official image's data layout per major (docker-library/postgres): 18 moved the volume up a level.
DATA_LAYOUT = {major: ("/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata") for major in (15, 16, 17)} | {
    18: ("/var/lib/postgresql", "/var/lib/postgresql/18/docker")
}


def test_statefulset_spec(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    name = settings.postgres.name
    sts = stack_run.one(STS, name)
    spec = plain(sts.inputs["spec"])
    claim = spec["volumeClaimTemplates"][0]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert claim["resources"]["requests"]["storage"] == settings.postgres.storageSize
    assert spec["serviceName"] == f"{name}-hl"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}

    pg = _container(sts)
    env = {e["name"]: e.get("value") for e in pg["env"]}
    mount = next(m["mountPath"] for m in pg["volumeMounts"] if m["name"] == "data")
    assert (mount, env["PGDATA"]) == DATA_LAYOUT[settings.postgres.image.major]
    assert env["PGDATA"].startswith(mount + "/")
    # Never trust auth, never a password literal in env.
    assert "POSTGRES_HOST_AUTH_METHOD" not in env and "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"].startswith("/etc/postgresql/secrets/")
    for probe in ("startupProbe", "livenessProbe"):
        assert pg[probe]["exec"]["command"][0] == "pg_isready"
    # A restarting database gets 15 minutes of startup before liveness may kill it.
    assert pg["startupProbe"]["periodSeconds"] * pg["startupProbe"]["failureThreshold"] >= 900
    assert pg["resources"] == settings.postgres.resources.model_dump()
    # The WAL budget is derived from the volume by init.sh, never fixed in the pod template.
    assert not [a for a in pg["args"] if a.startswith(("max_wal_size=", "wal_keep_size=", "max_slot_wal_keep_size="))]


def test_services(stack_run: Run, stack: str) -> None:
    pg = settings_of(stack).postgres
    services = by_name(stack_run, SVC)
    headless = plain(services[f"{pg.name}-hl"].inputs["spec"])
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert headless["ports"] == [{"name": "postgresql", "port": 5432, "protocol": "TCP", "targetPort": "postgresql"}]
    client = plain(services[pg.name].inputs["spec"])
    assert client["type"] == pg.service.type
    node_port = {"nodePort": pg.service.nodePort} if pg.service.nodePort is not None else {}
    assert client["ports"] == [{"name": "postgresql", "port": pg.service.port, "protocol": "TCP", "targetPort": "postgresql", **node_port}]
    assert client["selector"]["statefulset.kubernetes.io/pod-name"] == (pg.replication.primary or f"{pg.name}-0")


def test_service_type_and_node_port_from_config() -> None:
    run = run_with({"pgstack:postgres": {"service": {"type": "NodePort", "nodePort": 30432}}})
    client = plain(run.one(SVC, "postgres").inputs["spec"])
    assert client["type"] == "NodePort" and client["ports"][0]["nodePort"] == 30432
    lb = run_with({"pgstack:postgres": {"service": {"type": "LoadBalancer"}}})
    assert lb.one(SVC, "postgres").inputs["spec"]["type"] == "LoadBalancer"


def test_outputs(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    pg, ns = settings.postgres, settings.namespace
    user, database = (pg.username, pg.database) if pg.username is not None else ("postgres", "postgres")
    out = stack_run.outputs
    assert out["namespace"] == ns
    assert out["headlessService"] == f"{pg.name}-hl"
    assert out["host"] == f"{pg.name}.{ns}.svc.cluster.local"
    assert (out["port"], out["database"], out["user"]) == (pg.service.port, database, user)
    assert out["secretName"] == f"{pg.name}-credentials"
    assert out["storageClass"] == settings.storage_class
    uri = out["connectionUri"]
    # With TLS a client verifies the server's certificate and name (sslmode=verify-full, libpq's strictest).
    query = "?sslmode=verify-full" if settings.tls.enabled else ""
    assert uri.startswith(f"postgresql://{user}:") and uri.endswith(f"@{out['host']}:{pg.service.port}/{database}{query}")
    assert stack_run.secret_outputs == {"connectionUri"}
    # The CA clients trust: the generated one's PEM (not secret), exported only with TLS on.
    assert ("caCertificate" in out) == settings.tls.enabled
    if settings.tls.enabled and settings.tls.certManager is None and settings.tls.existingSecret is None:
        assert out["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_passwords_are_secrets_everywhere(stack_run: Run, stack: str) -> None:
    generated = stack_run.generated
    # Every password, and every private key the TLS mock made (tools/mock_tls.py).
    assert len(generated) == len(stack_run.of_type(PASSWORD)) + len(stack_run.of_type(TLS_KEY))
    assert len(stack_run.of_type(PASSWORD)) >= 2
    secret = stack_run.one(SECRET, f"{settings_of(stack).postgres.name}-credentials")
    data = secret.inputs["stringData"]
    whole = rpc.is_rpc_secret(data)
    for key, value in (rpc.unwrap_rpc_secret(data) if whole else data).items():
        assert whole or rpc.is_rpc_secret(value), f"Secret key {key} is not wrapped as a secret"
        assert plain(value) in generated
    for r in stack_run.resources:
        if r.type in (SECRET, PASSWORD):
            continue
        if r.type.startswith("tls:"):
            # pulumi-tls takes the keys it signs with as inputs: only ever wrapped as secrets.
            for key, value in r.inputs.items():
                assert rpc.is_rpc_secret(value) or not any(g in json.dumps(value, default=str) for g in generated), (r.name, key)
            continue
        text = json.dumps(plain(r.inputs), default=str)
        for value in generated:
            assert value not in text, f"a generated password leaked into {r.type} {r.name}"
    for key, value in stack_run.outputs.items():
        if key not in stack_run.secret_outputs:
            assert not any(g in json.dumps(value, default=str) for g in generated), key
    # The connection URI carries its user's password (the application user's, else the superuser's), and only as a secret.
    data = plain(secret.inputs["stringData"])
    password = data["password"] if settings_of(stack).postgres.username is not None else data["postgres-password"]
    assert f":{password}@" in stack_run.outputs["connectionUri"]


# RandomPassword's arguments as the provider documents them (pulumi-random, from terraform-provider-random):
# lower, upper, numeric and special default to true; special draws from PROVIDER_SPECIAL unless
# overrideSpecial is set; every min* defaults to 0, and length must be at least their sum.
PROVIDER_CLASSES = {"lower": string.ascii_lowercase, "upper": string.ascii_uppercase, "numeric": string.digits}
PROVIDER_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
MINIMUMS = {"minLower": "lower", "minUpper": "upper", "minNumeric": "numeric", "minSpecial": "special"}
# RFC 3986 unreserved characters: the only ones a URI's userinfo carries unescaped and unchanged.
URI_UNRESERVED = set(string.ascii_letters + string.digits + "-._~")
# libpq's password file: ':' separates fields, '\\' escapes, a line ends at a newline.
PGPASS_SPECIAL = {":", "\\", "\n", "\r"}


def allowed_characters(args: dict[str, Any]) -> str:
    """Every character RandomPassword may put in a result, given its arguments."""
    chars = "".join(cs for key, cs in PROVIDER_CLASSES.items() if args.get(key, True))
    if args.get("special", True):
        chars += args.get("overrideSpecial") or PROVIDER_SPECIAL
    return chars


def test_random_password_arguments(stack_run: Run) -> None:
    passwords = stack_run.of_type(PASSWORD)
    assert passwords
    for pw in passwords:
        args = plain(pw.inputs)
        assert args["length"] >= 32, pw.name
        # Every minimum is satisfiable: its class is on, and together they fit in the length.
        minimums = {key: args.get(key, 0) for key in MINIMUMS}
        assert sum(minimums.values()) <= args["length"], pw.name
        assert all(args.get(MINIMUMS[key], True) for key, n in minimums.items() if n), f"{pw.name}: a minimum for a class that is off"
        # At least 128 bits: the alphabet the arguments allow, to the power of the length.
        alphabet = set(allowed_characters(args))
        assert len(alphabet) ** args["length"] >= 2**128, f"{pw.name}: {len(alphabet)} characters, length {args['length']}"


def test_every_character_a_password_may_hold_is_safe_in_a_uri_and_a_pgpass_file(stack_run: Run) -> None:
    for pw in stack_run.of_type(PASSWORD):
        allowed = set(allowed_characters(plain(pw.inputs)))
        assert allowed <= URI_UNRESERVED, f"{pw.name} may generate {sorted(allowed - URI_UNRESERVED)}: a connection URI must escape them"
        assert not allowed & PGPASS_SPECIAL, f"{pw.name} may generate {sorted(allowed & PGPASS_SPECIAL)}"


def test_the_connection_uri_carries_a_password_of_every_allowed_character(stack: str) -> None:
    # The mock's passwords hold every character their arguments allow (not fake_password's alphabet).
    run = run_program(stack_config(stack), stack=stack, run=Run(password=lambda args, name: allowed_characters(args)))
    uri = urlsplit(run.outputs["connectionUri"])
    settings = settings_of(stack)
    pg = settings.postgres
    user, database = (pg.username, pg.database) if pg.username is not None else ("postgres", "postgres")
    assert (uri.scheme, uri.username, uri.hostname, uri.port, uri.path) == (
        "postgresql",
        user,
        f"{pg.name}.{settings.namespace}.svc.cluster.local",
        pg.service.port,
        f"/{database}",
    )
    # The password arrives whole and unchanged: no character ended the userinfo or needed escaping.
    assert uri.password is not None and unquote(uri.password) == uri.password
    assert uri.password in {allowed_characters(plain(pw.inputs)) for pw in run.of_type(PASSWORD)}


def test_existing_storage_class_skips_longhorn() -> None:
    run = run_with({"pgstack:longhorn": {"install": False}, "pgstack:storage": {"existingClass": "csi-disk"}})
    assert not [r for r in run.resources if r.type in LONGHORN_TYPES]
    sts = run.one(STS, "postgres")
    assert sts.inputs["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "csi-disk"
    assert run.outputs["storageClass"] == "csi-disk"


def test_superuser_only_when_no_app_user() -> None:
    run = run_with({"pgstack:postgres": {"username": None}})
    assert "password" not in plain(run.one(SECRET, "postgres-credentials").inputs["stringData"])
    assert (run.outputs["user"], run.outputs["database"]) == ("postgres", "postgres")
    assert sorted(p.name for p in run.of_type(PASSWORD)) == ["postgres-replication-password", "postgres-superuser-password"]


def test_image_major_selects_data_layout() -> None:
    run = run_with({"pgstack:postgres": {"image": {"tag": "16.4"}}})
    pg = _container(run.one(STS, "postgres"))
    env = {e["name"]: e.get("value") for e in pg["env"]}
    assert env["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert next(m["mountPath"] for m in pg["volumeMounts"] if m["name"] == "data") == "/var/lib/postgresql/data"
    assert pg["image"] == "docker.io/library/postgres:16.4"


def test_replicas_without_replication_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        run = run_with({"pgstack:postgres": {"replicas": 3, "replication": {"enabled": False}}})
    assert run.one(STS, "postgres").inputs["spec"]["replicas"] == 3
    assert any("3 with replication.enabled false" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_with({})
    assert not [r for r in caplog.records if "replication.enabled" in r.getMessage()]


PODMONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def test_monitoring_objects_follow_the_metrics_settings(stack_run: Run, stack: str) -> None:
    settings = settings_of(stack)
    m, name = settings.metrics, settings.postgres.name
    assert len(stack_run.of_type(PODMONITOR)) == int(m.enabled and m.podMonitor)
    assert len(stack_run.of_type(RULE)) == int(m.enabled and m.prometheusRule)
    for obj in stack_run.of_type(PODMONITOR) + stack_run.of_type(RULE):
        metadata = plain(obj.inputs["metadata"])
        assert metadata["namespace"] == settings.namespace
        assert m.labels.items() <= metadata.get("labels", {}).items()
        assert obj.parent == _urn(stack_run, "pgstack:index:PostgresMonitoring", f"{name}-monitoring")
    for monitor in stack_run.of_type(PODMONITOR):
        # It selects the pods of both sets: the labels every pod template carries.
        selector = plain(monitor.inputs["spec"])["selector"]["matchLabels"]
        for sts in stack_run.of_type(STS):
            assert selector.items() <= plain(sts.inputs["spec"])["template"]["metadata"]["labels"].items()


def test_the_certificate_alert_reads_the_generated_certificate(stack_run: Run, stack: str) -> None:
    # The alert fires 14 days before the end of validity of the certificate the program generated: the time in its
    # expression is the one in the Secret's tls.crt (real PEMs under the mocks, tools/mock_tls.py).
    from cryptography import x509

    settings = settings_of(stack)
    tls, metrics, name = settings.tls, settings.metrics, settings.postgres.name
    generated = tls.enabled and tls.existingSecret is None and tls.certManager is None
    rules = [r for rule in stack_run.of_type(RULE) for g in plain(rule.inputs["spec"])["groups"] for r in g["rules"]]
    cert_rules = [r for r in rules if r.get("alert") == "PostgresCertificateExpiring"]
    assert len(cert_rules) == int(generated and metrics.enabled and metrics.prometheusRule)
    for rule in cert_rules:
        pem = plain(stack_run.one(SECRET, f"{name}-tls-secret").inputs["stringData"])["tls.crt"]
        not_after = int(x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.timestamp())
        assert rule["expr"].startswith(f"vector({not_after}) - time() < 14 * ")


def test_an_archiving_stack_alerts_on_its_archive_and_base_backups() -> None:
    # prod with its S3 account archives (tests/components/wal_runs.py): the archiving alerts and the base-backup
    # CronJob's; prod without it does not archive, and has neither.
    from tests.components.wal_runs import wal_prod

    def alerts(run: Run) -> dict[str, dict[str, Any]]:
        groups = [g for rule in run.of_type(RULE) for g in plain(rule.inputs["spec"])["groups"]]
        return {r["alert"]: r for g in groups for r in g["rules"]}

    archiving = alerts(wal_prod())
    name = settings_of("prod").postgres.name
    assert {"PostgresWalArchivingFailing", "PostgresWalArchiveBehind", "PostgresBaseBackupMissing"} <= set(archiving)
    assert f'cronjob="{name}-wal"' in archiving["PostgresBaseBackupMissing"]["expr"]
    # archiveTimeout (5min) plus as long again for an upload.
    assert "pg_stat_archiver_last_archive_age{" in archiving["PostgresWalArchiveBehind"]["expr"]
    assert "} > 600 and " in archiving["PostgresWalArchiveBehind"]["expr"]
    assert not {"PostgresWalArchivingFailing", "PostgresBaseBackupMissing"} & set(alerts(recorded_run("prod")))
