"""The connection to the API server: which one (kubeconfig or in-cluster), the API group
clients on it, and a count of every request sent over it."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from canary.errors import PermanentError

RequestObserver = Callable[[str, str, str], None]
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_POD_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def api_client(
    kubeconfig: str | Path | None, context: str | None
) -> tuple[client.ApiClient, str]:
    """In a pod without an explicit kubeconfig, its service account; else the kubeconfig
    (--kubeconfig, $KUBECONFIG or ~/.kube/config), with `context` or its current-context.
    Also the namespace to work in when none is given: the pod's, or the context's, as
    kubectl picks it. Unusable: one line naming the fix."""
    try:
        if (
            kubeconfig is None
            and "KUBECONFIG" not in os.environ
            and os.environ.get("KUBERNETES_SERVICE_HOST")
        ):
            config.load_incluster_config()
            ns = _POD_NAMESPACE.read_text().strip() if _POD_NAMESPACE.exists() else ""
            return client.ApiClient(), ns or "default"
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
        namespace = _context_namespace(path, context)
        return config.new_client_from_config(config_file=path, context=context), namespace
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


def _context_namespace(path: str, context: str | None) -> str:
    contexts, current = config.list_kube_config_contexts(path)
    if context is not None:
        current = next((c for c in contexts if c["name"] == context), None)
        if current is None:
            names = ", ".join(c["name"] for c in contexts) or "none"
            raise PermanentError(
                f"kubeconfig {path} has no context {context!r} (it has: {names}). Fix: pass "
                "one of those to --context (kubectl config get-contexts lists them)."
            )
    return (current.get("context") or {}).get("namespace") or "default"


class Connection:
    """One API server connection and its API group clients, each built on first use: the
    client library imports a group's module (and its models) then, which takes up to a
    second for core and apps, and a CLI command needs one or two groups."""

    def __init__(self, kubeconfig: str | Path | None = None, context: str | None = None):
        self.api, self.namespace = api_client(kubeconfig, context)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @cached_property
    def events(self) -> client.EventsV1Api:
        return client.EventsV1Api(self.api)

    @cached_property
    def auth(self) -> client.AuthorizationV1Api:
        return client.AuthorizationV1Api(self.api)

    @cached_property
    def coordination(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.api)

    def on_request(self, observe: RequestObserver) -> None:
        """Call `observe(verb, resource, code)` for every request this connection sends,
        with the HTTP status code, or "<error>" when no answer came. Counted below the
        client library, so watches and the few calls that bypass calls.call count too."""
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
