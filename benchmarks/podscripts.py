"""A snapshot of the pod scripts for a benchmark: what the scripts ConfigMap ships, in one directory.

The benchmarks run init.sh from a copy taken once at their start (components/scripts/*
plus the files generated from Python beside them), so that every side of a comparison
runs the same scripts even while the working tree changes, and so that a side can run a
variant (``override``) without touching the tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "components" / "scripts"


def snapshot(dest: Path) -> Path:
    """Copy the scripts as the ConfigMap holds them to dest, readable by OS user postgres:
    tests/components/scripts/pg_harness.copy_scripts where the harness has it, else the same by hand."""
    try:
        from tests.components.scripts.pg_harness import copy_scripts
    except ImportError:
        shutil.copytree(SCRIPTS_DIR, dest)
        try:
            from components.pod_env_contract_sh import generated_scripts
        except ImportError:  # no generated files in this tree
            generated: dict[str, str] = {}
        else:
            generated = generated_scripts()
        for name, text in generated.items():
            (dest / name).write_text(text)
    else:
        copy_scripts(dest)
    dest.chmod(0o755)
    for path in dest.rglob("*"):
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    return dest


def override(scripts: Path, functions: dict[str, str]) -> Path:
    """Redefine bash functions in a snapshot: the body of each goes right after the file that
    defines it (found now, wherever the scripts keep it), before an entry script's `main "$@"`."""
    for name, body in functions.items():
        defines = re.compile(rf"^\s*(function\s+)?{re.escape(name)}\s*\(\s*\)", re.M)
        found = [p for p in sorted(scripts.rglob("*.sh")) if defines.search(p.read_text())]
        if len(found) != 1:
            raise SystemExit(f"expected one script defining {name}() under {scripts}, found {[p.name for p in found]}")
        path = found[0]
        text = path.read_text()
        call = re.search(r'^main\s+"\$@"\s*$', text, re.M)
        at = call.start() if call else len(text)
        head = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
        path.write_text(f"{head}# Benchmark override.\n{name}() {{ {body}; }}\n{text[at:]}")
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"overriding {name}() broke {path}: {check.stderr}")
    return scripts
