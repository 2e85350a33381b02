"""Run the program under Pulumi's mocks, as `pulumi up` would for a stack, and record what it registers.

No cluster and no Pulumi CLI: the SDK's own mocks (pulumi.runtime.set_mocks) stand in for the engine.
The render command (tools/render.py), the change table (tools/changes.py), the tests and the
benchmarks all run the program through this module.

The stack files it runs come from tools/stack_files.py (stack_config, secret_config_keys, ...).

Runs:
    run_program(config, stack)   __main__.py once with this config (preview=False: every apply runs)
    run_pulumi(program, config)  any program function (a single component, say) the same way
    Run                          what a run registered: resources (Registered), outputs, secret outputs,
                                 every generated password; Run.of_type(type) and Run.one(type, name);
                                 pass Run(seed=...) or Run(password=...) to choose the passwords
    Registered, Options          one registration: type, name, URN, parent, inputs as the SDK sent them,
                                 dependencies, and the options the engine acts on (protect, aliases, ...)
    replay(run)                  log a run's messages (Run.logs, from pulumi.log through PROGRAM_LOG) again
    plain(value)                 an input as plain data (secrets unwrapped, 5432.0 -> 5432)
    fake_password(inputs, seed)  the mock's RandomPassword result: random, or derived from a seed

Inputs arrive as the SDK serialises them: camelCase keys, numbers as floats, secrets wrapped;
use plain() before comparing with literals. Mocks ignore additional_secret_outputs, so a password is
a secret only where the program marks it so, which is what the tests check.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import runpy
import secrets
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime.resource
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from tools.mock_shortcuts import inline_monitor_calls, no_stack_traces
from tools.mock_tls import PRIVATE_KEY, TLS_TYPES, tls_state
from tools.stack_files import ROOT, as_pulumi_config, secret_config_keys

__all__ = [
    "PROGRAM_LOG",
    "Options",
    "RecordingMocks",
    "RecordingMonitor",
    "Registered",
    "Run",
    "fake_password",
    "plain",
    "replay",
    "run_program",
    "run_pulumi",
]


@dataclass(frozen=True)
class Options:
    """The resource options the engine acts on when a stack changes (what mocks otherwise drop)."""

    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    import_id: str = ""  # the import option: adopt the live object with this id instead of creating one


@dataclass
class Registered:
    """One resource registration, as the engine received it (the Stack itself is not recorded)."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    dependencies: list[str]
    parent: str
    # Input property -> URNs its value came from (outputs of those resources).
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    options: Options = field(default_factory=lambda: Options())


@dataclass
class Run:
    """Everything one program run registered."""

    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    generated: list[str] = field(default_factory=list)  # every generated password value
    # Set: passwords are a function of (seed, name, inputs), so two runs of the same config
    # agree and a diff shows only what the config changed (tools/changes.py).
    seed: str | None = None
    # Set: RandomPassword results are password(inputs, name) instead of fake_password's (a test can
    # hand the program a password made of every character the provider could generate).
    password: Callable[[dict[str, Any], str], str] | None = None
    # What the program logged through Pulumi (pulumi.log): (level, message), in order; replay() logs them again.
    logs: list[tuple[int, str]] = field(default_factory=list)
    # The config the program ran with (provider keys included: tools/changes.py reads the
    # kubernetes provider's enableSecretMutable / enableConfigMapMutable from it).
    config: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Registered:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_} named {name}")
        return found[0]


def fake_password(inputs: dict[str, Any], seed: str | None = None, name: str = "") -> str:
    """A value shaped like RandomPassword's result, so leaks are detectable by value.

    Random per call, or, with a seed, derived from the seed, the name and the inputs
    (keepers included): like the provider, the same inputs keep the same password.
    """
    alphabet = string.ascii_letters + string.digits + str(inputs.get("overrideSpecial") or "")
    length = int(inputs.get("length", 32))
    if seed is None:
        return "".join(secrets.choice(alphabet) for _ in range(length))
    digest = hashlib.sha256(json.dumps([seed, name, inputs], sort_keys=True, default=str).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in (digest * 2)[:length])


# The types whose state RecordingMocks computes (more than their inputs): pulumi-tls's in tools/mock_tls.py.
COMPUTED_STATE = frozenset({"random:index/randomPassword:RandomPassword"}) | TLS_TYPES


class RecordingMocks(pulumi.runtime.Mocks):
    """The engine's side: each resource's state is its inputs; RandomPassword also gets a result."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ in TLS_TYPES:  # real PEMs; a private key counts as generated, like a password (leak tests)
            state = tls_state(args.typ, args.name, plain(state))
            self.run.generated += [state["privateKeyPem"]] if args.typ == PRIVATE_KEY else []
        elif args.typ in COMPUTED_STATE:
            make = self.run.password
            state["result"] = make(args.inputs, args.name) if make else fake_password(args.inputs, self.run.seed, args.name)
            self.run.generated.append(state["result"])
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _alias(alias: Any) -> str:
    """An alias as `urn` or as its spec's parentUrn::name (the parts our tests check)."""
    if alias.HasField("urn"):
        return str(alias.urn)
    spec = alias.spec
    # The SDK adds empty specs of its own (inherited from parents without aliases): skip them.
    return f"{spec.parentUrn}::{spec.name}" if spec.parentUrn or spec.name else ""


class RecordingMonitor(mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and dependencies."""

    def __init__(self, m: RecordingMocks, run: Run) -> None:
        super().__init__(m)
        self.run = run
        # RecordingMocks gives every resource but a RandomPassword its inputs as its state: the SDK's mock
        # monitor would decode the inputs and encode them again for that (pulumi/runtime/mocks.py RegisterResource:
        # deserialize_properties, new_resource, serialize_properties), a fifth of a run. Those resources get the
        # request's own encoding back instead; a mocks class with its own new_resource goes the SDK's way.
        self.state_is_inputs = type(m).new_resource is RecordingMocks.new_resource

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        _ensure_event_loop()  # type: ignore[no-untyped-call]  # as the SDK's monitor does: resource references need one
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        if self.state_is_inputs and request.type not in COMPUTED_STATE:
            urn = self.make_urn(request.parent, request.type, request.name)
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, f"{request.name}-id", inputs)
            response = resource_pb2.RegisterResourceResponse(urn=urn, id=f"{request.name}-id", object=request.object)
        else:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.run.resources.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=inputs,
                dependencies=list(request.dependencies),
                parent=request.parent,
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                options=Options(
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=tuple(request.ignoreChanges),
                    replace_on_changes=tuple(request.replaceOnChanges),
                    aliases=tuple(a for a in map(_alias, request.aliases) if a),
                    import_id=request.importId,
                ),
            )
        )
        return response


# Where a run's pulumi.log messages go (the mocks' engine logs them; to the root logger by default): a child of
# the root, so pytest's caplog and the console see them as before, and each run keeps its own (Run.logs).
PROGRAM_LOG = logging.getLogger("pgstack.program")


class _Recorder(logging.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.logs.append((record.levelno, record.getMessage()))


def replay(run: Run) -> None:
    """Log a recorded run's messages again, as the program did (a test that reuses a run sees its warnings)."""
    for level, message in run.logs:
        PROGRAM_LOG.log(level, message)


def run_pulumi(
    program: Callable[[], object],
    config: dict[str, Any] | None = None,
    stack: str = "test",
    run: Run | None = None,
    secret_keys: list[str] | None = None,
) -> Run:
    """Run a Pulumi program function under mocks (preview=False, so every apply runs)."""
    run = run if run is not None else Run()
    run.config = dict(config or {})
    m = RecordingMocks(run)
    # A fresh root Stack per run: set_mocks reuses an existing one, with its outputs.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(m, project="pgstack", stack=stack, preview=False, monitor=RecordingMonitor(m, run), logger=PROGRAM_LOG)
    # Keys holding a stack file's `secure:` values are secrets, as the CLI marks them.
    secret = sorted({*(secret_keys or []), *secret_config_keys(config or {})})
    pulumi.runtime.set_all_config(as_pulumi_config(config or {}), secret_keys=secret)

    def body() -> None:
        program()

    recorder = _Recorder(run)
    PROGRAM_LOG.addHandler(recorder)
    try:
        with no_stack_traces(), inline_monitor_calls():
            _sync_await(run_pulumi_func(body))
    finally:
        PROGRAM_LOG.removeHandler(recorder)
        # __main__.py freezes the heap for its one run (gc.freeze); a test process runs it hundreds of
        # times and must collect what each run left behind.
        gc.unfreeze()
    root = pulumi.runtime.settings.get_root_resource()
    for key, value in (getattr(root, "outputs", None) or {}).items():
        out = pulumi.Output.from_input(value)
        run.outputs[key] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            run.secret_outputs.add(key)
    return run


def run_program(config: dict[str, Any], stack: str = "test", run: Run | None = None, secret_keys: list[str] | None = None) -> Run:
    """Run __main__.py once with this config, as `pulumi up` would for a stack."""
    sys.path.insert(0, str(ROOT))
    try:
        return run_pulumi(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"), config, stack, run, secret_keys)
    finally:
        sys.path.remove(str(ROOT))


def plain(value: Any) -> Any:
    """A registered input as plain data: secret wrappers stripped (the values kept), and the floats the SDK
    serialises numbers to turned back into ints where whole (5432.0 -> 5432). Unknowns are left as they are."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
