"""Entry point: read the stack's validated settings and secrets, and build the stack."""

import pulumi

from stacks.config import ConfigError
from stacks.config.load import load_secrets, load_settings
from stacks.database import build

try:
    settings = load_settings()
    secrets = load_secrets(settings)
except ConfigError as exc:
    # Pulumi prints a RunError as its message alone, without a traceback (pulumi/errors.py RunError).
    raise pulumi.RunError(str(exc)) from None
build(settings, secrets)
