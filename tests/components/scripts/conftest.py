"""Fixtures for the pod-script tests: real PostgreSQL servers on loopback ports.

Nothing here skips: without PostgreSQL binaries every test fails with a message
saying what to install.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .pg_harness import Cluster, HarnessError, Node, chown_run_user, copy_primary_data, primary_template, require_pg_bin, wait_for


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    try:
        return require_pg_bin()
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def make_cluster(pg_bin: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Factory for clusters; every server and script it started is stopped at teardown."""
    clusters: list[Cluster] = []

    def factory(**kwargs: Any) -> Cluster:
        cluster = Cluster(pg_bin, **kwargs)
        clusters.append(cluster)
        return cluster

    yield factory
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for cluster in clusters:
        report = cluster.close()
        if failed:
            print(f"\n===== cluster {cluster.base} =====\n{report}")


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


@pytest.fixture(scope="session")
def template(pg_bin: Path) -> Iterator[Node]:
    """A primary's data directory as init.sh makes it, made once per worker: the primaries of tests that do
    not test initdb start on copies of it (pg_harness.copy_primary_data). Every copy, in any module, has its
    system identifier: a test that needs two different databases makes the second with a real initdb."""
    with primary_template(pg_bin) as primary:
        yield primary


@pytest.fixture(scope="session")
def small_segment_template(pg_bin: Path) -> Iterator[Node]:
    """``template`` with 1 MiB WAL segments (pg_harness.small_segments), for the WAL tests' primaries."""
    with primary_template(pg_bin, small=True) as primary:
        yield primary


@pytest.fixture
def templated_cluster(make_cluster: Callable[..., Cluster], template: Node) -> Cluster:
    """A cluster whose primary's volume holds a copy of ``template``: init.sh and postgres start on data an initdb
    made once. A module whose tests watch something other than initdb makes it its ``cluster`` (and so its
    ``replicated``); clusters it makes itself with make_cluster are real initdbs."""
    made = make_cluster()
    copy_primary_data(template, made.primary)
    return made


@pytest.fixture
def replicated(cluster: Cluster) -> Cluster:
    """A running primary (pg-0) and one streaming standby (pg-standby-1)."""
    cluster.start_node(0)
    cluster.start_node(1)
    standby = cluster.node(1)
    wait_for(lambda: standby.receiver_status() == "streaming", 30, "standby to stream")
    return cluster


@pytest.fixture
def mount_tmpfs(cluster: Cluster) -> Iterator[Callable[[Path, str], None]]:
    """Mount a tmpfs of a given size on a directory (a volume). Needs root."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> None:
        if os.geteuid() != 0:
            pytest.fail("the full-volume tests mount a tmpfs: run the script tests as root", pytrace=False)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
        mounted.append(path)
        chown_run_user(path)

    yield mount
    cluster.stop_all()
    for path in reversed(mounted):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)
