"""The operation machinery: how one accepted change is carried out and recorded truthfully.

The service layer (``netweave.services``) stores an operation; the worker (``worker``) claims
it and the runner (``runner``) moves it through the ETSI states (``state_machine``) by calling
the owning adapter, then records what the backend reported (``observe``) and fires the hooks
and events (``events``). This package never imports the service layer or the API.
"""

from __future__ import annotations

from netweave.operations.events import HookBus
from netweave.operations.metrics import Metrics
from netweave.operations.runner import OperationRunner
from netweave.operations.worker import OperationWorker

__all__ = ["HookBus", "Metrics", "OperationRunner", "OperationWorker"]
