"""The controller's Prometheus metrics, served on /metrics next to the probes.

Per Canary, from its status after each reconcile (the status is the truth, so a restarted
controller shows the same values at once):

    canary_phase{namespace,name,phase}              1 for status.phase, 0 for the others
    canary_weight{namespace,name}                   status.canaryWeight, percent
    canary_step_index{namespace,name}               status.currentStepIndex, if any
    canary_steps{namespace,name}                    len(spec.steps)
    canary_metric_verdict{namespace,name,metric,verdict}
                                                    1 for each analysis metric's last verdict

A Canary's series go when it is deleted; a metric's when a new rollout drops it. Label
values come from names users already chose (namespace, Canary, the analysis metric keys
of its spec) or from fixed sets, never from measured values or revisions, so the number
of series is bounded by the Canaries and their specs.

Per namespace: canary_rollouts_total{namespace,outcome} and the histogram
canary_rollout_duration_seconds{namespace,outcome}, from a rollout's start to its outcome
(for a promotion: until stable runs the new revision). Outcomes: promoted, rolled_back,
failed, abandoned (the target went back to stable) and superseded (a newer revision
restarted the rollout). They count in this process only, as counters do: a restart
starts them again at 0, which rate() and increase() handle.

The controller itself: canary_reconcile_duration_seconds, canary_reconcile_errors_total
{kind}, canary_workqueue_depth{lane} and canary_kube_requests_total{verb,resource,code}.

Notifications: canary_notifications_total{sink,outcome}, per attempt: sent, retried (it
failed and will be tried again) or failed (it failed for good; a Warning Event
NotificationFailed says why). Sinks are the names in the notification ConfigMap.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from canary.api.status import CanaryStatus, Phase, Verdict
from canary.controller.workqueue import WorkQueue
from canary.engine.clock import seconds_since

IN_PROGRESS = (Phase.WAITING, Phase.PROGRESSING, Phase.PAUSED, Phase.BAKING, Phase.PROMOTING)
OUTCOMES = {
    Phase.SUCCEEDED: "promoted",
    Phase.ROLLED_BACK: "rolled_back",
    Phase.FAILED: "failed",
    Phase.IDLE: "abandoned",
}
SUPERSEDED = "superseded"
ERROR_KINDS = ("transient", "permanent", "crash")
NOTIFICATION_OUTCOMES = ("sent", "retried", "failed")
# Rollouts take from seconds (a bad canary caught at its first step) to hours (a gate
# that waits for evidence at low traffic, or for a human).
ROLLOUT_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.phase = Gauge(
            "canary_phase",
            "1 for the Canary's current phase (status.phase), 0 for each other phase.",
            ["namespace", "name", "phase"],
            registry=r,
        )
        self.weight = Gauge(
            "canary_weight",
            "Percent of traffic the canary revision receives (status.canaryWeight).",
            ["namespace", "name"],
            registry=r,
        )
        self.step_index = Gauge(
            "canary_step_index",
            "0-based index of the step the rollout is at (status.currentStepIndex); it "
            "equals canary_steps once every step is done. Absent while the status records "
            "none (before the first rollout, or while waiting for a deploy window).",
            ["namespace", "name"],
            registry=r,
        )
        self.steps = Gauge(
            "canary_steps", "Steps in the Canary's spec.steps.", ["namespace", "name"], registry=r
        )
        self.verdict = Gauge(
            "canary_metric_verdict",
            "1 for the last verdict of each analysis metric (status.analysis), 0 for each "
            "other verdict; all 0 before its first measurement.",
            ["namespace", "name", "metric", "verdict"],
            registry=r,
        )
        self.rollouts = Counter(
            "canary_rollouts",
            "Rollouts finished, by outcome.",
            ["namespace", "outcome"],
            registry=r,
        )
        self.rollout_duration = Histogram(
            "canary_rollout_duration_seconds",
            "Time from a rollout's start to its outcome.",
            ["namespace", "outcome"],
            buckets=ROLLOUT_BUCKETS,
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "canary_reconcile_duration_seconds",
            "Time one reconcile of one Canary took, failed ones included.",
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "canary_reconcile_errors",
            "Reconciles that failed: transient (retried with backoff), permanent (needs a "
            "human; reported on the Canary) or crash (a bug; logged with its traceback).",
            ["kind"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "canary_workqueue_depth",
            "Canaries due for a reconcile and waiting for a worker, by lane (urgent: "
            "changes and rollouts in progress; background: periodic resyncs).",
            ["lane"],
            registry=r,
        )
        self.kube_requests = Counter(
            "canary_kube_requests",
            "Requests to the Kubernetes API server, by verb, resource and HTTP status code "
            '("<error>": no answer).',
            ["verb", "resource", "code"],
            registry=r,
        )
        self.notifications = Counter(
            "canary_notifications",
            "Notification delivery attempts, by sink and outcome: sent, retried (failed, "
            "to be tried again) or failed (for good; see the NotificationFailed Event).",
            ["sink", "outcome"],
            registry=r,
        )
        # Series that exist from the start read 0 rather than nothing, so that rate() and
        # increase() see their first change.
        for kind in ERROR_KINDS:
            self.reconcile_errors.labels(kind)
        self._lock = threading.Lock()
        self._namespaces: set[str] = set()
        self._metric_keys: dict[tuple[str, str], set[str]] = {}

    # ---------------------------------------------------------------- per Canary

    def observe(
        self,
        namespace: str,
        name: str,
        steps: int,
        before: CanaryStatus,
        after: CanaryStatus,
        now: dt.datetime,
    ) -> None:
        """Show the status just recorded (`after`), and count the rollout that the move
        from `before` finished, if any."""
        with self._lock:
            self._count_outcome(namespace, before, after, now)
            for phase in Phase:
                self.phase.labels(namespace, name, phase.value).set(phase is after.phase)
            self.weight.labels(namespace, name).set(after.canary_weight)
            self.steps.labels(namespace, name).set(steps)
            if after.current_step_index is None:
                self.step_index.remove(namespace, name)
            else:
                self.step_index.labels(namespace, name).set(after.current_step_index)
            keys = {m.name for m in after.analysis}
            for key in self._metric_keys.get((namespace, name), set()) - keys:
                self._remove_verdicts(namespace, name, key)
            self._metric_keys[(namespace, name)] = keys
            for metric in after.analysis:
                for verdict in Verdict:
                    child = self.verdict.labels(namespace, name, metric.name, verdict.value)
                    child.set(verdict is metric.verdict)

    def forget(self, namespace: str, name: str) -> None:
        """The Canary is gone: drop its series, so that deleted Canaries do not pile up."""
        with self._lock:
            for phase in Phase:
                self.phase.remove(namespace, name, phase.value)
            for gauge in (self.weight, self.step_index, self.steps):
                gauge.remove(namespace, name)
            for key in self._metric_keys.pop((namespace, name), set()):
                self._remove_verdicts(namespace, name, key)

    def _count_outcome(
        self, namespace: str, before: CanaryStatus, after: CanaryStatus, now: dt.datetime
    ) -> None:
        if namespace not in self._namespaces:
            self._namespaces.add(namespace)
            for outcome in (*OUTCOMES.values(), SUPERSEDED):
                self.rollouts.labels(namespace, outcome)
                self.rollout_duration.labels(namespace, outcome)
        if before.phase not in IN_PROGRESS:
            return
        if after.phase in IN_PROGRESS:
            if after.canary_revision == before.canary_revision:
                return
            outcome = SUPERSEDED
        else:
            outcome = OUTCOMES[after.phase]
        self.rollouts.labels(namespace, outcome).inc()
        took = seconds_since(before.rollout_started_at, now)
        if took is not None:  # None: it waited for its deploy window and never started
            self.rollout_duration.labels(namespace, outcome).observe(max(0.0, took))

    def _remove_verdicts(self, namespace: str, name: str, key: str) -> None:
        for verdict in Verdict:
            self.verdict.remove(namespace, name, key, verdict.value)

    # ---------------------------------------------------------------- the controller

    def reconciled(self, seconds: float) -> None:
        self.reconcile_duration.observe(seconds)

    def failed(self, kind: str) -> None:
        """A reconcile failed; `kind` is one of ERROR_KINDS."""
        self.reconcile_errors.labels(kind).inc()

    def watch_queue(self, queue: WorkQueue) -> None:
        """Read the queue's depth at each scrape."""
        for lane, background in (("urgent", False), ("background", True)):
            self.queue_depth.labels(lane).set_function(
                functools.partial(queue.depth, background=background)
            )

    def notification(self, sink: str, outcome: str) -> None:
        """One delivery attempt to `sink`; `outcome` is one of NOTIFICATION_OUTCOMES."""
        for each in NOTIFICATION_OUTCOMES:  # all three series exist from the first attempt
            self.notifications.labels(sink, each)
        self.notifications.labels(sink, outcome).inc()

    def kube_request(self, verb: str, resource: str, code: str) -> None:
        self.kube_requests.labels(verb, resource, code).inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (OpenMetrics or Prometheus
        text), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
