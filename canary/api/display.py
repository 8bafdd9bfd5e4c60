"""How a rollout's phase and step read to people, shared by the status the controller
writes (for `kubectl get canaries`) and the CLI, so that the two always agree.

No pydantic here: the CLI imports this on every `canary status`."""

from __future__ import annotations

INVALID = "Invalid"


def phase_display(phase: str, invalid: bool) -> str:
    """An invalid spec stops the rollout wherever it is, so it outranks the phase."""
    return INVALID if invalid else phase


def step_display(index: int | None, total: int) -> str | None:
    """The step 1-based, as "4/6"; an index past the last step (promoting) reads "6/6"."""
    if index is None:
        return None
    return f"{min(index + 1, total)}/{total}"
