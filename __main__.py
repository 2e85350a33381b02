"""Entry point: read the stack's validated settings and secrets, and build the stack."""

from stacks.config import load_secrets, load_settings
from stacks.database import build

settings = load_settings()
build(settings, load_secrets(settings))
