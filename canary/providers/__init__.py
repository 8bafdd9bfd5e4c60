"""Metric providers: plug-ins behind the small :class:`~canary.providers.base.MetricProvider`
protocol, one module each, named in :mod:`canary.providers.registry`.

- :mod:`canary.providers.prometheus`: PromQL through prometheus-api-client.
- :mod:`canary.providers.web`: one number from an HTTP JSON endpoint.
"""
