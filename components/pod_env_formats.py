"""The formats of the pod env contract's values (components/pod_env_contract.py): each an extended
regex that bash (``[[ v =~ re ]]``) and Python read alike, with what a refusal says is expected.

Pure Python: nothing here needs pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """What a variable's value looks like: an extended regex that both bash (``[[ v =~ re ]]``)
    and Python read alike, and what the refusal says is expected."""

    name: str
    regex: str
    expected: str


_HOST = "[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?"
_PATH = "/[A-Za-z0-9._/-]*"
_POD = "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"
PATH = Format("path", f"^{_PATH}$", "an absolute path of [A-Za-z0-9._/-]")
PORT = Format("port", "^[0-9]{1,5}$", "a TCP port number")
BOOL = Format("bool", "^(true|false)$", "'true' or 'false'")
# A plain, lower-case SQL identifier: needs no quoting in pg_hba.conf, pgpass files or conninfo.
IDENT = Format("identifier", "^[a-z_][a-z0-9_]{0,62}$", "a lower-case SQL identifier")
HOST = Format("host", f"^{_HOST}$", "a host name or IP address")
HOSTS = Format("hosts", f"^ *{_HOST}( +{_HOST})* *$", "host names or IP addresses separated by spaces")
HOST_OR_SOCKET = Format("host or socket", f"^({_HOST}|{_PATH})$", "a host name, an IP address or a socket directory")
POD = Format("pod", _POD, "a pod name such as pg-0")
NAMESPACE = Format("namespace", _POD, "a Kubernetes namespace name")
LSN = Format("lsn", "^[0-9A-F]{1,8}/[0-9A-F]{1,8}$", "a WAL position X/Y in upper-case hex, as the refusal names it (0/3000148)")
PG_MAJOR = Format("major", "^[0-9]{1,3}$", "a PostgreSQL major such as 18")
# Integers stay within what bash arithmetic holds.
SECONDS = Format("seconds", "^[0-9]{1,9}$", "a non-negative integer (seconds)")
BYTES = Format("bytes", "^[0-9]{1,18}$", "a non-negative integer (bytes)")
DUMPS = Format("dumps", "^[0-9]{1,9}$", "a non-negative integer (dumps; 0: no count rule)")
DAYS = Format("days", "^[0-9]{1,9}$", "a non-negative integer (days; 0: no age rule)")
UTC_STAMP = Format("utc time", "^[0-9]{8}T[0-9]{6}Z$", "a UTC time like 20261122T010203Z")
