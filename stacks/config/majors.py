"""PostgreSQL majors: the end-of-life calendar, the supported majors, the image users' uids, and the
official images' digests we know (a digest decides what the node runs)."""

from __future__ import annotations

import re
from datetime import date

from components.pod_security import POSTGRES_UID
from components.postgres_args import ALPINE_UID as ALPINE_UID  # re-exported: stacks.config names it
from components.postgres_args import SUPPORTED_PG_MAJORS as SUPPORTED_PG_MAJORS
from stacks.config.errors import FieldError, such_as

# ---------------------------------------------------------------- PostgreSQL majors

# The day each PostgreSQL major stops (or stopped) getting fixes, security fixes included: the
# "Final Release" column of https://www.postgresql.org/support/versioning/ (as mirrored by
# endoflife-date/endoflife.date products/postgresql.md). The one place these dates live.
# 9 stands for 9.6, the last 9.x (tags 9.6, 9.6.24).
PG_END_OF_LIFE: dict[int, date] = {
    9: date(2021, 11, 11),
    10: date(2022, 11, 10),
    11: date(2023, 11, 9),
    12: date(2024, 11, 21),
    13: date(2025, 11, 13),
    14: date(2026, 11, 12),
    15: date(2027, 11, 11),
    16: date(2028, 11, 9),
    17: date(2029, 11, 8),
    18: date(2030, 11, 14),
}

# SUPPORTED_PG_MAJORS, ALPINE_UID (components/postgres_args.py): the majors the pods support, the uid of the
# Alpine images' postgres user. Every major older than the first is past its end of life and refused with its date.
POD_UID = POSTGRES_UID


# The official postgres images whose digests we know: digest -> the PostgreSQL version it runs. Each major's
# trixie image as docker-library/repo-info lists it at commit 0b63eeca29bdd695a0db3d3249137b9929da650d,
# repos/postgres/remote/<major>-trixie.md: the index digest (line 4, what `docker pull postgres:<tag>` resolves)
# and the linux/amd64 image's (line 29), with the image's ENV PG_VERSION. A digest not listed here is accepted
# unchecked; init.sh still refuses a server of another major (STACK_PG_MAJOR).
KNOWN_DIGESTS: dict[str, str] = {
    "sha256:86c951e05bf56c93d95d397747fb8820ac76cc3bedb78f43abd83eedbe3666ae": "18.6",  # 18-trixie, the stacks' pin
    "sha256:0377e72c5289ed2f98cf61b1a9c2db9eb9d300317fe14244492fbc94343b3d04": "18.6",  # 18-trixie linux/amd64
    "sha256:f4c66b820c6f974249089d3d16d86a3698eae11e8746eb6644b2271031e91232": "17.11",  # 17-trixie
    "sha256:e31e3d5327d1806f6177827c9710643e4f35f7ab3f14d26d05332753d3e95ee0": "17.11",  # 17-trixie linux/amd64
    "sha256:a3b7f434b2dc57ce85a67e171163eb8ab1a1ebcb39d27484661f26b1dfbe30d6": "16.15",  # 16-trixie
    "sha256:a85daf0dbd5e79586e850e3fe4b21b796799828ad015ce2166aeb98cc24da61c": "16.15",  # 16-trixie linux/amd64
    "sha256:dfbbb0ad8cab91d41e99123664e37a9b25d0413426d4fb3154e4d668e5d35246": "15.19",  # 15-trixie
    "sha256:e27d24a29acce1b554771ba68c43afa55446069d228310451bb8c96c1531d2cb": "15.19",  # 15-trixie linux/amd64
}


def tag_names_version(tag: str, version: str) -> bool:
    """Whether a tag's version (18, 18.6, 18.6-trixie) is `version` (18.6) or a prefix of it."""
    numbers = re.match(r"[0-9]+(?:\.[0-9]+)*", tag)
    return numbers is not None and version.split(".")[: numbers[0].count(".") + 1] == numbers[0].split(".")


def digest_matches_tag(tag: str, digest: str | None) -> None:
    """The digest decides what the node runs; the tag decides the data layout and what init.sh expects."""
    version = KNOWN_DIGESTS.get(digest or "")
    if version is None or tag_names_version(tag, version):
        return
    raise FieldError(
        "tag",
        tag,
        f"the version image.digest runs: {digest} is postgres:{version} (docker-library/repo-info), so the pods would "
        f"run PostgreSQL {version} whatever the tag says; set the tag to it, {such_as(version, version.split('.')[0])}, "
        "or pin the digest of the version you mean",
    )
