"""The strict base of every HTTP backend emulator (Argo CD, OSM, ONAP …): one contract checked
in both directions, violations recorded, and the test failed at teardown.

An emulator answers what the adapter asked, so a wrong request must fail the test even when
the adapter copes with the emulator's error answer, and an answer the real backend could never
give (an invented field, a wrong type) must fail it too — or the adapter is tested against a
backend that does not exist. :class:`StrictContract` does both with core's
:class:`~netweave.testing.contracts.ContractValidator`:

* :meth:`StrictContract.request` validates a request, records a violation and raises it (the
  emulator answers the backend's own 4xx for it);
* :meth:`StrictContract.response` validates the emulator's answer and records a violation (the
  answer is still sent: the adapter's reaction is not what is under test);
* :meth:`StrictContract.assert_clean` — called by the emulator's fixture at teardown, e.g.
  through :func:`failing_at_teardown` — fails with every violation not on the allow-list.

The allow-list is exact: an entry names one violation's whole text, so a new violation that
merely resembles an allowed one still fails. Keep each entry next to the reason it is allowed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from netweave.testing.contracts import ContractValidator, ContractViolation, OperationMatch


class StrictContract:
    """One backend contract checked in both directions (see the module docstring)."""

    def __init__(self, validator: ContractValidator, *, allowed: Iterable[str] = ()) -> None:
        self.validator = validator
        #: Whole violation texts a test expects (exact match).
        self.allowed: set[str] = set(allowed)
        #: Every violation recorded, in order (tests that provoke one read and clear it).
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def record(self, text: str) -> None:
        """Record a violation the emulator found itself (a backend rule the document lacks)."""
        with self._lock:
            self.violations.append(text)

    def request(
        self,
        method: str,
        path: str,
        query: Any = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> OperationMatch:
        """The request's operation; a violation is recorded and raised."""
        try:
            return self.validator.validate_request(method, path, query, body, headers)
        except ContractViolation as exc:
            self.record(f"request {method} {path}: {exc}")
            raise

    def response(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Check the emulator's answer; a violation is recorded (a request the contract has no
        operation for was recorded by :meth:`request` already)."""
        try:
            self.validator.validate_response(method, path, status, body, headers)
        except ContractViolation as exc:
            if exc.location in ("request path", "request method"):
                return
            self.record(f"response {method} {path} {status}: {exc}")

    def unexpected(self) -> list[str]:
        """The violations not on the allow-list."""
        with self._lock:
            return [v for v in self.violations if v not in self.allowed]

    def assert_clean(self) -> None:
        """Fail (``AssertionError``) naming every unexpected violation."""
        found = self.unexpected()
        if found:
            raise AssertionError(
                f"{len(found)} contract violation(s) in this test:\n" + "\n".join(found)
            )


@contextlib.contextmanager
def failing_at_teardown(contract: StrictContract) -> Iterator[StrictContract]:
    """For an emulator fixture: ``with failing_at_teardown(emulator.strict): yield emulator``
    fails the test after it ran when the emulator recorded an unexpected violation."""
    yield contract
    contract.assert_clean()


__all__ = ["StrictContract", "failing_at_teardown"]
