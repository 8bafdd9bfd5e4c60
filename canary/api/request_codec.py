"""The canary.dev/request annotation: written by the CLI, read by the controller, through
this one model and codec so that neither drifts from the other or from the admission policy.

The wire form is ``RequestAnnotation.model_dump_json()``: compact, keys in field order, the
only form the admission policy (manifests/admission.yaml) accepts. CEL cannot parse JSON, so
the policy matches that form with a pattern and compares the "user" part with the user the
API server authenticated; the field patterns of :class:`RequestAnnotation` keep the CLI
inside that pattern. The policy vouches for who sent a request but cannot check when (CEL
has no clock), so :func:`decode` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

RequestAction = Literal["promote", "abort", "pause", "resume", "retry", "undo"]


class RequestAnnotation(BaseModel):
    """The JSON in the canary.dev/request annotation, as the CLI writes it.

    Strict: a request is an instruction to move production traffic, so "full": "no" is an
    error rather than a truthy string, and an unknown action is an error rather than a
    guess.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    action: RequestAction
    full: bool = False
    user: str = Field(
        # Quotes, backslashes and control characters would be escaped in JSON, which the
        # policy's pattern refuses (an escape could hide a second "user").
        pattern=r'^[^"\\\x00-\x1f]{1,256}$',
        description="Who asked: the username the API server authenticated.",
    )
    at: str = Field(description="ISO 8601 time the request was made, with its time zone.")

    @property
    def sent_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)

    @model_validator(mode="after")
    def _time(self) -> RequestAnnotation:
        try:
            at = self.sent_at
        except ValueError:
            raise ValueError(f"at: {self.at!r} is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise ValueError(f"at: {self.at!r} has no time zone (the CLI writes UTC: +00:00)")
        return self


class UnsendableRequest(ValueError):
    """A request the canonical form cannot carry; the message names the fix."""


class InvalidRequest(ValueError):
    """An annotation not to act on, consumed once under `id`: the request's own id when it
    has a usable one, else a digest of the text, so that the same bad annotation is
    reported once and a corrected one (even with the same id) is a new request."""

    def __init__(self, id: str, why: str) -> None:
        super().__init__(why)
        self.id = id
        self.why = why


def new_request(
    action: RequestAction, user: str, now: dt.datetime, *, full: bool = False
) -> RequestAnnotation:
    """A request from `user`, the name the API server authenticated (the policy checks it)."""
    try:
        return RequestAnnotation(
            id=uuid.uuid4().hex[:12],
            action=action,
            full=full,
            user=user,
            at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        )
    except ValidationError:
        raise UnsendableRequest(
            f"the API server knows you as {user!r}, which a request cannot carry (at most 256 "
            "characters, no quotes, backslashes or control characters). Fix: use a "
            "kubeconfig user with a plainer name"
        ) from None


def encode(request: RequestAnnotation) -> str:
    return request.model_dump_json()


def decode(raw: str, now: dt.datetime) -> RequestAnnotation:
    """The request in `raw`, read strictly, and sent neither ahead of the clock `now` (a
    wrong clock or a forged time) nor long before (stale, e.g. an old annotation that
    GitOps applied again to a recreated Canary); InvalidRequest says why not."""
    try:
        request = RequestAnnotation.model_validate_json(raw)
    except ValidationError as exc:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        raise InvalidRequest(f"invalid-{digest}", _reason(exc)) from None
    clock = f"the controller's clock reads {now.isoformat(timespec='seconds')}"
    if request.sent_at - now > dt.timedelta(minutes=5):
        raise InvalidRequest(
            request.id,
            f"at: {request.at} is more than 5 minutes in the future ({clock}). Fix: correct "
            "the clock where the request was sent, and send it again",
        )
    if now - request.sent_at > dt.timedelta(hours=1):
        raise InvalidRequest(
            request.id,
            f"at: {request.at} is more than an hour old when first seen ({clock}), so it is "
            "stale, e.g. an old annotation applied again. Fix: send the request again",
        )
    return request


def _reason(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "the annotation"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
