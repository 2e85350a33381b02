"""Entry point: read the stack's validated settings and secrets, and build the stack."""

import gc

import pulumi

# Pulumi's language host imports pulumi and its gRPC stack before it runs this file
# (sdk/python/cmd/pulumi-language-python-exec: the imports, then runpy.run_path inside run_in_stack), and the
# imports below add pydantic and our modules: a heap that lives until the process exits, which every garbage
# collection during the evaluation would walk again. Frozen (gc.freeze: moved to the permanent generation),
# it is skipped: a sixth of the evaluation's CPU time in `pulumi preview` and `up`
# (benchmarks/bench_evaluation.py, docs/testing.md#benchmarks).
gc.freeze()

from stacks.config import ConfigError  # noqa: E402  (after the freeze, on purpose)
from stacks.config.load import load_secrets, load_settings  # noqa: E402
from stacks.database import build  # noqa: E402

gc.freeze()
try:
    settings = load_settings()
    secrets = load_secrets(settings)
except ConfigError as exc:
    # Pulumi prints a RunError as its message alone, without a traceback (pulumi/errors.py RunError).
    raise pulumi.RunError(str(exc)) from None
build(settings, secrets)
