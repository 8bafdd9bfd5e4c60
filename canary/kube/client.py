"""The only module that talks to the Kubernetes API.

Everything else gets plain dicts in and out, and typed errors: NotFound and Forbidden
are permanent (tell the user), Conflict and server/network trouble are transient
(retry on the next reconcile), Gone means "re-list, your resourceVersion is too old".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from canary.api.models import GROUP, VERSION
from canary.errors import PermanentError, TransientError
from canary.kube.cache import Store

Obj = dict[str, Any]

CANARY_PLURAL = "canaries"
TEMPLATE_PLURAL = "analysistemplates"
CLUSTER_TEMPLATE_PLURAL = "clusteranalysistemplates"


class NotFound(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class Conflict(TransientError):
    pass


class Gone(TransientError):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


def _translate(exc: ApiException, what: str) -> Exception:
    status = exc.status or 0
    reason = exc.reason or ""
    if status == 404:
        return NotFound(f"{what} not found")
    if status in (401, 403):
        return Forbidden(f"{what}: {reason} (check the kubeconfig user or the controller's RBAC)")
    if status == 409:
        return Conflict(f"{what}: conflict, will retry")
    if status == 410:
        return Gone(f"{what}: resourceVersion too old")
    if status == 422 or status == 400:
        return PermanentError(f"{what} rejected by the API server: {_message(exc)}")
    if status == 500 and "range is full" in _message(exc):
        # Retrying cannot help until someone frees addresses or widens the range.
        return PermanentError(
            f"{what}: the cluster has no free Service IP address ({_message(exc)}). Fix: "
            "delete unused Services, or widen the API server's --service-cluster-ip-range"
        )
    return TransientError(f"{what}: API server answered {status} {reason}")


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "").get("message", exc.body))
    except (TypeError, ValueError):
        return str(exc.body)


REQUEST_TIMEOUT = 30.0  # seconds; a half-open connection must not hang a worker forever


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise _translate(exc, what) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(f"{what}: cannot reach the API server ({exc})") from None


def _json(what: str, fn: Any, *args: Any) -> Obj:
    """The server's answer as plain JSON, skipping the client's typed models (their
    conversion costs more CPU than the request itself)."""
    return dict(json.loads(_call(what, fn, *args, _preload_content=False).data))


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
RequestObserver = Callable[[str, str, str], None]


def request_labels(method: str, target: str) -> tuple[str, str]:
    """(verb, resource) of an API request to `target` (path and query, without the
    server's address), named as the API server's audit log names them: verb
    get/list/watch/create/update/patch/delete/deletecollection, resource "plural" or
    "plural/subresource" (e.g. canaries/status), "" for a non-resource path. The namespace
    and object name are left out, so the values are bounded by the code, not the cluster."""
    parts = urllib.parse.urlsplit(target)
    path = parts.path.strip("/").split("/")
    # /api/v1/... (the core group) or /apis/GROUP/VERSION/...
    rest = path[2:] if path[:1] == ["api"] else path[3:] if path[:1] == ["apis"] else []
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = "/".join(rest[:1] + rest[2:3])
    collection = len(rest) == 1
    if method == "GET":
        if "watch=true" in parts.query.split("&"):
            return "watch", resource
        return ("list" if collection else "get"), resource
    if method == "DELETE":
        return ("deletecollection" if collection else "delete"), resource
    return _VERBS.get(method, method.lower()), resource


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """A thin client: dicts in, dicts out, typed errors."""

    def __init__(self, kubeconfig: str | Path | None = None, context: str | None = None):
        try:
            if (
                kubeconfig is None
                and "KUBECONFIG" not in os.environ
                and os.environ.get("KUBERNETES_SERVICE_HOST")
            ):
                config.load_incluster_config()
                self.api = client.ApiClient()
            else:
                path = str(kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config"))
                path = os.path.expanduser(path.split(os.pathsep)[0])
                if not os.path.exists(path):
                    raise PermanentError(
                        f"kubeconfig {path} does not exist. Fix: pass --kubeconfig FILE or set "
                        "KUBECONFIG (for the local sandbox: eval $(canary sandbox env))."
                    )
                if not os.path.isfile(path):
                    raise PermanentError(
                        f"kubeconfig {path} is not a file. Fix: pass the kubeconfig file itself "
                        "with --kubeconfig FILE."
                    )
                self.api = config.new_client_from_config(config_file=path, context=context)
        except ConfigException as exc:
            raise PermanentError(f"cannot load the Kubernetes config: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise PermanentError(
                f"kubeconfig {path} is not valid YAML{where}. Fix: point --kubeconfig at a "
                "kubeconfig file (kubectl config view --raw writes one)."
            ) from None
        except OSError as exc:
            raise PermanentError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
        # The controller's watch-fed cache; None (the CLI): every read asks the server.
        self.cache: Store | None = None
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.events = client.EventsV1Api(self.api)
        self.auth = client.AuthorizationV1Api(self.api)
        self.authn = client.AuthenticationV1Api(self.api)
        self.apiext = client.ApiextensionsV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)

    def on_request(self, observe: RequestObserver) -> None:
        """Call `observe(verb, resource, code)` for every request this client sends, with
        the HTTP status code, or "<error>" when no answer came. Counted below the client
        library, so watches and the few calls that bypass _call count too."""
        send, server = self.api.rest_client.request, self.api.configuration.host

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            verb, resource = request_labels(method, url.removeprefix(server))
            try:
                response = send(method, url, *args, **kwargs)
            except Exception:
                observe(verb, resource, "<error>")
                raise
            observe(verb, resource, str(response.status))
            return response

        # The client library has no hook for this: wrap the one method every request takes.
        self.api.rest_client.request = request  # type: ignore[method-assign]

    # ------------------------------------------------------------- canary.dev objects

    def _cached(self, kind: str) -> Store | None:
        return self.cache if self.cache is not None and self.cache.synced(kind) else None

    def _remember(self, kind: str, obj: Obj) -> Obj:
        if self.cache is not None:
            self.cache.apply(kind, "MODIFIED", obj)
        return obj

    def get_canary(self, ns: str, name: str) -> Obj:
        if cache := self._cached("Canary"):
            found = cache.get("Canary", ns, name)
            if found is None:
                raise NotFound(f"Canary {ns}/{name} not found")
            return found
        return _call(
            f"Canary {ns}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
        )

    def list_canaries(self, ns: str | None) -> tuple[list[Obj], str]:
        return self.list_objects("Canary", ns)

    def require_crds(self) -> None:
        """Fail early, with the fix, when the CRDs are not installed."""
        try:
            self.apiext.read_custom_resource_definition(
                f"{CANARY_PLURAL}.{GROUP}", _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                raise PermanentError(
                    f"the Canary CRD ({CANARY_PLURAL}.{GROUP}) is not installed in this cluster."
                    " Fix: kubectl apply -k manifests/"
                ) from None
            if exc.status not in (401, 403):  # users may lack CRD read rights; go on
                raise _translate(exc, "CustomResourceDefinition canaries") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"cannot reach the API server ({exc})") from None

    def patch_canary_status(self, ns: str, name: str, status: Obj, resource_version: str) -> Obj:
        """Write the whole status once; the resourceVersion guards against lost updates."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return self._remember("Canary", _call(
            f"Canary {ns}/{name} status",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
            body,
        ))

    def _patch_canary_metadata(self, ns: str, name: str, metadata: Obj) -> Obj:
        return self._remember("Canary", _call(
            f"Canary {ns}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
            {"metadata": metadata},
        ))

    def set_canary_finalizers(
        self, ns: str, name: str, finalizers: list[str], resource_version: str
    ) -> Obj:
        """Replace the finalizer list; the resourceVersion guards others' finalizers."""
        metadata = {"finalizers": finalizers, "resourceVersion": resource_version}
        return self._patch_canary_metadata(ns, name, metadata)

    def annotate_canary(self, ns: str, name: str, annotations: dict[str, str | None]) -> Obj:
        return self._patch_canary_metadata(ns, name, {"annotations": annotations})

    def list_templates(self, ns: str) -> list[Obj]:
        if (cache := self._cached("AnalysisTemplate")) and self._cached(
            "ClusterAnalysisTemplate"
        ):
            return cache.items("AnalysisTemplate", ns) + cache.items(
                "ClusterAnalysisTemplate", None
            )
        local = _call(
            "list AnalysisTemplates",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            TEMPLATE_PLURAL,
        )["items"]
        cluster: list[Obj]
        try:
            cluster = self.custom.list_cluster_custom_object(  # type: ignore[index]
                GROUP, VERSION, CLUSTER_TEMPLATE_PLURAL
            )["items"]
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise _translate(exc, "list ClusterAnalysisTemplates") from None
            cluster = []
        return local + cluster

    def _list_call(self, kind: str, ns: str | None) -> tuple[Any, tuple[Any, ...]]:
        if kind == "Deployment":
            if ns:
                return self.apps.list_namespaced_deployment, (ns,)
            return self.apps.list_deployment_for_all_namespaces, ()
        plural = {
            "Canary": CANARY_PLURAL,
            "AnalysisTemplate": TEMPLATE_PLURAL,
            "ClusterAnalysisTemplate": CLUSTER_TEMPLATE_PLURAL,
        }[kind]
        if ns and kind != "ClusterAnalysisTemplate":
            return self.custom.list_namespaced_custom_object, (GROUP, VERSION, ns, plural)
        return self.custom.list_cluster_custom_object, (GROUP, VERSION, plural)

    def list_objects(self, kind: str, ns: str | None) -> tuple[list[Obj], str]:
        """Every `kind` in `ns` (None: all namespaces), as the JSON the server sent (no
        typed models: converting thousands of Deployments costs more than the request),
        and the list's resourceVersion to watch from."""
        fn, args = self._list_call(kind, ns)
        data = json.loads(_call(f"list {kind}", fn, *args, _preload_content=False).data)
        return data.get("items") or [], data["metadata"]["resourceVersion"]

    def watch(
        self, kind: str, ns: str | None, resource_version: str, timeout_seconds: int = 60
    ) -> Iterator[tuple[str, Obj]]:
        """Yield (event type, object) as the server sends them; raises Gone on 410."""
        w = watch.Watch()
        fn, args = self._list_call(kind, ns)
        try:
            for event in w.stream(
                fn,
                *args,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                _request_timeout=timeout_seconds + REQUEST_TIMEOUT,
                allow_watch_bookmarks=True,
                deserialize=False,
            ):
                obj = event["object"]
                if event["type"] == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(f"watch {kind}: resourceVersion too old")
                    raise TransientError(f"watch {kind}: {obj.get('message')}")
                yield event["type"], obj
        except ApiException as exc:
            raise _translate(exc, f"watch {kind}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"watch {kind}: connection lost ({exc})") from None
        finally:
            w.stop()

    def list_deployments(self, ns: str | None) -> tuple[list[Obj], str]:
        return self.list_objects("Deployment", ns)

    # ------------------------------------------------------------- workloads

    def _read_or_none(self, what: str, fn: Any, *args: Any) -> Obj | None:
        try:
            return _json(what, fn, *args)
        except NotFound:
            return None

    def get_deployment(self, ns: str, name: str) -> Obj | None:
        if cache := self._cached("Deployment"):
            return cache.get("Deployment", ns, name)
        return self._read_or_none(
            f"Deployment {ns}/{name}", self.apps.read_namespaced_deployment, name, ns
        )

    def create_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        what = f"create Deployment {ns}/{name}"
        return self._remember("Deployment", _json(what, self.apps.create_namespaced_deployment,
                                                  ns, body))

    def replace_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        what = f"Deployment {ns}/{name}"
        return self._remember("Deployment", _json(what, self.apps.replace_namespaced_deployment,
                                                  name, ns, body))

    def scale_deployment(
        self, ns: str, name: str, replicas: int, annotations: dict[str, str | None] | None = None
    ) -> None:
        """Set replicas, and in the same write the given annotations (None removes one)."""
        body: Obj = {"spec": {"replicas": replicas}}
        if annotations:
            body["metadata"] = {"annotations": annotations}
        what = f"Deployment {ns}/{name}"
        self._remember("Deployment", _json(what, self.apps.patch_namespaced_deployment,
                                           name, ns, body))

    def patch_deployment_status(self, ns: str, name: str, status: Obj) -> None:
        """Only the sandbox's stand-in kubelet uses this: there are no real pods."""
        _call(
            f"Deployment {ns}/{name} status",
            self.apps.patch_namespaced_deployment_status,
            name,
            ns,
            {"status": status},
        )

    def get_service(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(
            f"Service {ns}/{name}", self.core.read_namespaced_service, name, ns
        )

    def apply_service(self, ns: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        existing = self.get_service(ns, name)
        if existing is None:
            _call(f"create Service {ns}/{name}", self.core.create_namespaced_service, ns, body)
        else:
            _call(
                f"Service {ns}/{name}",
                self.core.patch_namespaced_service,
                name,
                ns,
                {
                    "metadata": {
                        "labels": body["metadata"].get("labels", {}),
                        "ownerReferences": body["metadata"].get("ownerReferences", []),
                    },
                    "spec": {"selector": body["spec"]["selector"], "ports": body["spec"]["ports"]},
                },
            )

    # ------------------------------------------------------------- other APIs' objects

    def get_object(self, group: str, version: str, plural: str, ns: str, name: str) -> Obj:
        return _call(
            f"{plural}.{group} {ns}/{name}",
            self.custom.get_namespaced_custom_object,
            group,
            version,
            ns,
            plural,
            name,
        )

    def replace_object(self, group: str, version: str, plural: str, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        return _call(
            f"{plural}.{group} {ns}/{name}",
            self.custom.replace_namespaced_custom_object,
            group,
            version,
            ns,
            plural,
            name,
            body,
        )

    # ------------------------------------------------------------- leader election

    def get_lease(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(
            f"Lease {ns}/{name}", self.coordination.read_namespaced_lease, name, ns
        )

    def write_lease(self, ns: str, body: Obj) -> None:
        """Create, or replace guarded by resourceVersion (Conflict if someone else won)."""
        name = body["metadata"]["name"]
        if body["metadata"].get("resourceVersion"):
            _call(f"Lease {ns}/{name}", self.coordination.replace_namespaced_lease, name, ns, body)
        else:
            _call(f"Lease {ns}/{name}", self.coordination.create_namespaced_lease, ns, body)

    # ------------------------------------------------------------- events

    def emit_event(
        self,
        regarding: Obj,
        type_: str,
        reason: str,
        message: str,
        component: str = "canary-controller",
    ) -> None:
        meta = regarding["metadata"]
        ns = meta.get("namespace", "default")
        now = dt.datetime.now(dt.UTC)
        body = client.EventsV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=ns
            ),
            event_time=now,
            action=reason,
            reason=reason,
            note=message[:1024],
            type=type_,
            reporting_controller=f"{GROUP}/{component}",
            reporting_instance=f"{component}-{os.uname().nodename}"[:128],
            regarding=client.V1ObjectReference(
                api_version=regarding.get("apiVersion"),
                kind=regarding.get("kind"),
                name=meta["name"],
                namespace=ns,
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
        )
        _call(f"Event for {ns}/{meta['name']}", self.events.create_namespaced_event, ns, body)

    def list_events(self, ns: str, name: str) -> list[Obj]:
        out = _call(
            "list Events",
            self.events.list_namespaced_event,
            ns,
            field_selector=f"regarding.name={name}",
        )
        items = self.api.sanitize_for_serialization(out).get("items", [])
        return sorted(items, key=lambda e: e.get("eventTime") or "")

    def whoami(self) -> str:
        """The username the API server authenticates this client as, from a
        SelfSubjectReview (what `kubectl auth whoami` asks). A manual request must carry it:
        the admission policy rejects one that names anybody else."""
        try:
            review = _call(
                "SelfSubjectReview",
                self.authn.create_self_subject_review,
                client.V1SelfSubjectReview(),
            )
        except Forbidden:
            raise PermanentError(
                "the API server does not let this user ask who it is (create "
                "selfsubjectreviews.authentication.k8s.io is forbidden), and a manual request "
                "must carry that identity. Fix: bind the user to the built-in ClusterRole "
                "system:basic-user, which allows it"
            ) from None
        except NotFound:
            raise PermanentError(
                "the API server does not serve SelfSubjectReview (authentication.k8s.io/v1), "
                "which names the user a manual request must carry. Fix: upgrade the cluster "
                "to Kubernetes 1.30 or later, which canary's admission policy needs too"
            ) from None
        return str(review.status.user_info.username)

    def can_i(
        self,
        user: str,
        verb: str,
        group: str,
        resource: str,
        ns: str | None = None,
        subresource: str | None = None,
    ) -> bool:
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group=group, resource=resource, namespace=ns, subresource=subresource
                ),
            )
        )
        out = _call("SubjectAccessReview", self.auth.create_subject_access_review, body)
        return bool(out.status.allowed)
