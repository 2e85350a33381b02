"""What bin/recover-rollout acts on, read from a stack's config: ``python -m tools.recover <stack>``.

Kept apart from stacks/rollout.py, which the program imports: this reads stack files (tools.stack_files).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from components.postgres_names import statefulsets
from stacks.config import PROJECT, ConfigError, parse_settings
from stacks.config.cnpg import CNPG
from tools.stack_files import StackFileError, stack_config


def recovery_target(stack: str) -> list[str]:
    """One per line: the namespace, the kubeconfig context ("" for the current one), then each StatefulSet of
    the stack, the primary's first."""
    values = stack_config(stack)
    prefix = f"{PROJECT}:"
    settings = parse_settings({k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)})
    context = values.get("kubernetes:context")
    pg = settings.postgres
    if pg.engine == CNPG:
        # The operator owns the instances' pods (no StatefulSet): it replaces a pod that does not come up itself.
        raise ConfigError(
            f"Pulumi.{stack}.yaml runs {PROJECT}:postgres.engine cloudnative-pg: its operator runs the pods, there is no "
            f"StatefulSet rollout to unstick; see the Cluster's phase with `kubectl -n {settings.namespace} get "
            f"cluster {pg.name}` (docs/operations.md#cloudnative-pg)"
        )
    sets = [sts for sts, _, _, _ in statefulsets(pg.name, pg.replicas, pg.replication.enabled)]
    return [settings.namespace, context if isinstance(context, str) else "", *sets]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tools.recover <stack>", file=sys.stderr)
        return 2
    try:
        print("\n".join(recovery_target(args[0])))
    except (FileNotFoundError, StackFileError, ConfigError) as exc:
        print(f"recover-rollout: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
