"""Entry point: read the stack's validated settings and build the stack."""

from stacks.config import load_settings
from stacks.database import build

build(load_settings())
