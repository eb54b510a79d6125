"""What an upload found, as typed values: one ``PartitionSummary`` per upload task (built in the
executors from its chunk outcomes) and the run's ``UploadSummary`` (combined on the driver)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The statuses a chunk outcome can end in (the ledger's ``results.status``).
STATUSES = ("delivered", "rejected", "failed")


@dataclass
class ErrorSummary:
    """The events that ended with one Meta error code, and one message as an example."""

    code: int
    events: int
    example: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "events": self.events, "example": self.example}


@dataclass
class PartitionSummary:
    """The outcomes of one upload task."""

    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    unconfirmed_replies: int = 0  # 2xx replies not a JSON object or with a short count
    connection_errors: int = 0  # requests that got no HTTP reply
    token_rejected: bool = False
    dataset_rejected: bool = False  # code 100 subcode 33: the dataset id or permissions
    endpoint_unreachable: bool = False  # the circuit breaker tripped
    skipped_from_earlier_attempts: int = 0
    errors: dict[int, ErrorSummary] = field(default_factory=dict)

    def add(self, status: str, events: int, error_code: int | None,
            error_message: str | None) -> None:
        """Count one chunk outcome of ``events`` events."""
        if status not in STATUSES:
            raise ValueError(f"unknown outcome status {status!r}")
        setattr(self, status, getattr(self, status) + events)
        if error_code is not None and status != "delivered":
            err = self.errors.setdefault(error_code, ErrorSummary(error_code, 0, error_message))
            err.events += events


@dataclass(frozen=True)
class Selection:
    """Which payloads this run sends: all of them less those the ledger sets aside."""

    payloads: int
    already_delivered: int = 0
    not_selected: int = 0  # never attempted, left out by --retry-failed

    @property
    def to_send(self) -> int:
        return self.payloads - self.already_delivered - self.not_selected


_COUNTS = ("delivered", "rejected", "failed", "requests", "retries", "unconfirmed_replies",
           "connection_errors")
_STOPS = ("token_rejected", "dataset_rejected", "endpoint_unreachable")


@dataclass(frozen=True)
class UploadSummary:
    """The whole upload stage: the selection and every task's outcomes added up."""

    selection: Selection
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    requests: int = 0
    token_rejected: bool = False
    errors: tuple[ErrorSummary, ...] = ()
    retries: int = 0
    unconfirmed_replies: int = 0
    connection_errors: int = 0
    dataset_rejected: bool = False
    endpoint_unreachable: bool = False

    @classmethod
    def combine(cls, selection: Selection,
                partitions: Iterable[PartitionSummary]) -> UploadSummary:
        sums = dict.fromkeys(_COUNTS, 0)
        flags = dict.fromkeys(_STOPS, False)
        errors: dict[int, ErrorSummary] = {}
        for p in partitions:
            for name in _COUNTS:
                sums[name] += getattr(p, name)
            for name in _STOPS:
                flags[name] |= getattr(p, name)
            for code, e in p.errors.items():
                agg = errors.setdefault(code, ErrorSummary(code, 0, e.example))
                agg.events += e.events
        return cls(selection, delivered=sums["delivered"], rejected=sums["rejected"],
                   failed=sums["failed"], requests=sums["requests"],
                   token_rejected=flags["token_rejected"],
                   errors=tuple(sorted(errors.values(), key=lambda e: -e.events)),
                   retries=sums["retries"], unconfirmed_replies=sums["unconfirmed_replies"],
                   connection_errors=sums["connection_errors"],
                   dataset_rejected=flags["dataset_rejected"],
                   endpoint_unreachable=flags["endpoint_unreachable"])

    @property
    def stopped(self) -> bool:
        """A task stopped early (token, dataset, circuit breaker): some events are unsent."""
        return self.token_rejected or self.dataset_rejected or self.endpoint_unreachable

    @property
    def not_attempted(self) -> int:
        return self.selection.to_send - self.delivered - self.rejected - self.failed

    @property
    def reconciles(self) -> bool:
        """Every selected event has an outcome (a stop leaves some unsent, which the run
        reports instead)."""
        return self.not_attempted >= 0 and (self.stopped or self.not_attempted == 0)

    def delivery(self) -> dict[str, int | bool]:
        """The figures of the report's ``delivery`` section."""
        s = self.selection
        return {"payloads": s.payloads, "already_delivered": s.already_delivered,
                "not_selected": s.not_selected, "to_send": s.to_send,
                "delivered": self.delivered, "rejected": self.rejected, "failed": self.failed,
                "not_attempted": self.not_attempted, "requests": self.requests,
                "retries": self.retries, "unconfirmed_replies": self.unconfirmed_replies,
                "connection_errors": self.connection_errors, "reconciles": self.reconciles}
