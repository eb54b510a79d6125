"""The job's configuration: one frozen, validated object loaded from YAML plus overrides.

Everything a run depends on lives here. It is loaded once on the driver (``load_config``), before
Spark starts, so a wrong or missing setting fails fast with a message naming the setting. The
access token is *not* part of the configuration: only the name of the environment variable (or a
secret file path) that holds it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

DIALECTS = ("capi", "offline_conversions")
LDU_MODES = ("never", "always", "california", "ccpa_opt_out")
VALUE_MODES = ("sum_price", "price_x_quantity")
#: SPEC §9: ``extended`` sends §4's keys plus phone, state, zip, external id and richer capi
#: contents; ``mparticle`` sends exactly what mParticle's integration sent.
PROFILES = ("extended", "mparticle")
BODY_FORMATS = ("json", "form")
#: How upload progress is shown: a live line on a terminal (``bar``), log lines, or nothing.
PROGRESS_MODES = ("auto", "bar", "log", "off")
#: Meta's per-request event limits (SPEC §5).
MAX_EVENTS_PER_REQUEST = {"capi": 1000, "offline_conversions": 2000}

#: SPEC §2: product action → Meta event name, per dialect.
DEFAULT_EVENT_NAMES: dict[str, dict[str, str]] = {
    "capi": {
        "add_to_cart": "AddToCart",
        "add_to_wishlist": "AddToWishlist",
        "checkout": "InitiateCheckout",
        "purchase": "Purchase",
        "view_detail": "ViewContent",
    },
    "offline_conversions": {
        "add_to_cart": "AddToCart",
        "add_to_wishlist": "AddToWishList",
        "checkout": "Checkout",
        "purchase": "Purchase",
        "view_detail": "ViewContent",
    },
}


class ConfigError(ValueError):
    """A setting is missing or wrong. The message names the setting."""


@dataclass(frozen=True)
class MappingConfig:
    """The rules of SPEC §2-§6 that users may change."""

    max_event_age_days: int = 62
    default_currency: str = "USD"
    value_mode: str = "sum_price"
    email_identity_type: str = "email"
    ldu: str = "never"
    #: SPEC §9: ``extended`` (§4 + §9 keys, richer capi contents) or ``mparticle`` (§4 only).
    profile: str = "extended"
    #: SPEC §9: the identity type sent as the external id (``customer_id`` also matches
    #: ``customerid``; ``mpid`` means the batch's mpid).
    external_id_type: str = "customer_id"
    #: product action → event name; None means SPEC §2's default for the dialect.
    event_names: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TablesConfig:
    """Where the Delta tables live: a path, or a metastore table name (``db.table``).

    None means ``<output_dir>/<table>``.
    """

    payloads: str | None = None
    quarantine: str | None = None
    results: str | None = None
    runs: str | None = None


@dataclass(frozen=True)
class UploadConfig:
    """How events travel to the Graph API (SPEC §5)."""

    base_url: str = "https://graph.facebook.com"
    #: Plain ``http://`` to a host other than loopback sends the token unencrypted: refused
    #: unless this is on.
    allow_insecure_http: bool = False
    api_version: str = "v26.0"
    set_id: str | None = None
    chunk_size: int | None = None  # None → the dialect's limit
    max_in_flight: int = 4  # requests in flight per task
    rate_limit_per_second: float | None = None  # global, split across tasks
    token_env: str = "FB_ACCESS_TOKEN"
    token_file: str | None = None
    app_secret_env: str = "FB_APP_SECRET"  # when set, appsecret_proof is sent
    app_secret_file: str | None = None
    upload_tag: str | None = None  # None → derived from the run id
    test_event_code: str | None = None
    body_format: str = "json"
    timeout_seconds: float = 60.0
    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    throttle_backoff_seconds: float = 30.0
    #: A task stops when every request has failed to connect for this long; 0 → never.
    circuit_breaker_seconds: float = 60.0
    #: Requests a chunk may spend finding the invalid events Meta does not name.
    isolation_max_requests: int = 100
    partitions: int | None = None  # upload tasks; None → Spark's default parallelism
    # None → <output_dir>/_staging. A local path or an object-store URI (s3://, s3a://, gs://,
    # abfss://, file://) that the driver and every executor reach (jobs/upload/staging.py).
    staging_dir: str | None = None
    #: A run's lease on the staging location expires this long after its last heartbeat.
    lease_expiry_seconds: float = 120.0
    #: When another live run holds the lease: wait for it (True) or refuse at once (False).
    wait_for_lease: bool = False
    retry_failed: bool = False
    force: bool = False


@dataclass(frozen=True)
class SparkConfig:
    """Session settings for the embedded mode. Under spark-submit the given session is used."""

    master: str | None = "local[*]"
    app_name: str = "mparticle-meta-backfill"
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobConfig:
    """Everything one run needs, validated."""

    input: tuple[str, ...] = ()
    output_dir: str = "out"
    dialect: str = "capi"
    dry_run: bool = False
    reference_time: int | None = None
    from_date: str | None = None
    to_date: str | None = None
    #: Date folders (``YYYY-MM-DD``) this many days before ``from_date`` are still read: a batch
    #: filed under its first event's (or upload) day can hold events of the following days.
    date_folder_lookback_days: int = 1
    #: Date folders that can only hold events older than ``max_event_age_days`` before the
    #: reference time (with the same look-back) are not read.
    prune_expired_date_folders: bool = True
    #: A line longer than this (bytes) is quarantined as ``line_too_large``, never parsed; with
    #: the line guard on the classpath it also bounds what the reader holds of one line.
    max_line_bytes: int = 64 * 1024 * 1024
    quarantine_keep_raw: bool = False
    progress: str = "auto"  # auto | bar | log | off
    mapping: MappingConfig = field(default_factory=MappingConfig)
    tables: TablesConfig = field(default_factory=TablesConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    # ----- derived values -------------------------------------------------------------------
    @property
    def event_names(self) -> dict[str, str]:
        """The product action → event name mapping in force for this dialect."""
        if self.mapping.event_names:
            return dict(self.mapping.event_names)
        return dict(DEFAULT_EVENT_NAMES[self.dialect])

    @property
    def chunk_size(self) -> int:
        """Events per request: the configured size, never above the dialect's limit."""
        limit = MAX_EVENTS_PER_REQUEST[self.dialect]
        return min(self.upload.chunk_size or limit, limit)

    def table(self, name: str) -> str:
        """The location of table ``name`` (payloads, quarantine, results, runs)."""
        configured = getattr(self.tables, name)
        if configured:
            return str(configured)
        return _join(self.output_dir, name)

    @property
    def staging_dir(self) -> str:
        return self.upload.staging_dir or _join(self.output_dir, "_staging")

    def digest(self) -> str:
        """A SHA-256 of the settings that shape the output (no secrets are in the config)."""
        data = dataclasses.asdict(self)
        for transient in ("input", "dry_run", "reference_time", "progress"):
            data.pop(transient, None)
        data["upload"] = {
            k: v
            for k, v in data["upload"].items()
            if k not in ("retry_failed", "force", "max_in_flight", "partitions",
                         "lease_expiry_seconds", "wait_for_lease")
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _join(base: str, name: str) -> str:
    """``base/name`` for a local path or a URI (``s3a://bucket/x``), which pathlib would mangle."""
    return f"{base.rstrip('/')}/{name}"


# ----- loading --------------------------------------------------------------------------------
_SECTIONS = {"mapping": MappingConfig, "tables": TablesConfig, "upload": UploadConfig,
             "spark": SparkConfig}


def _coerce(name: str, value: Any, default: Any, annotation: str) -> Any:
    """Coerce a YAML or command-line value to the type of the field, or fail naming it."""
    if value is None:
        return None
    if "Mapping" in annotation:
        if not isinstance(value, Mapping):
            raise ConfigError(f"setting '{name}' must be a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if "tuple" in annotation:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"setting '{name}' must be a list, got {value!r}")
        return tuple(str(v) for v in value)
    if "bool" in annotation:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"setting '{name}' must be true or false, got {value!r}")
    if "int" in annotation and "float" not in annotation:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting '{name}' must be a whole number, got {value!r}") from None
    if "float" in annotation:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting '{name}' must be a number, got {value!r}") from None
    if isinstance(value, bool):
        raise ConfigError(f"setting '{name}' must be text, got {value!r} (quote it in YAML)")
    return str(value)


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"setting '{prefix.rstrip('.') or 'config'}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting '{prefix}{unknown[0]}'")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = fields[name]
        if name in _SECTIONS and cls is JobConfig:
            kwargs[name] = _build(_SECTIONS[name], value or {}, f"{name}.")
        else:
            kwargs[name] = _coerce(prefix + name, value, f.default, str(f.type))
    return cls(**kwargs)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply dotted-key overrides (``upload.set_id``) on top of nested YAML data."""
    merged = json.loads(json.dumps(base, default=str)) if base else {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = merged
        parts = dotted.split(".")
        if parts[:2] == ["spark", "conf"] and len(parts) > 2:
            parts = ["spark", "conf", ".".join(parts[2:])]  # Spark's own keys hold dots
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"setting '{dotted}' does not fit the config's structure")
        node[parts[-1]] = value
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a ``--set key.path=value`` override; the value is read as YAML (numbers, bools)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        value = raw.strip()  # YAML 1.1 reads off/no/on/yes as booleans: keep the word
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
                ) -> JobConfig:
    """Load and validate the configuration: YAML file (optional), then dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"setting 'config': file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"setting 'config': {p} is not valid YAML: {exc}") from None
        data = loaded or {}
        if not isinstance(data, dict):
            raise ConfigError(f"setting 'config': {p} must hold a mapping")
    config: JobConfig = _build(JobConfig, _merge(data, overrides or {}), "")
    validate(config)
    return config


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SET_ID = re.compile(r"^\d+$")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK or host.startswith("127.")
_VERSION = re.compile(r"^v\d+\.\d+$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def validate(config: JobConfig, *, for_upload: bool | None = None) -> None:
    """Check every setting; raise ConfigError naming the first wrong one."""

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"setting '{name}': {message}")

    need(config.dialect in DIALECTS, "dialect", f"must be one of {', '.join(DIALECTS)}")
    m = config.mapping
    need(m.ldu in LDU_MODES, "mapping.ldu", f"must be one of {', '.join(LDU_MODES)}")
    need(m.value_mode in VALUE_MODES, "mapping.value_mode",
         f"must be one of {', '.join(VALUE_MODES)}")
    need(m.max_event_age_days > 0, "mapping.max_event_age_days", "must be > 0")
    need(bool(_CURRENCY.match(m.default_currency or "")), "mapping.default_currency",
         "must be a three-letter ISO 4217 code")
    need(bool(m.email_identity_type and m.email_identity_type.strip()),
         "mapping.email_identity_type", "must be an identity type such as 'email'")
    need(m.profile in PROFILES, "mapping.profile", f"must be one of {', '.join(PROFILES)}")
    need(bool(m.external_id_type and m.external_id_type.strip()),
         "mapping.external_id_type", "must be an identity type such as 'customer_id' or 'mpid'")
    if m.event_names is not None:
        need(len(m.event_names) > 0, "mapping.event_names", "must map at least one action")
    need(bool(config.output_dir), "output_dir", "is required")
    if config.reference_time is not None:
        need(config.reference_time > 0, "reference_time", "must be epoch seconds > 0")
    for name in ("from_date", "to_date"):
        value = getattr(config, name)
        if value is not None:
            need(_is_date(value), name, f"must be a UTC date YYYY-MM-DD, got {value!r}")
    if config.from_date and config.to_date:
        need(config.from_date <= config.to_date, "to_date", "must not be before from_date")
    need(config.date_folder_lookback_days >= 0, "date_folder_lookback_days", "must be >= 0")
    need(config.max_line_bytes > 0, "max_line_bytes", "must be > 0")
    need(config.progress in PROGRESS_MODES, "progress",
         f"must be one of {', '.join(PROGRESS_MODES)}")
    u = config.upload
    limit = MAX_EVENTS_PER_REQUEST[config.dialect]
    if u.chunk_size is not None:
        need(1 <= u.chunk_size <= limit, "upload.chunk_size",
             f"must be between 1 and {limit} (the {config.dialect} per-request limit)")
    need(u.max_in_flight >= 1, "upload.max_in_flight", "must be >= 1")
    need(u.max_attempts >= 1, "upload.max_attempts", "must be >= 1")
    need(u.timeout_seconds > 0, "upload.timeout_seconds", "must be > 0")
    need(u.circuit_breaker_seconds >= 0, "upload.circuit_breaker_seconds",
         "must be >= 0 (0 turns the circuit breaker off)")
    need(u.isolation_max_requests >= 0, "upload.isolation_max_requests", "must be >= 0")
    for name in ("backoff_base_seconds", "backoff_max_seconds", "throttle_backoff_seconds"):
        need(getattr(u, name) >= 0, f"upload.{name}", "must be >= 0")
    need(u.body_format in BODY_FORMATS, "upload.body_format",
         f"must be one of {', '.join(BODY_FORMATS)}")
    need(bool(_VERSION.match(u.api_version or "")), "upload.api_version",
         "must look like vX.Y, e.g. v26.0")
    need(bool(re.match(r"^https?://[^/\s?#]+", u.base_url or "")), "upload.base_url",
         "must be an http(s) URL")
    need("access_token" not in (u.base_url or ""), "upload.base_url",
         "must not carry the access token (it travels in the request body)")
    need(not u.base_url.lower().startswith("http://") or _loopback(u.base_url)
         or u.allow_insecure_http, "upload.base_url",
         "plain http:// to a host other than loopback would send the access token "
         "unencrypted: use https:// (or set upload.allow_insecure_http: true)")
    if u.set_id is not None:
        need(bool(_SET_ID.match(u.set_id)), "upload.set_id",
             f"must be the dataset / offline event set id, digits only, got {u.set_id!r}")
    if u.rate_limit_per_second is not None:
        need(u.rate_limit_per_second > 0, "upload.rate_limit_per_second", "must be > 0")
    if u.partitions is not None:
        need(u.partitions >= 1, "upload.partitions", "must be >= 1")
    need(not (u.retry_failed and u.force), "upload.force", "cannot be combined with retry_failed")
    need(u.lease_expiry_seconds > 0, "upload.lease_expiry_seconds", "must be > 0")
    if for_upload is None:
        for_upload = not config.dry_run
    if for_upload:
        need(bool(u.set_id), "upload.set_id",
             "is required for an upload (the dataset / offline event set id)")
