"""Draft.update, the engine's one way to change a status: a change that is not a status
field, or not a valid value for it, fails at once (and mostly in mypy before that)."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from canary.api.status import CanaryStatus, Phase
from canary.engine.draft import Draft, StatusChange

BEFORE = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10)


def test_changes_are_applied_together() -> None:
    draft = Draft(BEFORE)
    draft.update(phase=Phase.PAUSED, reason="PausedByUser", paused_at=None)
    assert (draft.status.phase, draft.status.reason) == (Phase.PAUSED, "PausedByUser")
    assert draft.status.canary_weight == 10


@pytest.mark.parametrize("name", ["canary_wieght", "canaryWeight"])  # a typo, the wire name
def test_an_unknown_field_is_an_error(name: str) -> None:
    draft = Draft(BEFORE)
    changes: dict[str, typing.Any] = {name: 20}
    with pytest.raises(TypeError, match=f"CanaryStatus has no field {name}"):
        draft.update(**changes)
    assert draft.status == BEFORE


def test_an_invalid_value_is_an_error() -> None:
    draft = Draft(BEFORE)
    with pytest.raises(ValidationError, match="phase"):
        draft.update(phase="Bogus")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="phase"):  # a Phase, not a string spelling one
        draft.update(phase="Paused")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="canary_weight"):
        draft.update(canary_weight="20")  # type: ignore[arg-type]
    assert draft.status == BEFORE


def test_the_change_names_every_status_field_with_its_type() -> None:
    fields = {
        name: info.annotation
        for name, info in CanaryStatus.model_fields.items()
        if name != "route_weight"  # the controller's to record, not the engine's to decide
    }
    assert typing.get_type_hints(StatusChange) == fields
