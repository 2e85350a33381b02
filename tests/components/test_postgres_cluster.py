"""PostgresCluster: passwords only in Secrets (basic-auth for the operator, the dump's layout for the job), the
Cluster protected and retained, children parented, the cert-manager Certificate on the operator's names."""

from __future__ import annotations

import pytest

from components.longhorn_backups_args import recurring_job_labels
from components.postgres_cluster_spec import server_alt_names
from stacks.config import ConfigError, parse_settings
from tests.stacks.test_database_cnpg import CLUSTER, cluster_of, cnpg_run
from tools.mock_run import Run, plain

SECRET = "kubernetes:core/v1:Secret"


def test_secrets_and_what_the_cluster_names() -> None:
    run = cnpg_run("prod")
    component = run.one("pgstack:index:PostgresCluster", "postgres")
    secrets = {r.name: r for r in run.of_type(SECRET)}
    assert set(secrets) == {"postgres-credentials", "postgres-app-user", "postgres-superuser-user"}
    for secret in secrets.values():
        assert secret.parent == component.urn and secret.options.protect, secret.name
    app, superuser = (plain(secrets[n].inputs) for n in ("postgres-app-user", "postgres-superuser-user"))
    assert app["type"] == superuser["type"] == "kubernetes.io/basic-auth"
    assert (app["stringData"]["username"], superuser["stringData"]["username"]) == ("app", "postgres")
    credentials = plain(secrets["postgres-credentials"].inputs)["stringData"]
    # The dump job's scripts read these keys (the StatefulSet engine's layout); the same passwords.
    assert credentials == {"postgres-password": superuser["stringData"]["password"], "password": app["stringData"]["password"]}
    assert set(run.generated) == set(credentials.values())
    spec = cluster_of(run)["spec"]
    assert spec["superuserSecret"]["name"] == "postgres-superuser-user"
    assert spec["bootstrap"]["initdb"]["secret"]["name"] == "postgres-app-user"
    cluster = run.one(CLUSTER, "postgres")
    assert cluster.parent == component.urn
    for name in ("postgres-credentials", "postgres-app-user", "postgres-superuser-user"):
        assert secrets[name].urn in cluster.dependencies, name


def test_prod_settings_reach_the_cluster() -> None:
    spec = cluster_of(cnpg_run("prod"))["spec"]
    assert spec["instances"] == 3 and spec["enablePDB"] is True
    assert spec["imageName"].startswith("docker.io/library/postgres:18.6@sha256:86c951e0")
    assert spec["storage"] == {"storageClass": "longhorn-postgres", "size": "20Gi"}
    assert spec["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    # prod snapshots and backs up its volumes: the operator's claims carry the Longhorn group label.
    assert spec["inheritedMetadata"]["labels"] == recurring_job_labels("longhorn-postgres")


def test_cert_manager_certificate_names_the_operators_services() -> None:
    issuer = {"issuerRef": {"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}
    run = cnpg_run("dev", {"tls": {"enabled": True, "certManager": issuer}})
    (cert,) = run.of_type("kubernetes:cert-manager.io/v1:Certificate")
    spec = plain(cert.inputs)["spec"]
    assert spec["dnsNames"] == server_alt_names("postgres", "postgres", "cluster.local")
    assert spec["secretName"] == "postgres-tls"
    assert cluster_of(run)["spec"]["certificates"] == {"serverTLSSecret": "postgres-tls", "serverCASecret": "postgres-tls"}
    assert cert.urn in run.one(CLUSTER, "postgres").dependencies
    assert cnpg_run("dev", {"tls": {"enabled": True, "existingSecret": "mine"}}).of_type("kubernetes:cert-manager.io/v1:Certificate") == []


def test_a_retained_cluster_is_adopted_only_when_named() -> None:
    assert run_cluster_import_id(cnpg_run("dev")) == ""
    adopted = cnpg_run("dev", {"adopt": ["cluster/postgres/postgres"]})
    assert run_cluster_import_id(adopted) == "postgres/postgres"
    with pytest.raises(ConfigError, match=r"pgstack:adopt: got \"cluster/postgres/postgres\""):
        parse_settings({"adopt": ["cluster/postgres/postgres"]}, "dev")


def run_cluster_import_id(run: Run) -> str:
    return run.one(CLUSTER, "postgres").options.import_id
