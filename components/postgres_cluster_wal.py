"""Pure builder: the Barman Cloud plugin's ObjectStore (barmancloud.cnpg.io/v1) that a CloudNativePG Cluster's
WAL archiver writes to (components/postgres_cluster_spec.py wal_archive_plugins names it), from the same S3
settings as the StatefulSet engine's archive: the bucket/prefix and the S3 account's Secret.

Checked against cloudnative-pg/plugin-barman-cloud v0.14.0 config/crd/bases/barmancloud.cnpg.io_objectstores.yaml
(read with the search tools; ../shared/reference holds no copy, so no test validates against the schema):
spec.configuration is required (:676-677), configuration.destinationPath is required (:407-408, minLength 1),
endpointURL a plain string (:222), and each of s3Credentials.accessKeyId and .secretAccessKey a Secret key
reference with name and key required (:261-301).
"""

from __future__ import annotations

from typing import Any

from components.postgres_cluster_args import BarmanS3
from components.postgres_cluster_spec import BARMAN_CLOUD_PLUGIN

OBJECT_STORE_API = "barmancloud.cnpg.io/v1"


def object_store_spec(s3: BarmanS3) -> dict[str, Any]:
    def key(field: str) -> dict[str, str]:
        return {"name": s3.credentials_secret, "key": field}

    configuration: dict[str, Any] = {
        "destinationPath": f"s3://{s3.remote.rstrip('/')}",
        "s3Credentials": {"accessKeyId": key(s3.access_key_key), "secretAccessKey": key(s3.secret_key_key)},
    }
    if s3.endpoint is not None:
        configuration["endpointURL"] = s3.endpoint
    return {"configuration": configuration}


def scheduled_backup_spec(cluster: str, schedule: str) -> dict[str, Any]:
    """A ScheduledBackup (postgresql.cnpg.io/v1) of the Cluster through the Barman Cloud plugin: its schedule has a
    leading seconds field (the CRD's description: robfig/cron), so a five-field Kubernetes schedule gets "0 " in
    front and a macro (@daily) stays as it is; the backups are owned by it (deleting it deletes their records)."""
    return {
        "cluster": {"name": cluster},
        "schedule": schedule if schedule.startswith("@") else f"0 {schedule}",
        "method": "plugin",
        "pluginConfiguration": {"name": BARMAN_CLOUD_PLUGIN},
        "backupOwnerReference": "self",
        "immediate": True,
    }
