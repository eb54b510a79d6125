"""Builders shared by the test modules: paths, the reference time, sample batches, configs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jobs.config import JobConfig, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The bundled sample dump and the published mParticle batches (``jobs/samples``).
SAMPLES = REPO_ROOT / "jobs" / "samples"
#: Single published mParticle and Meta samples, copied from the project's shared folder.
PUBLISHED_SAMPLES = REPO_ROOT / "tests" / "data" / "mparticle-samples"

#: The reference time of every test run: 2026-11-05T00:00:00Z.
NOW = 1_793_836_800
#: An event time three days before ``NOW``, in milliseconds.
T_MS = (NOW - 3 * 86400) * 1000 + 123
EMAIL = "buyer@example.com"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def commerce(action: str = "purchase", *, ts: Any = T_MS, total: Any = "25.50",
             products: list[Any] | None = None, currency: Any = "usd",
             source_message_id: Any = "m-1", event_id: Any = None, custom: Any = None,
             **extra: Any) -> dict[str, Any]:
    """A commerce event envelope; ``extra`` sets (or, with None, removes) ``data`` fields."""
    data: dict[str, Any] = {
        "timestamp_unixtime_ms": ts, "source_message_id": source_message_id,
        "currency_code": currency,
        "product_action": {"action": action, "transaction_id": "T-1", "total_amount": total,
                           "products": products if products is not None else
                           [{"id": "sku-1", "price": 25.5, "quantity": 1}]}}
    if event_id is not None:
        data["event_id"] = event_id
    if custom is not None:
        data["custom_attributes"] = custom
    for key, value in extra.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return {"event_type": "commerce_event", "data": data}


def batch(events: list[Any], *, identities: Any = None, attributes: Any = None,
          device: Any = None, consent: Any = None, **extra: Any) -> str:
    """One batch line (JSON text) holding ``events``; the email identity by default."""
    b: dict[str, Any] = {
        "events": events,
        "user_identities": {"email": EMAIL} if identities is None else identities,
        "user_attributes": attributes or {}, "mpid": "-123", **extra}
    if device is not None:
        b["device_info"] = device
    if consent is not None:
        b["consent_state"] = consent
    return json.dumps(b, ensure_ascii=False)


def dry_run_config(**settings: Any) -> JobConfig:
    """A validated dry-run config over a placeholder input; ``settings`` use dotted names
    with ``__`` for the dot (``mapping__ldu="california"``)."""
    overrides = {k.replace("__", "."): v for k, v in settings.items()}
    return load_config(None, {"input": ["x"], "dry_run": True, **overrides})


def upload_config(input_dir: Path | str, out: Path | str, url: str, *, set_id: str = "555",
                  **settings: Any) -> JobConfig:
    """A config that uploads ``input_dir`` to the emulator at ``url`` at ``NOW``, with fast
    retries and no progress output; ``settings`` as in ``dry_run_config``."""
    overrides = {k.replace("__", "."): v for k, v in settings.items()}
    return load_config(None, {
        "input": [str(input_dir)], "output_dir": str(out), "reference_time": NOW,
        "upload.base_url": url, "upload.set_id": set_id, "progress": "off", **overrides,
    })
