"""Operation occurrences: every change is one, stored before it starts (ETSI LCM op occ)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import Field

from netweave.models.base import WireModel
from netweave.models.problems import ProblemDetails


class OperationState(enum.StrEnum):
    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {OperationState.COMPLETED, OperationState.FAILED, OperationState.ROLLED_BACK}
)
#: States the operation worker claims, and resumes after a crash or a lease take-over.
CLAIMABLE_STATES = frozenset(
    {OperationState.STARTING, OperationState.PROCESSING, OperationState.ROLLING_BACK}
)


class OperationType(enum.StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    SCALE = "SCALE"
    ROLLBACK = "ROLLBACK"
    #: Repair: bring the backend back to the recorded package and values (``POST …/reconcile``).
    RECONCILE = "RECONCILE"


class Operation(WireModel):
    operation_id: str
    operation_type: OperationType
    deployment_id: str
    adapter: str
    state: OperationState
    start_time: datetime
    state_entered_time: datetime
    is_cancel_pending: bool = False
    attempts: int = 0
    #: What was asked (request body as accepted), for audit and retry.
    params: dict[str, Any] = Field(default_factory=dict)
    error: ProblemDetails | None = None


class OperationList(WireModel):
    items: list[Operation]
    total: int
    limit: int
    offset: int
