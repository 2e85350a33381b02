"""The pod env contract's model (components/pod_env_model.py): the checks a declaration must pass.

The contracts declared with it are tested in tests/components/test_pod_env_contract.py.
"""

from __future__ import annotations

import pytest

from components.pod_env_formats import PATH
from components.pod_env_model import EnvContract, EnvVar


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ((EnvVar("A", "a", format=PATH), EnvVar("A", "again", format=PATH)), "A: declared twice"),
        ((EnvVar("lower", "x", format=PATH),), "not an environment variable name"),
        ((EnvVar("A", "two\nlines", format=PATH),), "the meaning must be one non-empty line"),
        ((EnvVar("A", "a", "x\ny", format=PATH),), "a default must be one line"),
        ((EnvVar("A", "a", set_by_pod=False, format=PATH),), "a required variable must be set by the pod"),
        ((EnvVar("A", "a", read_by=("other.sh",), format=PATH),), "read_by names scripts outside"),
        ((EnvVar("A", "a"),), "A: a variable the scripts read needs a format"),
        ((EnvVar("A", "a", "7", format=PATH),), "A: the default '7' is not an absolute path"),
    ],
)
def test_a_bad_declaration_is_refused(variables: tuple[EnvVar, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvContract("T", "a test container", ("one.sh",), variables)
