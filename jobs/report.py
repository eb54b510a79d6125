"""The run report: SPEC §7's reconciliation, delivery by status, Meta errors, throughput.

``python -m jobs.report --output-dir DIR [--run-id ID]`` prints the report of a past run from the
``runs`` table (the newest when no id is given).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

#: The process exit code of each run status (anything else: 1).
EXIT_CODES = {"succeeded": 0, "nothing_to_do": 0, "token_rejected": 3, "dataset_rejected": 4,
              "endpoint_unreachable": 5}


@dataclass
class RunReport:
    """Everything a run tells its user at the end; stored as JSON in the ``runs`` table."""

    run_id: str
    mode: str  # dry_run | upload
    #: succeeded | failed | token_rejected | dataset_rejected | endpoint_unreachable |
    #: nothing_to_do
    status: str
    dialect: str
    set_id: str | None
    reference_time: int
    counts: dict[str, int] = field(default_factory=dict)
    delivery: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)  # by Meta code, one example each
    seconds: float = 0.0
    tables: dict[str, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    message: str | None = None
    notes: list[str] = field(default_factory=list)
    input_fingerprint: str | None = None
    payloads_run_id: str | None = None  # the run whose conversion wrote the payloads used
    #: Files (and bytes) not read: date folders before ``expired_before`` can only hold events
    #: older than Meta accepts.
    expired_files_skipped: int = 0
    expired_bytes_skipped: int = 0
    expired_before: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        return cls(**json.loads(text))

    def reconciliation_lines(self) -> list[str]:
        c = self.counts
        lines = [
            f"  input lines      {c.get('input_lines', 0):>10}  = batches {c.get('batches', 0)}"
            f" + quarantined {c.get('quarantined', 0)}",
        ]
        for key in sorted(k for k in c if k.startswith("quarantined.")):
            lines.append(f"      {key.split('.', 1)[1]:<22}{c[key]:>8}")
        lines.append(
            f"  events           {c.get('events', 0):>10}  = candidates "
            f"{c.get('candidate_events', 0)} + outside the date range {c.get('out_of_range', 0)}"
        )
        lines.append(
            f"  candidate events {c.get('candidate_events', 0):>10}  = payloads "
            f"{c.get('payloads', 0)} + skipped {c.get('skipped', 0)}"
        )
        for key in sorted(k for k in c if k.startswith("skipped.")):
            lines.append(f"      {key.split('.', 1)[1]:<22}{c[key]:>8}")
        if "gained_match_key" in c:
            lines.append(f"  events with a match key only from phone, state, zip or external id "
                         f"(SPEC §9; no_match_keys under profile mparticle): "
                         f"{c['gained_match_key']}")
        if c.get("identities_not_forwarded"):
            lines.append(f"  identities of the Email Type not sent (not hashes): "
                         f"{c['identities_not_forwarded']}")
        return lines

    def text(self) -> str:
        out = [f"run {self.run_id}  mode={self.mode}  dialect={self.dialect}  "
               f"status={self.status}"]
        if self.message:
            out.append(f"  {self.message}")
        out.extend(f"  note: {n}" for n in self.notes)
        if self.expired_files_skipped:
            out.append(f"  not read: {self.expired_files_skipped} files "
                       f"({self.expired_bytes_skipped} bytes) in date folders before "
                       f"{self.expired_before}, too old to send")
        out.append("reconciliation (SPEC §7):")
        out.extend(self.reconciliation_lines())
        if self.mode == "upload":
            d = self.delivery
            out.append(f"delivery to set {self.set_id}:")
            for key in ("payloads", "already_delivered", "not_selected", "to_send", "delivered",
                        "rejected", "failed", "not_attempted", "requests", "retries"):
                if key in d:
                    out.append(f"  {key.replace('_', ' '):<18}{d[key]:>10}")
            if d.get("connection_errors"):
                out.append(f"  requests without any HTTP reply: {d['connection_errors']}")
            if d.get("unconfirmed_replies"):
                out.append(f"  HTTP 200 replies not confirming the events: "
                           f"{d['unconfirmed_replies']} (not JSON, or a count below the events "
                           "sent; those events were retried, then failed)")
            check = "ok" if d.get("reconciles", True) else "MISMATCH"
            out.append(f"  candidate events = delivered + skipped + rejected + failed "
                       f"(+ earlier runs, not sent): {check}")
            if self.errors:
                out.append("Meta errors by code:")
                for e in self.errors:
                    out.append(f"  code {e.get('code')} ({e.get('events')} events): "
                               f"{e.get('example')}")
        if self.seconds:
            rate = (self.delivery.get("delivered", 0) if self.mode == "upload"
                    else self.counts.get("payloads", 0)) / self.seconds
            out.append(f"time {self.seconds:.1f} s, {rate:,.0f} events/s")
        if self.tables:
            out.append("tables:")
            out.extend(f"  {k:<11}{v}" for k, v in self.tables.items())
        if self.samples:
            out.append("sample payloads:")
            out.extend(f"  {s}" for s in self.samples)
        return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="report", description="Print the report of a past run.")
    p.add_argument("--output-dir", help="the run's output folder (runs table at <dir>/runs)")
    p.add_argument("--runs-table", help="the runs table (path or metastore name) instead")
    p.add_argument("--run-id", help="default: the newest run")
    args = p.parse_args(argv)
    if not (args.output_dir or args.runs_table):
        p.error("give --output-dir or --runs-table")

    from pyspark.sql import functions as F

    from jobs import ledger
    from jobs.session import get_spark

    location = args.runs_table or f"{args.output_dir.rstrip('/')}/runs"
    spark = get_spark()
    if not ledger.table_exists(spark, location):
        print(f"error: no runs table at {location}", file=sys.stderr)
        return 2
    runs = ledger.read_table(spark, location)
    if args.run_id:
        runs = runs.where(F.col("run_id") == args.run_id)
    row = runs.orderBy(F.col("started_at").desc()).select("report").first()
    if row is None:
        print(f"error: no run {args.run_id or ''} in {location}", file=sys.stderr)
        return 2
    print(RunReport.from_json(row["report"]).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
