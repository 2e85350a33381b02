"""Run the program under Pulumi's mocks, as `pulumi up` would for a stack, and record what it registers.

No cluster and no Pulumi CLI: the SDK's own mocks (pulumi.runtime.set_mocks) stand in for the engine.
The render command (stacks/render.py), the change table (stacks/changes.py), the tests and the
benchmarks all run the program through this module.

Stack files, read as the Pulumi CLI reads them:
    stacks()                  every stack with a Pulumi.<stack>.yaml (dotted names included)
    stack_config(stack)       its config: Pulumi.yaml values overlaid by the stack file, keys namespaced
    project_defaults(), stack_settings(stack), stack_file(stack), load_yaml(path), as_pulumi_config(values)
    secret_config_keys(config)  the keys holding a stack file's `secure:` values (read as SECRET_UNKNOWN: no
                              passphrase here); run_pulumi marks them secret, as the CLI does
    StackFileError, MissingStackFileError (a bad or missing file, one line), StackFileWarning (ignored keys)

Runs:
    run_program(config, stack)   __main__.py once with this config (preview=False: every apply runs)
    run_pulumi(program, config)  any program function (a single component, say) the same way
    Run                          what a run registered: resources (Registered), outputs, secret outputs,
                                 every generated password; Run.of_type(type) and Run.one(type, name);
                                 pass Run(seed=...) or Run(password=...) to choose the passwords
    Registered, Options          one registration: type, name, URN, parent, inputs as the SDK sent them,
                                 dependencies, and the options the engine acts on (protect, aliases, ...)
    plain(value)                 an input as plain data (secrets unwrapped, 5432.0 -> 5432)
    fake_password(inputs, seed)  the mock's RandomPassword result: random, or derived from a seed

Inputs arrive as the SDK serialises them: camelCase keys, numbers as floats, secrets wrapped;
use plain() before comparing with literals. Mocks ignore additional_secret_outputs, so a password is
a secret only where the program marks it so, which is what the tests check.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import functools
import hashlib
import json
import re
import runpy
import secrets
import string
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.resource
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from stacks.config import SECRET_UNKNOWN

__all__ = [
    "PROJECT_FILE",
    "ROOT",
    "STACK_FILE_KEYS",
    "STACK_NAME",
    "MissingStackFileError",
    "Options",
    "RecordingMocks",
    "RecordingMonitor",
    "Registered",
    "Run",
    "StackFileError",
    "StackFileWarning",
    "as_pulumi_config",
    "fake_password",
    "load_yaml",
    "plain",
    "project_defaults",
    "run_program",
    "run_pulumi",
    "secret_config_keys",
    "stack_config",
    "stack_file",
    "stack_settings",
    "stacks",
]

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "Pulumi.yaml"
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ------------------------------------------------------------------ config

# Pulumi's rule for stack names (local and cloud backends): ^[A-Za-z0-9_.-]{1,100}$.
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# The top-level keys Pulumi reads from a stack file (sdk/go/common/workspace/project.go, ProjectStack).
# It decodes the file without strict mode, so any other top-level key is dropped without a word.
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment", "mainEnvironment")


class StackFileError(ValueError):
    """A stack file that cannot be used, with a one-line message naming the file."""


class MissingStackFileError(StackFileError, FileNotFoundError):
    """No Pulumi.<stack>.yaml for the stack."""


class StackFileWarning(UserWarning):
    """Something in a stack file that Pulumi ignores."""


def stack_file(stack: str, root: Path = ROOT) -> Path:
    if not STACK_NAME.fullmatch(stack):
        raise StackFileError(f"{stack!r} is not a Pulumi stack name: letters, digits, '-', '_' and '.', at most 100")
    return root / f"Pulumi.{stack}.yaml"


def stacks(root: Path = ROOT) -> list[str]:
    """Every stack with a Pulumi.<stack>.yaml, dotted names included (Pulumi.eu.prod.yaml is stack eu.prod)."""
    names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
    return sorted(n for n in names if STACK_NAME.fullmatch(n))


# YAML as the Pulumi CLI reads a stack file, with gopkg.in/yaml.v3 (pulumi sdk/go/common/encoding/marshal.go:27
# and :115, used by workspace/loaders.go:181): a key twice in one mapping is an error (v3's decode.go "mapping key
# ... already defined at line"; unverified: no stored copy of v3), and a date-like scalar (2024-01-01) stays the
# text it is (go-yaml decode.go d.scalar: a timestamp decoded into interface{} is set as its string).


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the key {key_node.value} is given twice in one mapping (first at line {seen[key_node.value]}); keep one",
                key_node.start_mark,
            )
        seen[key_node.value] = key_node.start_mark.line + 1


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    _refuse_duplicate_keys(node)
    return loader.construct_mapping(node, deep=True)


def _timestamp_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _stack_file_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = type(f"StackFile{base.__name__}", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:map", _mapping)
    loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_text)
    return loader


_FAST_STACK_LOADER = _stack_file_loader(_FAST_LOADER)
_PURE_STACK_LOADER = _stack_file_loader(yaml.SafeLoader)


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StackFileError(
            f"{_shown(path)}, line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8, the encoding "
            "Pulumi reads YAML in"
        ) from None


def load_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error, a key given twice or text that is not UTF-8 becomes one line naming
    the file, the line and the column."""
    text = _text(path)
    try:
        # Each test reads the stack files again: parsed once per content, a copy per call.
        return copy.deepcopy(_parse(text))
    except yaml.YAMLError:
        pass
    # The pure-Python loader's messages, for the one line below.
    try:
        return yaml.load(text, Loader=_PURE_STACK_LOADER)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        position = f", line {where.line + 1}, column {where.column + 1}" if where else ""
        context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
        raise StackFileError(f"{_shown(path)}{position}: not valid YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{_shown(path)}: not valid YAML: {' '.join(str(exc).split())}") from None


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> Any:
    """YAML text parsed by libyaml when it is there (ten times faster than the pure-Python loader)."""
    return yaml.load(text, Loader=_FAST_STACK_LOADER)


def _shown(path: Path) -> str:
    """A path as the user would type it from the repository."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _namespaced(project: str, values: dict[str, Any]) -> dict[str, Any]:
    """Pulumi reads a config key without a namespace as the project's (`postgres:` is `pgstack:postgres`)."""
    return {(str(k) if ":" in str(k) else f"{project}:{k}"): v for k, v in values.items()}


def _project(root: Path) -> dict[str, Any]:
    project = load_yaml(root / "Pulumi.yaml")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise StackFileError(f"{_shown(root / 'Pulumi.yaml')}: expected a project with a name")
    return project


def project_defaults(root: Path = ROOT) -> dict[str, Any]:
    """Project-level config from Pulumi.yaml: the CLI applies these, mocks do not."""
    project = _project(root)
    out: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        if isinstance(decl, dict) and "value" in decl:
            out[key] = decl["value"]
        elif isinstance(decl, dict) and "default" in decl:
            out[key] = decl["default"]
        else:
            out[key] = decl
    return _namespaced(project["name"], out)


def _without_ciphertext(value: Any) -> Any:
    """A config value with each `secure:` value (a mapping of one key, secure, to a string: Pulumi's isSecureValue,
    sdk/go/common/resource/config/object.go:541) replaced by SECRET_UNKNOWN: set, but not readable without the
    stack's passphrase. `pulumi config set --secret --path a.b` writes one under a key, a top-level
    `pulumi config set --secret a` in place of the whole value."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("secure"), str):
            return SECRET_UNKNOWN
        return {k: _without_ciphertext(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ciphertext(v) for v in value]
    return value


def secret_config_keys(config: dict[str, Any]) -> list[str]:
    """The keys the CLI hands the program as secrets: those holding a `secure:` value anywhere inside. An object
    with one secure field is a secret as a whole (Pulumi's object.Secure and MarshalString, object.go:51 and :403;
    Map.SecureKeys, map.go:105, become the run's configSecretKeys, pkg/resource/deploy/source_eval.go:225)."""
    return sorted(k for k, v in config.items() if SECRET_UNKNOWN in json.dumps(v))


def stack_settings(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """A stack file's `config:` block as Pulumi reads it, `secure:` values as SECRET_UNKNOWN (secret_config_keys).
    Warns (StackFileWarning) about the keys Pulumi ignores."""
    path = stack_file(stack, root)
    if not path.is_file():
        raise MissingStackFileError(f"no stack file {_shown(path)}")
    content = load_yaml(path)
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise StackFileError(f"{_shown(path)}: expected a mapping with a config: block, got {type(content).__name__}")
    ignored = [str(k) for k in content if k not in STACK_FILE_KEYS]
    if ignored:
        hint = "" if "config" in content else "; with no config: block, every setting takes its Pulumi.yaml default"
        warnings.warn(
            f"{_shown(path)}: Pulumi ignores the top-level keys {', '.join(ignored)} (settings go under config:){hint}",
            StackFileWarning,
            stacklevel=2,
        )
    config = content.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(f"{_shown(path)}: config: must be a mapping of keys to values, got {type(config).__name__}")
    return _namespaced(_project(root)["name"], _without_ciphertext(config))


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """Config values as `pulumi up` would see them for a stack: project values overlaid by the stack file."""
    return project_defaults(root) | stack_settings(stack, root)


def as_pulumi_config(values: dict[str, Any]) -> dict[str, str]:
    """The engine hands objects to the program as JSON strings and strings as-is."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


# ------------------------------------------------------------------ runs


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
    # agree and a diff shows only what the config changed (stacks/changes.py).
    seed: str | None = None
    # Set: RandomPassword results are password(inputs, name) instead of fake_password's (a test can
    # hand the program a password made of every character the provider could generate).
    password: Callable[[dict[str, Any], str], str] | None = None
    # The config the program ran with (provider keys included: stacks/changes.py reads the
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


class RecordingMocks(pulumi.runtime.Mocks):
    """The engine's side: each resource's state is its inputs; RandomPassword also gets a result."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
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

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
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


@contextlib.contextmanager
def _no_stack_traces() -> Iterator[None]:
    """The SDK walks the Python stack at every registration, for the source positions the engine shows
    in its messages; the mock monitor drops them, and the walk is a tenth of a run's time. Skipped
    while a program runs here; nothing the tests read comes from it."""
    module = pulumi.runtime.resource
    original = getattr(module, "_get_stack_trace", None)
    if original is None:  # another SDK version: leave it as it is
        yield
        return
    setattr(module, "_get_stack_trace", source_pb2.StackTrace)  # noqa: B010 - a private name of the SDK's
    try:
        yield
    finally:
        setattr(module, "_get_stack_trace", original)  # noqa: B010


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs a submitted call at once, in the calling thread. The SDK sends every monitor call through
    loop.run_in_executor (pulumi/runtime/resource.py, do_register and friends) for a gRPC round trip;
    to the in-process mock monitor that is only a thread hand-off per call, a sixth of a run's time.
    Registration order was never fixed (the pool interleaves calls); what a run registers is the same."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as the pool does
            future.set_exception(error)
        return future


@contextlib.contextmanager
def _inline_monitor_calls() -> Iterator[None]:
    """The event loop's default executor is _InlineExecutor while a program runs here."""
    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]  # the loop _sync_await runs
    original = getattr(loop, "_default_executor", None)
    loop.set_default_executor(_InlineExecutor(max_workers=1))
    try:
        yield
    finally:
        loop._default_executor = original  # no public getter or reset


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
    pulumi.runtime.set_mocks(m, project="pgstack", stack=stack, preview=False, monitor=RecordingMonitor(m, run))
    # Keys holding a stack file's `secure:` values are secrets, as the CLI marks them.
    secret = sorted({*(secret_keys or []), *secret_config_keys(config or {})})
    pulumi.runtime.set_all_config(as_pulumi_config(config or {}), secret_keys=secret)

    def body() -> None:
        program()

    with _no_stack_traces(), _inline_monitor_calls():
        _sync_await(run_pulumi_func(body))
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
