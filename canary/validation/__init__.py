"""Semantic validation of Canary and AnalysisTemplate objects. Pure: no I/O, no clock.

The one place a spec's problems are found and worded. The controller puts these
findings in the Canary's Invalid condition (the engine reports them as given and finds
none of its own); ``canary lint`` and ``canary simulate`` use them offline. Each problem
is a Finding naming the field, what is wrong, and what to do.

By what they check: canary (the whole Canary and its steps), analyses (template
references and args), deploy_window, template (AnalysisTemplates), providers (each
metric's provider block, checked by its plug-in), routing (router names), webhooks
(spec.webhooks), schema (the header and the models' own errors); findings holds the
Finding type.
"""

from canary.validation.canary import validate_canary
from canary.validation.findings import Finding, short_repr
from canary.validation.template import TEMPLATE_KINDS, validate_template

__all__ = [
    "TEMPLATE_KINDS",
    "Finding",
    "short_repr",
    "validate_canary",
    "validate_template",
]
