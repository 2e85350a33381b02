"""Names the runbooks rely on: the Longhorn release, its uninstall confirmation sentence, and the backup
target's Secret."""

from __future__ import annotations

import re

# ---------------------------------------------------------------- runbooks: adoption, restore hold, Longhorn uninstall

# The Longhorn release's name (components/longhorn_install.py registers it under this name).
LONGHORN_RELEASE = "longhorn"


def uninstall_confirmation(stack: str, longhorn_namespace: str) -> str:
    """The sentence longhorn.uninstallConfirmation must hold to arm Longhorn's uninstall on this stack.

    It names the stack and the release, so no typo, and no stack file copied from another stack, can produce it.
    policy/rules.py builds the same sentence from the URN and the release (tests/policy pins that they agree).
    """
    return f"{stack}: no other stack uses {longhorn_namespace}/{LONGHORN_RELEASE}; delete every Longhorn volume in this cluster"


# Any stack's sentence, for a check without the stack name (tools/verify.py reads settings outside a Pulumi run).
ANY_CONFIRMATION = re.compile(r"[A-Za-z0-9_.-]{1,100}: no other stack uses (\S+)/longhorn; delete every Longhorn volume in this cluster")


# components/longhorn_install.py BACKUP_CREDENTIALS_SECRET
BACKUP_TARGET_SECRET = "longhorn-backup-target"
