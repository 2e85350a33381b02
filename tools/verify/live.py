"""KubernetesCluster: the Cluster protocol over the official kubernetes client, for a real cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from tools.verify.cluster import (
    CONTAINER,
    FIELD_MANAGER,
    LONGHORN_BACKUP_VOLUME_LABEL,
    LONGHORN_DRIVER,
    CronJobStatus,
    Endpoint,
    ExecResult,
    LonghornBackup,
    PodState,
)
from tools.verify.steps import psql_local_command, psql_service_command

# ---------------------------------------------------------------- the real cluster


def _not_found(exc: ApiException) -> bool:
    return bool(exc.status == 404)


@contextlib.contextmanager
def _absent_is_none() -> Iterator[None]:
    """Turn a 404 into the caller's None (the caller returns None after the block)."""
    try:
        yield
    except ApiException as exc:
        if not _not_found(exc):
            raise


class KubernetesCluster:
    """``Cluster`` over the official kubernetes client, in one database namespace."""

    def __init__(
        self,
        namespace: str,
        longhorn_namespace: str,
        core: client.CoreV1Api,
        apps: client.AppsV1Api,
        batch: client.BatchV1Api,
        custom: client.CustomObjectsApi,
        exec_stream: Callable[..., Any] = stream,
        exec_timeout: float = 60.0,
    ) -> None:
        self.namespace = namespace
        self.longhorn_namespace = longhorn_namespace
        self.core, self.apps, self.batch, self.custom = core, apps, batch, custom
        self._stream = exec_stream
        self.exec_timeout = exec_timeout

    @classmethod
    def connect(cls, namespace: str, longhorn_namespace: str, context: str | None = None) -> KubernetesCluster:
        """From the kubeconfig (KUBECONFIG or ~/.kube/config), its current context unless one is named."""
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        return cls(
            namespace,
            longhorn_namespace,
            client.CoreV1Api(api),
            client.AppsV1Api(api),
            client.BatchV1Api(api),
            client.CustomObjectsApi(api),
        )

    def pod(self, name: str) -> PodState | None:
        with _absent_is_none():
            pod = self.core.read_namespaced_pod(name, self.namespace)
            conditions = (pod.status.conditions if pod.status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            meta = pod.metadata or client.V1ObjectMeta()
            return PodState(uid=str(meta.uid), ready=ready, terminating=meta.deletion_timestamp is not None)
        return None

    def delete_pod(self, name: str) -> None:
        # The pod's own grace period: the preStop hook asks PostgreSQL for a fast shutdown.
        self.core.delete_namespaced_pod(name, self.namespace)

    def replicas(self, statefulset: str) -> int | None:
        with _absent_is_none():
            scale = self.apps.read_namespaced_stateful_set_scale(statefulset, self.namespace)
            return int(scale.spec.replicas or 0) if scale.spec else 0
        return None

    def scale(self, statefulset: str, replicas: int) -> None:
        self.apps.patch_namespaced_stateful_set_scale(
            statefulset,
            self.namespace,
            {"spec": {"replicas": replicas}},
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    def release_replicas(self, statefulset: str) -> None:
        """Remove our entry from the StatefulSet's managedFields.

        Scaling through the API (like `kubectl scale`) moves ownership of spec.replicas from Pulumi's
        server-side apply field manager to ours. pulumi-kubernetes does not force conflicts, so its
        next apply that changes replicas would fail on our ownership. Replacing managedFields with
        the list minus our entry (a JSON patch guarded by the resourceVersion, as client-go's
        csaupgrade does) leaves spec.replicas unowned, and Pulumi's next apply takes it back.
        """
        for _ in range(3):
            meta = self.apps.read_namespaced_stateful_set(statefulset, self.namespace).metadata or client.V1ObjectMeta()
            entries = list(meta.managed_fields or [])
            kept = [e for e in entries if e.manager != FIELD_MANAGER]
            if len(kept) == len(entries) or not kept:
                return
            patch = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
                {"op": "replace", "path": "/metadata/managedFields", "value": client.ApiClient().sanitize_for_serialization(kept)},  # type: ignore[no-untyped-call]
            ]
            try:
                self.apps.patch_namespaced_stateful_set(
                    statefulset, self.namespace, patch, field_manager=FIELD_MANAGER, _content_type="application/json-patch+json"
                )
                return
            except ApiException as exc:
                if exc.status not in (409, 422):  # the object changed under us: read it again
                    raise
        raise RuntimeError(f"StatefulSet {statefulset} kept changing while its managedFields were being updated")

    def exec_sql(self, pod: str, sql: str, service: Endpoint | None = None) -> ExecResult:
        command = psql_service_command(sql, service) if service is not None else psql_local_command(sql)
        ws = self._stream(
            self.core.connect_get_namespaced_pod_exec,
            pod,
            self.namespace,
            command=command,
            container=CONTAINER,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        try:
            ws.run_forever(timeout=self.exec_timeout)
            if ws.is_open():
                return ExecResult(124, "", f"no answer from psql in pod {pod} within {self.exec_timeout:g} s")
            stdout, stderr = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
            try:
                code = ws.returncode
            except (TypeError, KeyError, IndexError, ValueError):
                code = None
            return ExecResult(-1 if code is None else int(code), str(stdout or ""), str(stderr or ""))
        finally:
            ws.close()

    def claim_volume(self, claim: str) -> str | None:
        with _absent_is_none():
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
            pv_name = pvc.spec.volume_name if pvc.spec else None
            if not pv_name:
                return None
            pv = self.core.read_persistent_volume(pv_name)
            csi = pv.spec.csi if pv.spec else None
            # The Longhorn CSI driver names a volume after its PV; the PV records it as volumeHandle.
            if csi is None or csi.driver != LONGHORN_DRIVER:
                return None
            return str(csi.volume_handle)
        return None

    def longhorn_backups(self, volumes: Sequence[str]) -> list[LonghornBackup] | None:
        with _absent_is_none():
            listed = self.custom.list_namespaced_custom_object(
                "longhorn.io",
                "v1beta2",
                self.longhorn_namespace,
                "backups",
                label_selector=f"{LONGHORN_BACKUP_VOLUME_LABEL} in ({','.join(volumes)})",
            )
            items = listed.get("items", []) if isinstance(listed, dict) else []
            return [_longhorn_backup(item) for item in items]
        return None

    def cronjob(self, name: str) -> CronJobStatus | None:
        with _absent_is_none():
            job = self.batch.read_namespaced_cron_job(name, self.namespace)
            status = job.status
            if status is None:
                return CronJobStatus(None, None)
            return CronJobStatus(status.last_successful_time, status.last_schedule_time)
        return None


def _longhorn_backup(item: dict[str, Any]) -> LonghornBackup:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    # status.backupCreatedAt is RFC 3339 UTC (backupstore util.Now); creationTimestamp is when the object appeared.
    created = _timestamp(status.get("backupCreatedAt")) or _timestamp(meta.get("creationTimestamp"))
    return LonghornBackup(
        name=str(meta.get("name", "")),
        volume=str((meta.get("labels") or {}).get(LONGHORN_BACKUP_VOLUME_LABEL) or status.get("volumeName") or ""),
        state=str(status.get("state") or ""),
        created=created,
    )


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
