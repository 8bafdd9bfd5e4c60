"""What a reconcile reads besides the Deployments: the analysis templates in reach, the
due measurements, the due webhooks' answers, and the CLI's pending request, all as the
pure engine takes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from canary.api import naming, request_codec
from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import Canary, template_key
from canary.controller import webhooks
from canary.controller.logs import reconcile_log as log
from canary.engine.actions import ManualRequest, RejectedRequest
from canary.engine.hooks import WebhookResult, due_webhooks
from canary.engine.samples import ProviderFailure, Sample
from canary.engine.tasks import due_tasks
from canary.errors import PermanentError
from canary.kube.port import KubePort
from canary.providers.registry import provider_for


def parse_request(
    annotations: Mapping[str, str], last_id: str | None, now: dt.datetime
) -> ManualRequest | RejectedRequest | None:
    """The CLI's pending request, if it is new; one the codec refuses comes back rejected,
    with the reason, so that the engine consumes it once with a Warning event."""
    raw = annotations.get(naming.ANNOTATION_REQUEST)
    if not raw:
        return None
    try:
        data = request_codec.decode(raw, now)
    except request_codec.InvalidRequest as exc:
        request: ManualRequest | RejectedRequest = RejectedRequest(exc.id, exc.why)
    else:
        request = ManualRequest(data.id, data.action, data.full, data.user, data.sent_at)
    return None if request.id == last_id else request


def read_templates(kube: KubePort, ns: str) -> dict[str, AnalysisTemplateSpec]:
    out: dict[str, AnalysisTemplateSpec] = {}
    for t in kube.list_templates(ns):
        try:
            spec = AnalysisTemplateSpec.model_validate(t.get("spec") or {})
        except ValidationError:
            continue  # reported as "template invalid/missing" by validation
        cluster = t.get("kind") == "ClusterAnalysisTemplate"
        out[template_key(t["metadata"]["name"], cluster)] = spec
    return out


def measure(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    now: dt.datetime,
    prometheus_url: str | None,
    beat: Callable[[], None],
) -> dict[str, Sample]:
    """Every due measurement; `beat` tells the health check that a slow provider is not
    a stuck worker."""
    samples: dict[str, Sample] = {}
    for task in due_tasks(canary, templates, now):
        beat()
        try:
            provider = provider_for(task.metric, default_addresses={"prometheus": prometheus_url})
            samples[task.key] = provider.measure(task)
        except PermanentError as exc:
            samples[task.key] = ProviderFailure(str(exc), transient=False)
        except Exception as exc:  # user data must never stop the deadline and rollback
            log.exception("%s: measuring %s failed", canary.metadata.name, task.key)
            failure = f"measuring failed unexpectedly: {type(exc).__name__}: {exc}"
            samples[task.key] = ProviderFailure(failure, transient=False)
    return samples


def call_webhooks(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    now: dt.datetime,
    *,
    canary_ready: bool,
    beat: Callable[[], None],
) -> dict[str, WebhookResult]:
    """Every due webhook's answer, by name (controller/webhooks.py bounds the wait)."""
    calls = due_webhooks(canary, templates, now, canary_ready=canary_ready)
    return webhooks.call_all(calls, beat)
