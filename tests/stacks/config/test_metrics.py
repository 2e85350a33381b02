"""The metrics: block: defaults, the stacks that turn it on, and each bad value refused in one line that names
the key, the value and the accepted form, before any resource is registered."""

from __future__ import annotations

import os
from typing import Any

import pytest

from components.postgres_metrics_args import EXPORTER_DIGEST, EXPORTER_IMAGE
from stacks.args import metrics_args, postgres_args
from stacks.config import ConfigError, Settings, parse_settings
from tests.conftest import settings_of
from tests.repo_copy import INNER


def _refusal(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "dev")
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid configuration:" and len(lines) == 2, lines
    return lines[1].strip()


def test_off_by_default_with_no_scraper_and_the_pinned_image() -> None:
    metrics = Settings().metrics
    assert (metrics.enabled, metrics.allowFrom, metrics.podMonitor, metrics.prometheusRule) == (False, [], False, False)
    assert metrics.image.reference == EXPORTER_IMAGE
    settings = Settings()
    assert metrics_args(settings) is None and postgres_args(settings, "db", "c").metrics is None


@pytest.mark.skipif(os.environ.get(INNER) == "1", reason="the committed stack files: a copy edits them (tests/stacks/test_new_stacks.py)")
def test_prod_and_staging_turn_metrics_on_and_dev_does_not() -> None:
    prod, staging, dev = settings_of("prod").metrics, settings_of("staging").metrics, settings_of("dev").metrics
    assert prod.enabled and prod.podMonitor and prod.prometheusRule
    assert staging.enabled and not dev.enabled
    # The common case: a Prometheus in namespace monitoring.
    for m in (prod, staging):
        assert [p.namespaceLabels for p in m.allowFrom] == [{"kubernetes.io/metadata.name": "monitoring"}]


def test_settings_map_onto_the_args() -> None:
    raw = {
        "metrics": {
            "enabled": True,
            "allowFrom": [{"podLabels": {"app": "prometheus"}, "namespaceLabels": {}}, {"cidr": "10.1.0.0/16"}],
            "podMonitor": True,
            "image": {"repository": "registry.example.com/pe", "pullPolicy": "Always"},
        }
    }
    args = postgres_args(parse_settings(raw, "dev"), "db", "c").metrics
    assert args is not None
    assert args.image == f"registry.example.com/pe:v0.20.1@{EXPORTER_DIGEST}" and args.image_pull_policy == "Always"
    peers = [(p.pod_labels, p.namespace_labels, p.cidr) for p in args.allow_from]
    assert peers == [({"app": "prometheus"}, {}, None), ({}, None, "10.1.0.0/16")]
    assert (args.pod_monitor, args.prometheus_rule) == (True, False)


def test_the_default_digest_goes_with_the_default_tag_only() -> None:
    def image(**kw: Any) -> str:
        return parse_settings({"metrics": {"image": kw}}, "dev").metrics.image.reference

    # Another tag without a digest runs that tag, never 0.20.1's digest under its name.
    assert image(tag="v0.19.0") == "quay.io/prometheuscommunity/postgres-exporter:v0.19.0"
    assert image(tag="v0.19.0", digest="sha256:" + "ab" * 32) == "quay.io/prometheuscommunity/postgres-exporter:v0.19.0@sha256:" + "ab" * 32
    assert image(tag="v0.20.1") == EXPORTER_IMAGE
    assert image(digest=None) == "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (
            {"metrics": {"podMonitor": True}},
            "pgstack:metrics.podMonitor: got true; expected false while enabled is false: it selects or alerts on the exporter",
        ),
        ({"metrics": {"prometheusRule": True}}, "pgstack:metrics.prometheusRule: got true; expected false while enabled is false"),
        (
            {"postgres": {"username": "pgstack_monitor"}},
            'pgstack:postgres.username: got "pgstack_monitor"; expected a role name other than pgstack_monitor (reserved',
        ),
        (
            {"postgres": {"replication": {"user": "pgstack_monitor"}}},
            'pgstack:postgres.replication.user: got "pgstack_monitor"; expected a role name other than pgstack_monitor',
        ),
        ({"metrics": {"enabled": True, "allowFrom": [{"cidr": "10.0.0.1/8"}]}}, 'pgstack:metrics.allowFrom.0.cidr: got "10.0.0.1/8"'),
        (
            {"metrics": {"enabled": True, "allowFrom": [{"cidr": "10.0.0.0/8", "podLabels": {"a": "b"}}]}},
            'pgstack:metrics.allowFrom.0.cidr: got "10.0.0.0/8"; expected either cidr or metrics.allowFrom.0.podLabels',
        ),
        ({"metrics": {"image": {"tag": 0.2}}}, "pgstack:metrics.image.tag: got 0.2; expected a quoted string: YAML reads 0.2 as a number"),
        ({"metrics": {"image": {"tag": "-bad"}}}, 'pgstack:metrics.image.tag: got "-bad"; expected an image tag'),
        ({"metrics": {"image": {"digest": "sha256:abc"}}}, 'pgstack:metrics.image.digest: got "sha256:abc"; expected sha256:'),
        ({"metrics": {"image": {"repository": "q.io/pe:v1"}}}, 'pgstack:metrics.image.repository: got "q.io/pe:v1"; expected'),
        ({"metrics": {"image": {"pullPolicy": "Sometimes"}}}, 'pgstack:metrics.image.pullPolicy: got "Sometimes"'),
        ({"metrics": {"enabled": "true"}}, 'pgstack:metrics.enabled: got "true"; expected true or false without quotes'),
        ({"metrics": {"enabeld": True}}, "pgstack:metrics.enabeld: unknown key (value true); did you mean metrics.enabled?"),
    ],
)
def test_bad_values_are_refused_in_one_line(raw: dict[str, Any], line: str) -> None:
    assert _refusal(raw).startswith(line)
