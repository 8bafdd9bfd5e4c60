"""The notification ConfigMap: what it routes where, and errors that name the key and the fix."""

from __future__ import annotations

import pytest
from fake_kube import FakeKube

from canary.errors import PermanentError
from canary.notify.base import Trigger
from canary.notify.config import CONFIG_KEY, ConfigSource, NotifyConfig, parse

pytestmark = pytest.mark.unit

NS = "canary-system"
GOOD = """
sinks:
  - {name: team-chat, type: slack, urlSecret: {name: hooks, key: chat}}
  - {name: audit, type: cloudevents, urlSecret: {name: hooks, key: audit}}
routes:
  - sinks: [team-chat]
    namespaces: [shop]
    canaries: [checkout]
    triggers: [rolledBack, stepAdvanced]
  - sinks: [audit, team-chat]
delivery: {maxAttempts: 3, backoffSeconds: 0.5}
"""


def configmap(text: str | None) -> dict:
    data = {} if text is None else {CONFIG_KEY: text}
    return {"metadata": {"name": "canary-notifications", "namespace": NS}, "data": data}


def test_routes_pick_sinks_by_namespace_canary_and_trigger() -> None:
    config = parse(configmap(GOOD))
    assert config.delivery.max_attempts == 3 and config.delivery.timeout_seconds == 5.0
    assert config.sinks_for("shop", "checkout", Trigger.ROLLED_BACK) == ["team-chat", "audit"]
    # The second route takes the default triggers: every one but stepAdvanced.
    assert config.sinks_for("shop", "checkout", Trigger.STEP_ADVANCED) == ["team-chat"]
    assert config.sinks_for("shop", "cart", Trigger.STEP_ADVANCED) == []
    assert config.sinks_for("pay", "checkout", Trigger.PROMOTED) == ["audit", "team-chat"]
    # Reserved triggers may be routed already.
    assert config.sinks_for("pay", "x", Trigger.BAKE_FINISHED) == ["audit", "team-chat"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, f"has no key {CONFIG_KEY}. Fix: put the sinks and routes under data.{CONFIG_KEY}"),
        ("sinks: [", "is not YAML at line 1"),
        ("- a list", "must be a mapping with sinks: and routes:"),
        (
            "sinks: [{name: a, type: slak, urlSecret: {name: s, key: k}}]",
            "sinks[0].type: 'slak' is not a sink type; known: cloudevents, mattermost, slack, "
            "teams",
        ),
        ("sinks: [{name: a, type: slack}]", "sinks[0].urlSecret: Field required"),
        (
            "sinks: [{name: a, type: slack, url: 'https://x'}]",
            "sinks[0].url: a webhook URL carries its token",
        ),
        (
            "sinks: [{name: a, type: slack, urlSecret: {name: s, key: k}}]\nroutes: [{sinks: [b]}]",
            "routes[0].sinks: no sink is named 'b'; defined: a",
        ),
        (
            "sinks: [{name: a, type: slack, urlSecret: {name: s, key: k}}]\n"
            "routes: [{sinks: [a], triggers: [rollback]}]",
            "routes[0].triggers: 'rollback' is not a trigger; known: rolloutStarted, "
            "stepAdvanced, paused, rolledBack, promoted, bakeFinished, undo",
        ),
        (
            "sinks: [{name: a, type: slack, urlSecret: {name: s, key: k}},"
            " {name: a, type: teams, urlSecret: {name: s, key: k}}]",
            "sinks[1].name: 'a' is used twice",
        ),
        ("delivery: {maxAttempts: 100}", "delivery.maxAttempts: Input should be less than"),
    ],
)
def test_an_unusable_configmap_names_the_key_and_what_is_wrong(
    text: str | None, message: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        parse(configmap(text))
    assert f"ConfigMap {NS}/canary-notifications" in str(caught.value)
    assert message in str(caught.value)


def test_the_source_reads_the_configmap_and_the_secret_in_its_namespace() -> None:
    kube = FakeKube()
    now = [0.0]
    source = ConfigSource(kube, NS, ttl=10.0, clock=lambda: now[0])
    assert source.get() is None  # no ConfigMap: notifications off
    kube.seed_config_map(NS, "canary-notifications", {CONFIG_KEY: GOOD})
    assert source.get() is None  # cached for the ttl
    now[0] = 10.0
    config = source.get()
    assert isinstance(config, NotifyConfig)
    chat = config.sink("team-chat")
    assert chat is not None
    with pytest.raises(PermanentError, match=f"Secret {NS}/hooks, key 'chat' .*does not exist"):
        source.url(chat)
    now[0] = 20.0
    kube.seed_secret(NS, "hooks", {"chat": "https://hooks.slack.com/services/T/B/x\n"})
    assert source.url(chat) == "https://hooks.slack.com/services/T/B/x"
    audit = config.sink("audit")
    assert audit is not None
    with pytest.raises(PermanentError, match=r"has no key 'audit'\. Fix: add the sink's URL"):
        source.url(audit)
    kube.seed_secret(NS, "hooks", {"chat": "hooks.slack.com", "audit": "x"})
    now[0] = 30.0
    with pytest.raises(PermanentError, match="must hold an http:// or https:// URL"):
        source.url(chat)


def test_a_broken_configmap_is_an_error_every_time_until_fixed() -> None:
    kube = FakeKube()
    now = [0.0]
    source = ConfigSource(kube, NS, ttl=1.0, clock=lambda: now[0])
    kube.seed_config_map(NS, "canary-notifications", {"other": "x"})
    for _ in range(2):
        with pytest.raises(PermanentError, match="has no key"):
            source.get()
    kube.seed_config_map(NS, "canary-notifications", {CONFIG_KEY: GOOD})
    now[0] = 1.0
    assert source.get() is not None
