"""The typed errors of the Kubernetes API, as the controller and the CLI handle them.

NotFound and Forbidden are permanent (tell the user), Conflict is transient (retry on the
next reconcile), Gone means "re-list, your resourceVersion is too old". Kept apart from
the client so that code written against the port, and its fakes, raise and catch them
without loading the Kubernetes client library.
"""

from __future__ import annotations

from canary.errors import PermanentError, TransientError


class NotFound(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class Conflict(TransientError):
    pass


class Gone(TransientError):
    """The watch's resourceVersion is too old (HTTP 410): list again."""
