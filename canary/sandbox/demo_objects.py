"""What `canary demo` applies: the user's app (Deployment "checkout", its Service and
HTTPRoute) and the AnalysisTemplate and Canary that roll it out."""

from __future__ import annotations

from canary.kube.port import Obj

NS = "demo"


def objects(step_pause: str, interval: str, steps: list[Obj] | None) -> list[Obj]:
    sel = 'namespace="demo",service="checkout",variant="{{variant}}"'
    window = "[{{window}}]"
    requests, errors = f"http_requests_total{{{sel}}}", f'http_requests_total{{{sel},code=~"5.."}}'
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "checkout"}},
                "template": {
                    "metadata": {"labels": {"app": "checkout"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "demo/checkout:v1",
                                "env": [
                                    {"name": "ERROR_RATE", "value": "0"},
                                    {"name": "LATENCY_MS", "value": "20"},
                                ],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {
                "selector": {"app": "checkout"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        {
            # The app's route before canary: to its own Service. The controller rewrites
            # this rule's backends to checkout-stable/checkout-canary, and gives it back
            # when the Canary is deleted.
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {
                "parentRefs": [{"name": "public-gateway"}],
                "rules": [{"backendRefs": [{"name": "checkout", "port": 80}]}],
            },
        },
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "error-rate-vs-stable", "namespace": NS},
            "spec": {
                "metrics": [
                    {
                        "name": "error-rate",
                        "interval": interval,
                        "provider": {"prometheus": {}},
                        "comparison": {
                            "type": "errorRate",
                            "tolerance": 1.25,
                            "maxFalseRollback": 0.05,
                            "acceptedRegression": {"addedPer100": 0.75},
                            "minRequests": 40,
                            "requestsQuery": f"sum(increase({requests}{window}))",
                            "errorsQuery": f"sum(increase({errors}{window}))",
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "Canary",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "checkout"},
                "service": {"port": 80, "targetPort": 8080},
                "trafficRouting": {"gatewayAPI": {"httpRoute": "checkout"}},
                "steps": steps
                or [
                    {"setWeight": 10},
                    {"pause": {"duration": step_pause}},
                    {"setWeight": 30},
                    {"pause": {"duration": step_pause}},
                    {"setWeight": 60},
                    {"pause": {"duration": step_pause}},
                ],
                "analysis": {"templates": [{"templateName": "error-rate-vs-stable"}]},
                "progressDeadlineSeconds": 300,
                # The sandbox's data plane applies a route change within half a second;
                # a gateway or mesh takes longer, hence the 30 s default.
                "scaleDownDelaySeconds": 10,
            },
        },
    ]
