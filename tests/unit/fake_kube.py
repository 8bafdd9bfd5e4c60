"""An in-memory stand-in for the Kubernetes API (canary.kube.port.KubePort), for unit tests
of the reconciler.

It simulates what Controller.reconcile_key() reaches, with the API server semantics the
controller relies on:

- every read returns a deep copy and every write stores one (no aliasing with the caller);
- every write bumps the object's metadata.resourceVersion; replace and status patches
  whose resourceVersion does not match raise canary.kube.errors.Conflict; a missing object
  raises canary.kube.errors.NotFound (get_deployment / get_service return None instead);
- a spec change bumps metadata.generation (Deployments, HTTPRoutes); a status patch is
  a JSON merge patch (RFC 7386: keys whose value is None are deleted) and never does;
- Events are recorded in `events`.

The rest of the port (the CRD check and the watches of Controller.run(), the Lease of
leader election) raises NotSimulated: those are tested against a real API server
(tests/integration).

Fault injection: every mutating call is numbered from 1. With `crash_at=N` the Nth one
(or, with `crash_when`, the first one the predicate accepts; it is then disarmed) raises
SimulatedCrash, either before the write reaches the store (`crash_mode="before"`:
the request never left the process) or after (`"after"`: the API server applied it, the
process died before reading the answer). SimulatedCrash derives from BaseException, like
SystemExit, so that no `except Exception` in the product can mistake a kill for an error
it may handle. The store survives the crash, like etcd.

`kubelet()` plays the Deployment controller and the kubelet together: it marks every
Deployment fully rolled out at its current generation (what workloads.is_ready checks).
"""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from canary.kube.cache import Store
from canary.kube.errors import Conflict, NotFound
from canary.kube.port import KubePort, Obj

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
CrashMode = Literal["before", "after"]


class NotSimulated(NotImplementedError):
    """A part of the API that the unit tests do not need (see the module docstring)."""


class SimulatedCrash(BaseException):  # a kill, not an error: no `except Exception` catches it
    """kill -9 of the controller process, at a chosen API call."""


@dataclass(frozen=True)
class Call:
    number: int
    verb: str
    target: str


def pod_template(app: str, image: str) -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def user_deployment(ns: str, name: str, replicas: int, template: Obj) -> Obj:
    """The user's own Deployment, as `kubectl apply` would create it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }


def canary_object(ns: str, name: str, **spec: Any) -> Obj:
    """A Canary for the user's Deployment `name`: setWeight 10 then a pause, unless
    `spec` says otherwise."""
    return {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": name},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}, {"pause": {}}],
            **spec,
        },
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def canary_weight(route: Obj, canary_service: str) -> int | None:
    """The canary's share (%) in the first rule that names `canary_service`, else None."""
    for rule in route["spec"]["rules"]:
        refs = rule.get("backendRefs", [])
        if any(b.get("name") == canary_service for b in refs):
            total = sum(b.get("weight", 1) for b in refs)
            mine = sum(b.get("weight", 1) for b in refs if b.get("name") == canary_service)
            return mine * 100 // max(1, total)
    return None


@dataclass
class FakeKube:
    crash_at: int | None = None
    crash_mode: CrashMode = "before"
    crash_when: Callable[[Call], bool] | None = None
    calls: list[Call] = field(default_factory=list)  # mutating calls, in order
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    route_writes: list[Obj] = field(default_factory=list)  # every HTTPRoute stored, in order
    crashed: bool = False
    cache: Store | None = None  # only run() sets one

    def __post_init__(self) -> None:
        self._rv = itertools.count(1)
        self.canaries: dict[tuple[str, str], Obj] = {}
        self.templates: dict[str, list[Obj]] = {}
        self.deployments: dict[tuple[str, str], Obj] = {}
        self.services: dict[tuple[str, str], Obj] = {}
        self.objects: dict[tuple[str, str, str, str, str], Obj] = {}
        self.config_maps: dict[tuple[str, str], Obj] = {}
        self.secrets: dict[tuple[str, str], Obj] = {}

    # ------------------------------------------------------------ bookkeeping

    def _next_rv(self) -> str:
        return str(next(self._rv))

    def _mutating(self, verb: str, target: str) -> bool:
        """Count a mutating call; True when it must crash after the write."""
        call = Call(len(self.calls) + 1, verb, target)
        self.calls.append(call)
        if self.crash_when is not None and self.crash_when(call):
            self.crash_when = None
        elif call.number != self.crash_at:
            return False
        number = call.number
        self.crashed = True
        if self.crash_mode == "before":
            raise SimulatedCrash(f"killed before call #{number}: {verb} {target}")
        return True

    def _crash_after(self, crash: bool) -> None:
        if crash:
            call = self.calls[-1]
            raise SimulatedCrash(f"killed after call #{call.number}: {call.verb} {call.target}")

    @staticmethod
    def _check_rv(stored: Obj, body: Obj, what: str, *, required: bool) -> None:
        given = body.get("metadata", {}).get("resourceVersion")
        if given is None and not required:
            return
        if given != stored["metadata"]["resourceVersion"]:
            raise Conflict(f"{what}: conflict, will retry")

    # ------------------------------------------------------------ seeding (the user, kubectl)

    def seed_canary(self, obj: Obj) -> None:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        self.canaries[(meta["namespace"], meta["name"])] = obj

    def seed_template(self, ns: str, obj: Obj) -> None:
        self.templates.setdefault(ns, []).append(copy.deepcopy(obj))

    def seed_route(self, obj: Obj) -> None:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        self.objects[(*GATEWAY, meta["namespace"], meta["name"])] = obj

    def user_apply_deployment(self, ns: str, body: Obj) -> None:
        """What `kubectl apply` of the user's Deployment does: create, or replace its spec."""
        name = body["metadata"]["name"]
        existing = self.deployments.get((ns, name))
        if existing is None:
            obj = copy.deepcopy(body)
            obj["metadata"] |= {"namespace": ns, "generation": 1, "uid": f"uid-{name}"}
            obj["metadata"]["resourceVersion"] = self._next_rv()
            obj["status"] = {}
            self.deployments[(ns, name)] = obj
            return
        self._store_deployment_spec(existing, copy.deepcopy(body["spec"]))

    def user_set_template(self, ns: str, name: str, template: Obj) -> None:
        """What `kubectl set image` does: a new pod template, replicas untouched."""
        existing = self.deployments[(ns, name)]
        self._store_deployment_spec(existing, {**existing["spec"], "template": template})

    def _store_deployment_spec(self, dep: Obj, spec: Obj) -> None:
        if spec != dep["spec"]:
            dep["metadata"]["generation"] += 1
        dep["spec"] = copy.deepcopy(spec)
        dep["metadata"]["resourceVersion"] = self._next_rv()

    def kubelet(self) -> None:
        """Every Deployment becomes fully available at its current generation."""
        for dep in self.deployments.values():
            want = dep["spec"].get("replicas", 1)
            status = {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": want,
                "updatedReplicas": want,
                "readyReplicas": want,
                "availableReplicas": want,
            }
            if dep.get("status") != status:
                dep["status"] = status
                dep["metadata"]["resourceVersion"] = self._next_rv()

    # ------------------------------------------------------------ not simulated

    def require_crds(self) -> NoReturn:
        raise NotSimulated("require_crds")

    def list_objects(self, kind: str, ns: str | None) -> NoReturn:
        raise NotSimulated(f"list {kind}")

    def watch(self, kind: str, ns: str | None, resource_version: str) -> NoReturn:
        raise NotSimulated(f"watch {kind}")

    def get_lease(self, ns: str, name: str) -> NoReturn:
        raise NotSimulated(f"get Lease {ns}/{name}")

    def write_lease(self, ns: str, body: Obj) -> NoReturn:
        raise NotSimulated(f"write Lease {ns}")

    # ------------------------------------------------------------ canary.dev objects

    def get_canary(self, ns: str, name: str) -> Obj:
        try:
            return copy.deepcopy(self.canaries[(ns, name)])
        except KeyError:
            raise NotFound(f"Canary {ns}/{name} not found") from None

    def list_templates(self, ns: str) -> list[Obj]:
        return copy.deepcopy(self.templates.get(ns, []))

    def patch_canary_status(self, ns: str, name: str, status: Obj, resource_version: str) -> Obj:
        crash = self._mutating("patch status", f"Canary {ns}/{name}")
        stored = self.canaries.get((ns, name))
        if stored is None:
            raise NotFound(f"Canary {ns}/{name} status not found")
        body = {"metadata": {"resourceVersion": resource_version}}
        self._check_rv(stored, body, f"Canary {ns}/{name} status", required=True)
        stored["status"] = merge_patch(stored.get("status") or {}, copy.deepcopy(status))
        stored["metadata"]["resourceVersion"] = self._next_rv()
        self._crash_after(crash)
        return copy.deepcopy(stored)

    def set_canary_finalizers(
        self, ns: str, name: str, finalizers: list[str], resource_version: str
    ) -> Obj:
        crash = self._mutating("set finalizers", f"Canary {ns}/{name}")
        stored = self.canaries.get((ns, name))
        if stored is None:
            raise NotFound(f"Canary {ns}/{name} not found")
        body = {"metadata": {"resourceVersion": resource_version}}
        self._check_rv(stored, body, f"Canary {ns}/{name}", required=True)
        stored["metadata"]["finalizers"] = list(finalizers)
        stored["metadata"]["resourceVersion"] = self._next_rv()
        out = copy.deepcopy(stored)
        if not finalizers and stored["metadata"].get("deletionTimestamp"):
            del self.canaries[(ns, name)]  # the last finalizer went: the API server deletes
        self._crash_after(crash)
        return out

    def user_delete_canary(self, ns: str, name: str) -> None:
        """`kubectl delete canary`: gone at once, or marked while finalizers remain."""
        stored = self.canaries[(ns, name)]
        if not stored["metadata"].get("finalizers"):
            del self.canaries[(ns, name)]
            return
        stored["metadata"]["deletionTimestamp"] = "2024-05-06T10:00:00Z"
        stored["metadata"]["resourceVersion"] = self._next_rv()

    # ------------------------------------------------------------ workloads

    def get_deployment(self, ns: str, name: str) -> Obj | None:
        dep = self.deployments.get((ns, name))
        return copy.deepcopy(dep) if dep is not None else None

    def create_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        crash = self._mutating("create", f"Deployment {ns}/{name}")
        if (ns, name) in self.deployments:
            raise Conflict(f"create Deployment {ns}/{name}: already exists")
        obj = copy.deepcopy(body)
        obj["metadata"] |= {
            "namespace": ns,
            "generation": 1,
            "uid": f"uid-{name}",
            "resourceVersion": self._next_rv(),
        }
        obj["status"] = {}
        self.deployments[(ns, name)] = obj
        self._crash_after(crash)
        return copy.deepcopy(obj)

    def replace_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        crash = self._mutating("replace", f"Deployment {ns}/{name}")
        stored = self.deployments.get((ns, name))
        if stored is None:
            raise NotFound(f"Deployment {ns}/{name} not found")
        self._check_rv(stored, body, f"Deployment {ns}/{name}", required=False)
        meta = stored["metadata"]
        for key in ("labels", "annotations", "ownerReferences"):
            if key in body["metadata"]:
                meta[key] = copy.deepcopy(body["metadata"][key])
            else:
                meta.pop(key, None)
        self._store_deployment_spec(stored, body["spec"])  # status is a subresource: kept
        self._crash_after(crash)
        return copy.deepcopy(stored)

    def scale_deployment(
        self, ns: str, name: str, replicas: int, annotations: dict[str, str | None] | None = None
    ) -> None:
        crash = self._mutating(f"scale to {replicas}", f"Deployment {ns}/{name}")
        stored = self.deployments.get((ns, name))
        if stored is None:
            raise NotFound(f"Deployment {ns}/{name} not found")
        if annotations:
            meta = stored["metadata"]
            meta["annotations"] = merge_patch(meta.get("annotations") or {}, annotations)
        self._store_deployment_spec(stored, {**stored["spec"], "replicas": replicas})
        self._crash_after(crash)

    def get_service(self, ns: str, name: str) -> Obj | None:
        svc = self.services.get((ns, name))
        return copy.deepcopy(svc) if svc is not None else None

    def apply_service(self, ns: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        crash = self._mutating("apply", f"Service {ns}/{name}")
        stored = self.services.get((ns, name))
        if stored is None:
            obj = copy.deepcopy(body)
            obj["metadata"] |= {"namespace": ns, "resourceVersion": self._next_rv()}
            self.services[(ns, name)] = obj
        else:
            patch = {
                "metadata": {
                    "labels": body["metadata"].get("labels", {}),
                    "ownerReferences": body["metadata"].get("ownerReferences", []),
                },
                "spec": {"selector": body["spec"]["selector"], "ports": body["spec"]["ports"]},
            }
            merged = merge_patch(stored, copy.deepcopy(patch))
            merged["metadata"]["resourceVersion"] = self._next_rv()
            self.services[(ns, name)] = merged
        self._crash_after(crash)

    # ------------------------------------------------------------ other APIs' objects

    def get_object(self, group: str, version: str, plural: str, ns: str, name: str) -> Obj:
        obj = self.objects.get((group, version, plural, ns, name))
        if obj is None:
            raise NotFound(f"{plural}.{group} {ns}/{name} not found")
        return copy.deepcopy(obj)

    def replace_object(self, group: str, version: str, plural: str, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        crash = self._mutating("replace", f"{plural}.{group} {ns}/{name}")
        key = (group, version, plural, ns, name)
        stored = self.objects.get(key)
        if stored is None:
            raise NotFound(f"{plural}.{group} {ns}/{name} not found")
        # Custom resources: an update must name the resourceVersion it read.
        self._check_rv(stored, body, f"{plural}.{group} {ns}/{name}", required=True)
        obj = copy.deepcopy(body)
        generation = stored["metadata"]["generation"]
        obj["metadata"]["generation"] = generation + (obj.get("spec") != stored.get("spec"))
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = obj
        if key[:3] == GATEWAY:
            self.route_writes.append(copy.deepcopy(obj))
        self._crash_after(crash)
        return copy.deepcopy(obj)

    # ------------------------------------------------------------ the controller's namespace

    def seed_config_map(self, ns: str, name: str, data: dict[str, str]) -> None:
        meta = {"name": name, "namespace": ns, "resourceVersion": self._next_rv()}
        self.config_maps[(ns, name)] = {"metadata": meta, "data": dict(data)}

    def seed_secret(self, ns: str, name: str, string_data: dict[str, str]) -> None:
        """As the API server stores `stringData`: base64 under `data`."""
        data = {k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()}
        meta = {"name": name, "namespace": ns, "resourceVersion": self._next_rv()}
        self.secrets[(ns, name)] = {"metadata": meta, "data": data}

    def get_config_map(self, ns: str, name: str) -> Obj | None:
        return copy.deepcopy(self.config_maps.get((ns, name)))

    def get_secret(self, ns: str, name: str) -> Obj | None:
        return copy.deepcopy(self.secrets.get((ns, name)))

    # ------------------------------------------------------------ events

    def emit_event(self, regarding: Obj, type_: str, reason: str, message: str) -> None:
        meta = regarding["metadata"]
        crash = self._mutating(f"event {reason}", f"Canary {meta.get('namespace')}/{meta['name']}")
        self.events.append((type_, reason, message))
        self._crash_after(crash)


if TYPE_CHECKING:  # drift between the port and the fake fails here, in mypy
    _: KubePort = FakeKube()

__all__ = [
    "GATEWAY",
    "Call",
    "CrashMode",
    "FakeKube",
    "NotSimulated",
    "SimulatedCrash",
    "canary_weight",
    "merge_patch",
]
