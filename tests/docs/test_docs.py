"""The README is a front door and docs/ holds the rest; every place that cites a section cites a stable anchor.

Messages printed inside the pods, by the config and by bin/ name a section as `docs/<file>.md#<anchor>` (or
`README.md#<anchor>`): an explicit `<a id="..."></a>` before the heading, which survives edits of the heading's
text. This file checks that each cited anchor exists, that nothing cites a README section by its title any
more, and that the docs' own links and tables of contents resolve.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.stack_files import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [README, *DOCS]
# Where messages and comments may cite a section: the program, its commands, the policy pack, the docs.
CITING = ("components", "stacks", "tools", "bin", "policy", "docs")
SOURCE_SUFFIXES = {"", ".py", ".sh", ".md", ".json", ".yaml", ".yml"}
CITATION = re.compile(r"(?<![\w/.-])((?:docs/[\w-]+\.md)|README\.md)#([\w-]*)")
ANCHOR = re.compile(r'<a id="([\w-]+)"></a>')
LINK = re.compile(r"\]\(([^)\s#]*)#([^)\s]*)\)")
HEADING = re.compile(r"^(#{2,4}) (.+)$", re.MULTILINE)
CONTENTS_FROM = 100  # lines: a doc this long opens with a table of contents


def anchors(path: Path) -> list[str]:
    return ANCHOR.findall(path.read_text())


def citing_files(top: str) -> list[Path]:
    """The text files under one of CITING (the policy pack's own venv and caches left out)."""
    root = ROOT / top
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in SOURCE_SUFFIXES and not {"venv", "__pycache__"} & set(p.relative_to(ROOT).parts)
    )


def citations(top: str) -> list[tuple[Path, str, str]]:
    return [(p, target, anchor) for p in citing_files(top) for target, anchor in CITATION.findall(p.read_text())]


def test_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_readme_starts_with_the_two_set_up_commands() -> None:
    """The title, then at once the block with exactly the deploy and the whole test suite, as today."""
    lines = README.read_text().splitlines()
    assert lines[0].startswith("# pgstack")
    body = [line for line in lines[1:] if line.strip()]
    assert body[0] == "```bash"
    block = body[1 : body.index("```", 1)]
    assert [line.split("#", 1)[0].strip() for line in block] == ["bin/up", "bin/test"]


def test_readme_links_every_doc() -> None:
    text = README.read_text()
    for doc in DOCS:
        assert f"](docs/{doc.name})" in text, f"README.md does not link docs/{doc.name}"


@pytest.mark.parametrize("top", CITING)
def test_every_cited_anchor_exists_in_its_file(top: str) -> None:
    found = citations(top)
    for path, target, anchor in found:
        where = f"{path.relative_to(ROOT)} cites {target}#{anchor}"
        assert (ROOT / target).is_file(), f"{where}: no file {target}"
        assert anchor in anchors(ROOT / target), f'{where}: no <a id="{anchor}"></a> in {target}'


def test_the_messages_cite_anchors() -> None:
    """The in-pod and bin/ messages that send a reader to a section do it through an anchor (checked above)."""
    cited = {(target, anchor) for top in ("components", "bin") for _, target, anchor in citations(top)}
    assert ("docs/operations.md", "recover-a-stuck-rollout") in cited
    assert ("docs/operations.md", "primary-lost-its-volume") in cited
    assert ("docs/operations.md", "upgrade-major") in cited
    assert ("README.md", "day-to-day") in cited


@pytest.mark.parametrize("top", CITING)
def test_nothing_cites_a_readme_section_by_title(top: str) -> None:
    """README titles are no API: every mention of the README is a link to one of its anchors."""
    offenders = []
    for path in citing_files(top):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"README(?!\.md#[\w-]+)", line) and "](../README.md" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_to_a_section_resolves(path: Path) -> None:
    for target, anchor in LINK.findall(path.read_text()):
        file = (path.parent / target).resolve() if target else path
        assert file.is_file(), f"{path.name}: link to a missing file {target}"
        if file.suffix == ".md":
            assert anchor in anchors(file), f'{path.name}: link to {target}#{anchor}, no <a id="{anchor}"></a> there'


def sections(path: Path) -> list[tuple[str, str]]:
    """Each heading below the title, outside code blocks, with the line before it (blank lines skipped)."""
    found, in_code, previous = [], False, ""
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and HEADING.match(line):
            found.append((previous, line))
        if line.strip():
            previous = line
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_section_has_a_stable_anchor(path: Path) -> None:
    """Each heading below the title follows an explicit anchor, and no anchor is defined twice in a file."""
    ids = anchors(path)
    assert len(ids) == len(set(ids)), f"{path.name}: an anchor defined twice"
    for previous, heading in sections(path):
        assert ANCHOR.fullmatch(previous), f"{path.name}: no <a id> right before {heading!r}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_a_long_doc_opens_with_a_table_of_contents_of_every_section(path: Path) -> None:
    text = path.read_text()
    if len(text.splitlines()) < CONTENTS_FROM:
        pytest.skip(f"under {CONTENTS_FROM} lines")
    head = text[: text.index("\n<a id=")]
    assert "Contents:" in head, f"{path.name}: no table of contents before the first section"
    listed = [anchor for target, anchor in LINK.findall(head) if not target]
    for previous, heading in sections(path):
        match = ANCHOR.fullmatch(previous)
        assert match and match.group(1) in listed, f"{path.name}: the contents leave out {heading!r}"
