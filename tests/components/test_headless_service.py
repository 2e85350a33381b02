"""HeadlessService on its own: a governing Service for any StatefulSet."""

from __future__ import annotations

import pulumi
import pytest

from components.headless_service import HeadlessService
from components.headless_service_args import HeadlessServiceArgs, NamedPort
from tests.conftest import SVC, run_component
from tools.mock_run import plain as _plain


def _build(publish: bool) -> None:
    hs = HeadlessService(
        "web-hl",
        HeadlessServiceArgs(
            namespace="apps",
            selector={"app": "nginx"},
            ports=[NamedPort("web", 80), NamedPort("metrics", 9113, 9113)],
            publish_not_ready_addresses=publish,
        ),
    )
    pulumi.export("name", hs.service_name)
    pulumi.export("pattern", hs.pod_dns_pattern)


@pytest.mark.parametrize("publish", [False, True])
def test_headless_service_spec_and_outputs(publish: bool) -> None:
    run = run_component(lambda: _build(publish))
    component = run.one("pgstack:index:HeadlessService", "web-hl")
    svc = run.one(SVC, "web-hl")
    assert svc.parent == component.urn
    spec = _plain(svc.inputs["spec"])
    assert spec["clusterIP"] == "None"
    assert spec["selector"] == {"app": "nginx"}
    assert spec["publishNotReadyAddresses"] is publish
    assert spec["ports"] == [
        {"name": "web", "port": 80, "protocol": "TCP", "targetPort": "web"},
        {"name": "metrics", "port": 9113, "protocol": "TCP", "targetPort": 9113},
    ]
    assert svc.inputs["metadata"]["namespace"] == "apps"
    assert run.outputs == {"name": "web-hl", "pattern": "<pod>.web-hl.apps.svc.cluster.local"}


def test_headless_service_needs_a_port() -> None:
    with pytest.raises(ValueError, match="at least one port"):
        run_component(lambda: HeadlessService("x", HeadlessServiceArgs(namespace="n", selector={"a": "b"}, ports=[])))
