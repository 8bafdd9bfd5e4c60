"""The notification configuration: one ConfigMap in the controller's own namespace names
the sinks and the routes (which Canaries, which triggers, which sinks); Secrets in the same
namespace hold the sinks' URLs, since a webhook URL carries its token.

Keeping both in the controller's namespace means the controller needs no right to read
Secrets anywhere else. A missing ConfigMap turns notifications off; an unusable one is a
PermanentError that names the ConfigMap, the key and the fix.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import Field, ValidationError

from canary.api.base import Model
from canary.errors import PermanentError
from canary.kube.errors import NotFound
from canary.kube.port import KubePort, Obj
from canary.notify import registry
from canary.notify.base import DEFAULT_TRIGGERS, Trigger

DEFAULT_CONFIGMAP = "canary-notifications"
CONFIG_KEY = "config.yaml"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SecretKeyRef(Model):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class SinkSpec(Model):
    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    type: str
    url_secret: SecretKeyRef


class Route(Model):
    sinks: list[str] = Field(min_length=1)
    namespaces: list[str] = Field(default_factory=list)  # empty: every namespace
    canaries: list[str] = Field(default_factory=list)  # Canary names; empty: every Canary
    triggers: list[str] | None = None  # None: every trigger but stepAdvanced

    def matches(self, namespace: str, name: str, trigger: Trigger) -> bool:
        chosen = DEFAULT_TRIGGERS if self.triggers is None else set(self.triggers)
        return (
            trigger in chosen
            and (not self.namespaces or namespace in self.namespaces)
            and (not self.canaries or name in self.canaries)
        )


class Delivery(Model):
    max_attempts: int = Field(default=5, ge=1, le=10)
    backoff_seconds: float = Field(default=2.0, gt=0, le=60)  # doubles after each failure
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)


class NotifyConfig(Model):
    sinks: list[SinkSpec] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    delivery: Delivery = Field(default_factory=Delivery)

    def sink(self, name: str) -> SinkSpec | None:
        return next((s for s in self.sinks if s.name == name), None)

    def sinks_for(self, namespace: str, name: str, trigger: Trigger) -> list[str]:
        """The sinks that hear of `trigger` for this Canary, each once, in route order."""
        found: dict[str, None] = {}
        for route in self.routes:
            if route.matches(namespace, name, trigger):
                found |= dict.fromkeys(route.sinks)
        return list(found)


def parse(configmap: Obj) -> NotifyConfig:
    meta = configmap.get("metadata") or {}
    where = f"ConfigMap {meta.get('namespace')}/{meta.get('name')}"
    text = (configmap.get("data") or {}).get(CONFIG_KEY)
    if text is None:
        raise PermanentError(
            f"{where} has no key {CONFIG_KEY}. Fix: put the sinks and routes under "
            f"data.{CONFIG_KEY} (README: Notifications), or delete the ConfigMap to turn "
            "notifications off"
        )
    where = f"{where}, key {CONFIG_KEY}"
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise PermanentError(f"{where} is not YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise PermanentError(f"{where} must be a mapping with sinks: and routes:")
    for i, sink in enumerate(raw.get("sinks") or []):
        if isinstance(sink, dict) and "url" in sink:
            raise PermanentError(
                f"{where}: sinks[{i}].url: a webhook URL carries its token, so it belongs in "
                "a Secret in this namespace. Fix: urlSecret: {name: SECRET, key: KEY}"
            )
    try:
        config = NotifyConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise PermanentError(f"{where}: {field.lstrip('.')}: {first['msg']}") from None
    _check(config, where)
    return config


def _check(config: NotifyConfig, where: str) -> None:
    seen: set[str] = set()
    for i, sink in enumerate(config.sinks):
        if sink.name in seen:
            raise PermanentError(f"{where}: sinks[{i}].name: {sink.name!r} is used twice")
        seen.add(sink.name)
        if sink.type not in registry.SINKS:
            raise PermanentError(
                f"{where}: sinks[{i}].type: {sink.type!r} is not a sink type; known: "
                f"{registry.supported()}"
            )
    known_triggers = ", ".join(t.value for t in Trigger)
    for i, route in enumerate(config.routes):
        for name in route.sinks:
            if name not in seen:
                raise PermanentError(
                    f"{where}: routes[{i}].sinks: no sink is named {name!r}; "
                    f"defined: {', '.join(sorted(seen)) or '(none)'}"
                )
        for trigger in route.triggers or []:
            if trigger not in Trigger.__members__.values():
                raise PermanentError(
                    f"{where}: routes[{i}].triggers: {trigger!r} is not a trigger; "
                    f"known: {known_triggers}"
                )


def secret_value(secret: Obj, key: str) -> str:
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace')}/{meta.get('name')}"
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        raise PermanentError(f"{where} has no key {key!r}. Fix: add the sink's URL under it")
    try:
        return base64.b64decode(encoded, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise PermanentError(f"{where}, key {key!r}: not base64-encoded UTF-8") from None


def check_url(url: str, where: str) -> str:
    if not url.startswith(("https://", "http://")) or len(url.split("/", 3)[2]) == 0:
        raise PermanentError(f"{where} must hold an http:// or https:// URL")
    return url


class ConfigSource:
    """The configuration as the controller reads it, cached for `ttl` seconds: a burst of
    transitions reads the ConfigMap once, and an edit takes effect within `ttl`."""

    def __init__(
        self,
        kube: KubePort,
        namespace: str,
        name: str = DEFAULT_CONFIGMAP,
        *,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._config: tuple[float, NotifyConfig | PermanentError | None] | None = None
        self._secrets: dict[str, tuple[float, Obj | None]] = {}

    def get(self) -> NotifyConfig | None:
        """The configuration; None when the ConfigMap does not exist (notifications off).
        Raises PermanentError when it exists and is unusable."""
        with self._lock:
            if self._config is None or self.clock() - self._config[0] >= self.ttl:
                self._config = (self.clock(), self._read())
            found = self._config[1]
        if isinstance(found, PermanentError):
            raise found
        return found

    def _read(self) -> NotifyConfig | PermanentError | None:
        try:
            configmap = self.kube.get_config_map(self.namespace, self.name)
        except NotFound:
            return None
        if configmap is None:
            return None
        try:
            return parse(configmap)
        except PermanentError as exc:
            return exc

    def url(self, sink: SinkSpec) -> str:
        ref = sink.url_secret
        where = f"Secret {self.namespace}/{ref.name}, key {ref.key!r} (sink {sink.name})"
        with self._lock:
            cached = self._secrets.get(ref.name)
            if cached is None or self.clock() - cached[0] >= self.ttl:
                cached = self._secrets[ref.name] = (
                    self.clock(),
                    self.kube.get_secret(self.namespace, ref.name),
                )
        if cached[1] is None:
            raise PermanentError(f"{where}: the Secret does not exist. Fix: create it")
        return check_url(secret_value(cached[1], ref.key), where)
