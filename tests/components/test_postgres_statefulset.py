"""PostgresStatefulSet on its own: roles, selectors, pod template, PDB, scheduling and rollouts."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_pod import script_files
from components.postgres_statefulset import PostgresStatefulSet
from tests.conftest import CLAIM, PASSWORD, SECRET, STS, SVC, by_name, cached_run, run_component
from tools.mock_run import Run
from tools.mock_run import plain as _plain


def _fresh(**overrides: Any) -> Run:
    def program() -> None:
        args = PostgresStatefulSetArgs(namespace="db", storage_class="fast", image="postgres:18.1", **overrides)
        pg = PostgresStatefulSet("pg", args)
        pulumi.export("uri", pg.connection_uri)
        pulumi.export("ro", pg.read_only_host)

    return run_component(program)


def _build(**overrides: Any) -> Run:
    """The component with these overrides, run once per worker (most tests read replicas=2 or 3; cached_run); each
    caller gets its own copy. A test that needs two runs of one configuration (new mock passwords each) calls _fresh."""
    return cached_run(json.dumps(["PostgresStatefulSet", overrides], sort_keys=True), lambda: _fresh(**overrides))


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pods(run: Run) -> list[dict[str, str]]:
    """The labels every pod of every StatefulSet would carry, with the controller's per-pod labels."""
    pods = []
    for sts in run.of_type(STS):
        spec = _plain(sts.inputs["spec"])
        start = (spec.get("ordinals") or {}).get("start", 0)
        for ordinal in range(start, start + spec["replicas"]):
            name = f"{sts.inputs['metadata']['name']}-{ordinal}"
            pods.append(spec["template"]["metadata"]["labels"] | {"statefulset.kubernetes.io/pod-name": name, "ordinal": str(ordinal)})
    return pods


def test_three_replicas_primary_and_standbys() -> None:
    run = _build(replicas=3)
    sts = by_name(run, STS)
    assert set(sts) == {"pg", "pg-standby"}
    assert sts["pg"].inputs["spec"]["replicas"] == 1
    assert sts["pg-standby"].inputs["spec"]["replicas"] == 2
    assert sts["pg-standby"].inputs["spec"]["ordinals"] == {"start": 1}
    for s in sts.values():
        assert s.inputs["spec"]["serviceName"] == "pg-hl"
        assert s.inputs["spec"]["podManagementPolicy"] == "OrderedReady"
    pods = _pods(run)
    assert sorted(p["statefulset.kubernetes.io/pod-name"] for p in pods) == ["pg-0", "pg-standby-1", "pg-standby-2"]

    services = by_name(run, SVC)
    rw, ro = services["pg"].inputs["spec"]["selector"], services["pg-ro"].inputs["spec"]["selector"]
    assert [p["ordinal"] for p in pods if _matches(rw, p)] == ["0"]
    assert sorted(p["ordinal"] for p in pods if _matches(ro, p)) == ["1", "2"]
    headless = services["pg-hl"].inputs["spec"]
    assert headless["publishNotReadyAddresses"] is True
    assert len([p for p in pods if _matches(headless["selector"], p)]) == 3
    assert run.outputs["ro"] == "pg-ro.db.svc.cluster.local"


def _env(sts: Any) -> dict[str, str]:
    c = next(c for c in _plain(sts.inputs["spec"])["template"]["spec"]["containers"] if c["name"] == "postgres")
    return {e["name"]: e.get("value") for e in c["env"]}


def test_replication_settings_reach_the_pods() -> None:
    run = _build(replicas=2, max_lag_bytes=1234, accept_wal_loss_up_to="0/3000148")
    env = _env(run.one(STS, "pg-standby"))
    assert env["REPLICATION_ENABLED"] == "true"
    assert env["PRIMARY_HOST"] == "pg-0.pg-hl.db.svc.cluster.local"
    assert env["READINESS_MAX_LAG_BYTES"] == "1234"
    assert env["PROMOTE_ACCEPT_WAL_LOSS_UP_TO"] == "0/3000148"
    assert _env(_build(replicas=2).one(STS, "pg-standby"))["PROMOTE_ACCEPT_WAL_LOSS_UP_TO"] == ""
    assert "replication-password" in _plain(run.one(SECRET, "pg-credentials").inputs["stringData"])
    assert {p.name for p in run.of_type(PASSWORD)} == {"pg-superuser-password", "pg-app-password", "pg-replication-password"}
    args = _plain(run.one(STS, "pg").inputs["spec"])["template"]["spec"]["containers"][0]["args"]
    assert "wal_level=replica" in args and "hot_standby=on" in args


def test_replication_off_is_one_statefulset_of_unrelated_pods() -> None:
    run = _build(replicas=3, replication=False)
    assert [s.name for s in run.of_type(STS)] == ["pg"]
    assert run.one(STS, "pg").inputs["spec"]["replicas"] == 3
    assert "pg-ro" not in by_name(run, SVC)
    assert "replication-password" not in _plain(run.one(SECRET, "pg-credentials").inputs["stringData"])
    assert _env(run.one(STS, "pg"))["REPLICATION_ENABLED"] == "false"
    assert run.outputs["ro"] is None
    assert sorted(c.inputs["metadata"]["name"] for c in run.of_type(CLAIM)) == ["data-pg-0", "data-pg-1", "data-pg-2"]


def _primary_template(replicas: int) -> Any:
    return _plain(_build(replicas=replicas).one(STS, "pg").inputs["spec"])["template"]["spec"]


def test_scaling_the_standbys_never_touches_the_primary() -> None:
    # Replication is configured from the first pod: 1 -> 2 -> 1 only changes the standby set.
    one, two = _build(replicas=1), _build(replicas=2)
    assert one.one(STS, "pg-standby").inputs["spec"]["replicas"] == 0
    assert two.one(STS, "pg-standby").inputs["spec"]["replicas"] == 1
    assert _env(one.one(STS, "pg"))["REPLICATION_ENABLED"] == "true"
    assert _primary_template(1) == _primary_template(2)
    assert one.outputs["ro"] is None and two.outputs["ro"] == "pg-ro.db.svc.cluster.local"


def test_every_pod_has_a_claim_that_exists_before_its_statefulset() -> None:
    run = _build(replicas=3, storage_size="5Gi")
    claims = run.of_type(CLAIM)
    assert sorted(c.inputs["metadata"]["name"] for c in claims) == ["data-pg-0", "data-pg-standby-1", "data-pg-standby-2"]
    for claim in claims:
        spec = _plain(claim.inputs["spec"])
        assert spec == {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}
        # Scale-down and destroy forget the claim; server-side apply takes the size over.
        assert claim.options.retain_on_delete and not claim.options.protect
        assert claim.inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true", "pulumi.com/skipAwait": "true"}
    for sts in run.of_type(STS):
        assert {c.urn for c in claims} <= set(sts.dependencies), sts.name
        # A size change goes through the claims: the immutable template never replaces the set.
        assert sts.options.ignore_changes == ("spec.volumeClaimTemplates",)
        template = _plain(sts.inputs["spec"])["volumeClaimTemplates"][0]
        assert template["metadata"]["name"] == "data"


def test_growing_the_volume_changes_only_the_claims() -> None:
    small, large = _build(replicas=2, storage_size="1Gi"), _build(replicas=2, storage_size="2Gi")
    for name in ("pg", "pg-standby"):
        a, b = _plain(small.one(STS, name).inputs["spec"]), _plain(large.one(STS, name).inputs["spec"])
        a.pop("volumeClaimTemplates"), b.pop("volumeClaimTemplates")  # ignored by the engine
        for spec in (a, b):
            spec["template"]["metadata"]["annotations"].pop("checksum/secret")  # random per mock run
        assert a == b, f"{name}: a resize must not roll the pods"
    assert {_plain(c.inputs["spec"])["resources"]["requests"]["storage"] for c in large.of_type(CLAIM)} == {"2Gi"}


def test_protect_covers_the_stateful_resources_only() -> None:
    run = _build(replicas=2)
    protected = {r.name for r in run.resources if r.options.protect}
    # Not the RandomPasswords: replacing one only rotates a password (the Secret, protected, holds them),
    # and protect would refuse every rotation (docs/operations.md#changing-a-live-stack).
    assert protected == {"pg", "pg-standby", "pg-credentials"}
    assert not any(r.options.protect for r in _build(replicas=2, protect=False).resources)


def test_pulumi_up_waits_for_the_primary_only() -> None:
    run = _build(replicas=3)
    primary = run.one(STS, "pg").inputs["metadata"]["annotations"]
    standby = run.one(STS, "pg-standby").inputs["metadata"]["annotations"]
    # The startup probe allows 15 minutes of crash recovery; the await outlasts it.
    assert int(primary["pulumi.com/timeoutSeconds"]) >= 15 * 60 + 60 and "pulumi.com/skipAwait" not in primary
    assert standby["pulumi.com/skipAwait"] == "true"
    services = by_name(run, SVC)
    assert services["pg-ro"].inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert not services["pg"].inputs["metadata"].get("annotations")


def _awaits(run: Run) -> dict[str, dict[str, str]]:
    """Every object's pulumi.com/ await annotations (skipAwait, timeoutSeconds), by name."""
    out = {}
    for r in run.resources:
        meta = _plain(r.inputs.get("metadata") or {})
        found = {k: v for k, v in (meta.get("annotations") or {}).items() if k in ("pulumi.com/skipAwait", "pulumi.com/timeoutSeconds")}
        if r.type.startswith("kubernetes:") and meta.get("name"):
            out[f"{r.type.rsplit(':', 1)[-1]} {r.name}"] = found
    return out


def test_pulumi_up_waits_for_the_primary_on_pod_0_and_never_for_a_claim() -> None:
    awaits = _awaits(_build(replicas=3))
    assert awaits["StatefulSet pg"] == {"pulumi.com/timeoutSeconds": "1200"}
    assert awaits["StatefulSet pg-standby"] == awaits["Service pg-ro"] == {"pulumi.com/skipAwait": "true"}
    # The read-write Service waits after the primary's set, at the provider's default.
    assert awaits["Service pg"] == {}
    # The provider's claim wait is a hard 5 minutes (awaiters.go): never used.
    for claim in ("pg-data-pg-0", "pg-data-pg-standby-1", "pg-data-pg-standby-2"):
        assert awaits[f"PersistentVolumeClaimPatch {claim}"] == {"pulumi.com/skipAwait": "true"}


def test_after_a_failover_only_the_read_write_service_waits_for_the_new_primary() -> None:
    """replication.primary moved to a standby pod (README "Runbook: lose the primary's node for good"):
    pg-0 is a standby then, maybe diverged, and the primary shares its set with standbys: neither set
    is awaited; the read-write Service, which selects only the primary, waits 20 minutes for it."""
    run = _build(replicas=3, primary_pod="pg-standby-1")
    sets = {r.name: _plain(r.inputs["metadata"]["annotations"]) for r in run.of_type(STS)}
    assert sets["pg"]["pulumi.com/skipAwait"] == sets["pg-standby"]["pulumi.com/skipAwait"] == "true"
    assert not any("pulumi.com/timeoutSeconds" in a for a in sets.values())
    rw = by_name(run, SVC)["pg"]
    assert _plain(rw.inputs["metadata"]["annotations"]) == {"pulumi.com/timeoutSeconds": "1200"}
    assert _plain(rw.inputs["spec"])["selector"]["statefulset.kubernetes.io/pod-name"] == "pg-standby-1"


def test_sets_roll_one_after_the_other_and_services_wait_for_them() -> None:
    """The set that runs the primary is applied (and awaited) first; the other set depends on it, so its
    pods roll only after the primary's rollout; the Services' endpoint waits start after both sets."""
    for primary, first, second in ((None, "pg", "pg-standby"), ("pg-standby-1", "pg-standby", "pg")):
        run = _build(replicas=3, primary_pod=primary)
        sets = by_name(run, STS)
        assert sets[first].urn in sets[second].dependencies and sets[second].urn not in sets[first].dependencies
        for svc in by_name(run, SVC).values():
            if svc.name != "pg-hl":
                assert {sets["pg"].urn, sets["pg-standby"].urn} <= set(svc.dependencies), svc.name


def _annotations(run: Run, name: str = "pg") -> dict[str, str]:
    return dict(_plain(run.one(STS, name).inputs["spec"]["template"]["metadata"]["annotations"]))


def test_pod_template_rolls_when_a_password_changes() -> None:
    first, second = _annotations(_fresh()), _annotations(_fresh())
    # Mocks generate new passwords each run: the secret checksum moves, the scripts one does not.
    assert first["checksum/secret"] != second["checksum/secret"]
    assert first["checksum/scripts"] == second["checksum/scripts"]
    assert len(first["checksum/secret"]) == 64


def test_password_rotation_knob_feeds_every_password_keeper() -> None:
    for rotation in (1, 7):
        run = _build(replicas=2, password_rotation=rotation)
        passwords = run.of_type(PASSWORD)
        assert len(passwords) == 3
        assert all(p.inputs["keepers"] == {"rotation": str(rotation)} for p in passwords)


def test_pdb_and_scheduling_soft_and_hard() -> None:
    soft = _build(replicas=3)
    pdb = _plain(soft.one("kubernetes:policy/v1:PodDisruptionBudget", "pg-pdb").inputs["spec"])
    assert pdb["maxUnavailable"] == 1
    # A standby that never becomes ready must not block node drains.
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert all(_matches(pdb["selector"]["matchLabels"], p) for p in _pods(soft))
    pod = _plain(soft.one(STS, "pg").inputs["spec"])["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"

    hard = _plain(_build(replicas=3, anti_affinity="hard").one(STS, "pg-standby").inputs["spec"])["template"]["spec"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard["affinity"]["podAntiAffinity"]
    assert hard["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_scripts_ship_read_only_through_a_configmap() -> None:
    run = _build()
    cm = run.one("kubernetes:core/v1:ConfigMap", "pg-scripts")
    assert cm.inputs["data"] == script_files()
    pod = _plain(run.one(STS, "pg").inputs["spec"])["template"]["spec"]
    scripts = next(v for v in pod["volumes"] if v["name"] == "scripts")
    assert scripts["configMap"] == {"name": "pg-scripts", "defaultMode": 0o555}
    for container in pod["containers"] + pod["initContainers"]:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "scripts")
        assert mount["readOnly"] is True


def test_promotion_runbook_moves_the_primary() -> None:
    run = _build(replicas=3, primary_pod="pg-standby-1")
    rw = run.one(SVC, "pg").inputs["spec"]["selector"]
    pods = _pods(run)
    assert [p["statefulset.kubernetes.io/pod-name"] for p in pods if _matches(rw, p)] == ["pg-standby-1"]
    for sts in ("pg", "pg-standby"):
        env = _env(run.one(STS, sts))
        assert env["PRIMARY_POD"] == "pg-standby-1"
        assert env["PRIMARY_HOST"] == "pg-standby-1.pg-hl.db.svc.cluster.local"
    default = _env(_build(replicas=3).one(STS, "pg-standby"))
    assert default["PRIMARY_POD"] == "pg-0"
    assert default["PEERS_HOST"] == "pg-hl.db.svc.cluster.local"
    assert default["DATA_MOUNT"] == "/var/lib/postgresql"


def test_postgres_listens_on_the_shared_socket_and_sidecar_is_probed() -> None:
    pod = _plain(_build().one(STS, "pg").inputs["spec"])["template"]["spec"]
    postgres, sidecar = pod["containers"]
    assert "unix_socket_directories=/var/run/postgresql" in postgres["args"]
    assert sidecar["name"] == "password-sync"
    # Supervised (liveness) but never in charge of the pod's readiness: that is the database's.
    assert sidecar["livenessProbe"]["exec"]["command"] == ["/scripts/sync-passwords.sh", "--alive"]
    assert "readinessProbe" not in sidecar
    assert postgres["readinessProbe"]["exec"]["command"] == ["/scripts/readiness.sh"]
    assert pod["initContainers"][0]["command"] == ["/scripts/init.sh"]


def test_every_container_gets_the_one_env_mapping_in_its_order() -> None:
    from components.pod_env_contract import POD_ENV
    from components.postgres_conf import data_layout
    from components.postgres_pod import postgres_env

    args = PostgresStatefulSetArgs(namespace="db", storage_class="fast", image="postgres:17.6", replicas=2, max_lag_bytes=99)
    env = postgres_env("pg", args, data_layout(args.image_major), "primary.example", "peers.example")
    assert env["PGDATA"] == "/var/lib/postgresql/data/pgdata" and env["READINESS_MAX_LAG_BYTES"] == "99"
    assert env["STACK_PG_MAJOR"] == "17"  # the tag's major: init.sh refuses a digest that runs another
    assert "POD_NAME" not in env  # from the downward API, declared in the contract
    pod = _plain(_build(replicas=2, max_lag_bytes=99).one(STS, "pg-standby").inputs["spec"])["template"]["spec"]
    for container in pod["initContainers"] + pod["containers"]:
        assert [e["name"] for e in container["env"]] == list(POD_ENV.pod_names()), container["name"]
        assert {e["name"] for e in container["env"] if "value" in e} == set(env), container["name"]
