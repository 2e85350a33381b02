"""Stack files as Pulumi reads them: every legal stack name, one clear line for a file that is not
YAML, a warning for keys Pulumi ignores, and the render CLI on all of it (in a copy of the repository)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.repo_copy import ONLY_STACKS, copy_repository, run_in
from tools.mock_run import Run
from tools.render import main
from tools.stack_files import (
    ROOT,
    STACK_FILE_KEYS,
    StackFileError,
    StackFileWarning,
    as_pulumi_config,
    project_defaults,
    stack_config,
    stack_file,
    stacks,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with the real Pulumi.yaml, for stack files of our own."""
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    return tmp_path


def test_every_stack_name_pulumi_allows(project: Path) -> None:
    for name in ("dev", "eu.prod", "eu.prod.v2", "a_b-C.9"):
        (project / f"Pulumi.{name}.yaml").write_text("config:\n  pgstack:namespace: x\n")
    (project / "Pulumi.has space.yaml").write_text("config: {}\n")  # not a stack name: not a stack
    assert stacks(project) == ["a_b-C.9", "dev", "eu.prod", "eu.prod.v2"]
    assert stack_config("eu.prod", project)["pgstack:namespace"] == "x"


@pytest.mark.parametrize("name", ["../Pulumi", "has space", "", "x" * 101, "a/b"])
def test_a_name_pulumi_refuses_is_refused(project: Path, name: str) -> None:
    with pytest.raises(StackFileError, match="is not a Pulumi stack name"):
        stack_file(name, project)


# (stack file text, the one line it gives)
NOT_YAML = [
    (
        "config:\n  pgstack:postgres:\n    replicas: [1\n    storageSize: 1Gi\n",
        "Pulumi.bad.yaml, line 4, column 16: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 3)",
    ),
    (
        "config:\n  pgstack:namespace: a: b\n",
        "Pulumi.bad.yaml, line 2, column 23: not valid YAML: mapping values are not allowed here",
    ),
    (
        "config:\n\tpgstack:namespace: x\n",
        "Pulumi.bad.yaml, line 2, column 1: not valid YAML: found character '\\t' that cannot start any token",
    ),
    (
        'config:\n  pgstack:namespace: "unterminated\n',
        "Pulumi.bad.yaml, line 3, column 1: not valid YAML: found unexpected end of stream (while scanning a quoted scalar at line 2)",
    ),
    # Pulumi's YAML (gopkg.in/yaml.v3) refuses a key given twice; PyYAML alone would keep the last one
    (
        "config:\n  pgstack:postgres:\n    replicas: 2\n  pgstack:postgres:\n    replicas: 3\n",
        "Pulumi.bad.yaml, line 4, column 3: not valid YAML: the key pgstack:postgres is given twice in one mapping "
        "(first at line 2); keep one",
    ),
    (
        "config:\n  pgstack:postgres:\n    replicas: 2\n    storageSize: 1Gi\n    replicas: 3\n",
        "Pulumi.bad.yaml, line 5, column 5: not valid YAML: the key replicas is given twice in one mapping (first at line 3); keep one",
    ),
    ("- pgstack:namespace: x\n", "Pulumi.bad.yaml: expected a mapping with a config: block, got list"),
    ("config:\n  - pgstack:namespace\n", "Pulumi.bad.yaml: config: must be a mapping of keys to values, got list"),
]


@pytest.mark.parametrize(
    ("text", "line"), NOT_YAML, ids=["flow", "mapping", "tab", "quote", "key twice", "nested key twice", "list", "config list"]
)
def test_a_stack_file_that_is_not_yaml_gives_one_line(project: Path, text: str, line: str) -> None:
    (project / "Pulumi.bad.yaml").write_text(text)
    with pytest.raises(StackFileError) as caught:
        stack_config("bad", project)
    assert str(caught.value) == f"{project}/{line}"


def test_a_stack_file_that_is_not_utf8_gives_one_line(project: Path) -> None:
    (project / "Pulumi.bad.yaml").write_bytes(b"config:\n  pgstack:namespace: caf\xe9\n")
    with pytest.raises(StackFileError) as caught:
        stack_config("bad", project)
    assert str(caught.value) == (
        f"{project}/Pulumi.bad.yaml, line 2: not UTF-8 (byte 0xe9); save the file as UTF-8, the encoding Pulumi reads YAML in"
    )


def test_a_date_like_value_stays_the_text_pulumi_hands_the_program(project: Path) -> None:
    """yaml.v3 decodes an unquoted 2024-01-01 into interface{} as its string; the config check then names it."""
    (project / "Pulumi.d.yaml").write_text("config:\n  pgstack:longhorn:\n    chartVersion: 2024-01-01\n  pgstack:namespace: 2025-10-01\n")
    config = stack_config("d", project)
    assert config["pgstack:longhorn"] == {"chartVersion": "2024-01-01"} and config["pgstack:namespace"] == "2025-10-01"
    assert as_pulumi_config(config)["pgstack:longhorn"] == '{"chartVersion": "2024-01-01"}'


# (stack file text, the keys named as ignored, whether it has a config: block, the namespace Pulumi would deploy to)
IGNORED = [
    ("confg:\n  pgstack:namespace: x\n", "confg", False, "postgres"),
    ("pgstack:namespace: x\npgstack:postgres:\n  replicas: 3\n", "pgstack:namespace, pgstack:postgres", False, "postgres"),
    ("config:\n  pgstack:namespace: x\nstorage:\n  className: y\n", "storage", True, "x"),
]


@pytest.mark.parametrize(
    ("text", "keys", "has_config", "namespace"), IGNORED, ids=["misspelled config", "keys at the top level", "a stray key"]
)
def test_keys_pulumi_ignores_give_a_warning(project: Path, text: str, keys: str, has_config: bool, namespace: str) -> None:
    (project / "Pulumi.typo.yaml").write_text(text)
    with pytest.warns(StackFileWarning) as caught:
        values = stack_config("typo", project)
    assert [str(w.message) for w in caught] == [
        f"{project / 'Pulumi.typo.yaml'}: Pulumi ignores the top-level keys {keys} (settings go under config:)"
        + ("" if has_config else "; with no config: block, every setting takes its Pulumi.yaml default")
    ]
    # What Pulumi would deploy: the ignored keys are not config.
    assert values["pgstack:namespace"] == namespace
    assert values["pgstack:storage"] == project_defaults(project)["pgstack:storage"]


def test_what_pulumi_reads_gives_no_warning(project: Path, recwarn: pytest.WarningsRecorder) -> None:
    (project / "Pulumi.ok.yaml").write_text(
        "secretsprovider: passphrase\nencryptionsalt: v1:abc\nenvironment: [a]\nconfig:\n  pgstack:namespace: x\n"
    )
    (project / "Pulumi.empty.yaml").write_text("# every default\n")
    assert stack_config("ok", project)["pgstack:namespace"] == "x"
    assert stack_config("empty", project)["pgstack:namespace"] == "postgres"
    assert not [w for w in recwarn if issubclass(w.category, StackFileWarning)]
    assert set(STACK_FILE_KEYS) >= {"config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment"}


def test_a_key_without_namespace_is_the_projects_as_in_pulumi(project: Path) -> None:
    # Pulumi's stack loader namespaces a bare key with the project name (loaders.go, stackConfigNamespacedWithProject).
    (project / "Pulumi.bare.yaml").write_text("config:\n  namespace: bare\n  postgres:\n    replicas: 2\n  kubernetes:context: lab\n")
    values = stack_config("bare", project)
    assert values["pgstack:namespace"] == "bare"
    assert values["pgstack:postgres"] == {"replicas": 2}
    assert values["kubernetes:context"] == "lab"
    assert "namespace" not in values and "postgres" not in values


# ------------------------------------------------------------------ the CLI, in a copy of the repository


def _tree(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(repo.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repository(tmp_path_factory.mktemp("copy"))
    (repo / "Pulumi.bad.yaml").write_text("config:\n  pgstack:namespace: a: b\n")
    (repo / "Pulumi.typo.yaml").write_text("confg:\n  pgstack:namespace: typo\n")
    (repo / "Pulumi.badvalue.yaml").write_text((repo / "Pulumi.dev.yaml").read_text().replace("replicas: 1", 'replicas: "abc"'))
    (repo / "Pulumi.eu.prod.yaml").write_text((repo / "Pulumi.prod.yaml").read_text())
    # Two stacks on one named cluster with the same namespace and class (a copy made without renaming).
    lab = "config:\n  kubernetes:context: lab\n  pgstack:namespace: lab\n  pgstack:longhorn: {install: false}\n"
    lab += "  pgstack:storage: {className: lab-class}\n"
    for name in ("lab-a", "lab-b"):
        (repo / f"Pulumi.{name}.yaml").write_text(lab)
    return repo


@pytest.mark.cli
def test_render_out_dot_is_refused_and_touches_nothing(repo: Path) -> None:
    before = _tree(repo)
    result = run_in(repo, "-m", "tools.render", "dev", "--out", ".")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "render: refusing to write into .: it holds the project (Pulumi.yaml and the stack files)\n"
    assert _tree(repo) == before


def test_render_names_the_stacks_when_one_has_no_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stagin"]) == 2
    assert capsys.readouterr().err == f"render: no stack file Pulumi.stagin.yaml; the stacks here: {', '.join(stacks())}\n"


@pytest.mark.cli
def test_render_cli_names_the_bad_file_in_one_line(repo: Path) -> None:
    result = run_in(repo, "-m", "tools.render", "bad", "--out", "rendered/bad")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "render: Pulumi.bad.yaml, line 2, column 23: not valid YAML: mapping values are not allowed here\n"
    assert not (repo / "rendered" / "bad").exists()


@pytest.mark.cli
def test_render_run_as_a_file_says_how_to_run_it(repo: Path) -> None:
    """What `python tools/render.py` used to print instead: a traceback ending in "No module named 'tools'"."""
    result = run_in(repo, "tools/render.py", "dev")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "render: run it as a module from the project directory: .venv/bin/python -m tools.render <stack>\n"


def test_render_usage_names_the_command_that_works(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([])
    assert capsys.readouterr().err.startswith("usage: python -m tools.render ")


def test_render_out_under_a_file_is_one_line_before_the_program_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x\n")
    assert main(["dev", "--out", str(tmp_path / "file" / "out")]) == 2
    assert capsys.readouterr().err == (
        f"render: cannot write into {tmp_path}/file/out: {tmp_path}/file is a file, not a directory; choose a directory path for --out\n"
    )


def test_render_out_where_nothing_can_be_made_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc takes no new directory, whoever asks (root included); found only when the render writes (the program's
    run is skipped here: what it registers does not matter)."""
    monkeypatch.setattr("tools.render.run_program", lambda *_, **__: Run())
    assert main(["dev", "--out", "/proc/pgstack-render"]) == 2
    assert capsys.readouterr().err == (
        "render: cannot write into /proc/pgstack-render: No such file or directory (/proc/pgstack-render); "
        "choose another directory for --out\n"
    )


@pytest.mark.cli
def test_render_cli_warns_about_ignored_keys_and_renders_defaults(repo: Path) -> None:
    result = run_in(repo, "-m", "tools.render", "typo", "--out", "rendered/typo")
    assert result.returncode == 0, result.stderr
    first, *others = result.stderr.splitlines()
    assert first == (
        "warning: Pulumi.typo.yaml: Pulumi ignores the top-level keys confg (settings go under config:); "
        "with no config: block, every setting takes its Pulumi.yaml default"
    )
    # Every default: dev's names too (tools/collisions.py, tests/tools/test_shared_cluster.py).
    assert others and all(line.startswith("warning: Pulumi.typo.yaml and Pulumi.") for line in others), others
    assert (repo / "rendered" / "typo" / "namespace-cluster-postgres.yaml").is_file()


@pytest.mark.cli
def test_render_cli_renders_a_dotted_stack(repo: Path) -> None:
    result = run_in(repo, "-m", "tools.render", "eu.prod", "--out", "rendered/eu.prod")
    assert result.returncode == 0, result.stderr
    assert "rendered/eu.prod/statefulset-postgres-prod-postgres.yaml" in result.stdout.split()


@pytest.mark.cli
def test_render_cli_refuses_a_stack_that_collides_on_its_named_cluster(repo: Path) -> None:
    result = run_in(repo, "-m", "tools.render", "lab-b", "--out", "rendered/lab-b")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "render: Pulumi.lab-b.yaml and Pulumi.lab-a.yaml deploy to one cluster (kubernetes:context lab) and both create "
        "namespace lab (pgstack:namespace, longhorn.namespace or cnpg.namespace); StorageClass lab-class (pgstack:storage.className): "
        "the second `pulumi up` fails with AlreadyExists; rename it in one of them"
    ]
    assert not (repo / "rendered" / "lab-b").exists()


@pytest.mark.slow
def test_a_bad_stack_file_fails_its_tests_with_one_line(repo: Path) -> None:
    # Per-stack tests through the fixture (test_database) and through a plain parametrize (test_config), for a
    # file that is not YAML and one with a bad value: each stack file fails once, in one line, and nothing else.
    result = run_in(
        repo, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-p", "no:randomly", "-p", "no:warnings",
        "tests/stacks/test_database.py", "tests/stacks/test_config.py",
        # Only the bad files' per-stack tests (the copy's good stacks pass elsewhere, and so do the modules' tests
        # that name no bad file): -k bad keeps each bad file's one failure (Pulumi.<stack>.yaml[<stack>],
        # tests/conftest.py) and any per-stack test of it that would run beside it. 5.5 s -> 1.7 s.
        "-k", "bad", env={ONLY_STACKS: "bad,badvalue"},
    )  # fmt: skip
    lines = [
        "Pulumi.bad.yaml, line 2, column 23: not valid YAML: mapping values are not allowed here",
        'Pulumi.badvalue.yaml: invalid configuration: pgstack:postgres.replicas: got "abc"; expected a whole number '
        "without quotes (YAML reads quoted text as text)",
    ]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, " in result.stdout and " error" not in result.stdout, result.stdout
    reports = result.stdout.split(" short test summary ")[0]
    for line in lines:
        assert reports.count(f"\n{line}\n") == 1, reports
    assert not [s for s in reports.splitlines() if s.startswith(("E ", "> ", "Traceback"))], reports
    # Two failures: the dots, two headers and the two lines; then the summary.
    assert len(result.stdout.splitlines()) <= 20, result.stdout
