"""`canary simulate` and the decision benchmark: the real engine against simulated traffic.

- :mod:`canary.simulate.scenario`: the scenario file (traffic, variants, regressions).
- :mod:`canary.simulate.traffic`: Poisson traffic, errors and the log-normal latency model.
- :mod:`canary.simulate.provider`: a metric provider answering from simulated counters.
- :mod:`canary.simulate.runner`: drives ``canary.engine.machine.step`` with a simulated clock.
- :mod:`canary.simulate.policies`: flagger-like and argo-like baselines (benchmark only).
- :mod:`canary.simulate.bench`: ``python -m canary.simulate.bench``, the decision benchmark.
"""
