"""A hook plugin whose ``DeploymentChanged`` handler takes a while (``plugins.hooks`` module).

It widens the time a process spends *after* a commit in its event hooks. Were events recorded
after commit (as before issue 6), the events that follow a ``DeploymentChanged`` in the same
change (the operation's COMPLETED, say) would be recorded only after this wait, and a SIGKILL
landing in it would lose them. Recorded in the change's transaction, nothing can be lost.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from netweave.hookspecs import hookimpl

#: Must stay below the hook bus's timeout (2 s), or the wait is cut short.
DELAY = float(os.environ.get("NETWEAVE_SLOWHOOKS_DELAY", "1.0"))


@hookimpl
async def netweave_deployment_event(event_type: str, deployment: dict[str, Any]) -> None:
    if event_type == "DeploymentChanged":
        await asyncio.sleep(DELAY)
