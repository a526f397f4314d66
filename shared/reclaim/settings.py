"""reclaim's settings: defaults from the policy text, a config file, then the environment.

Precedence (highest first): explicit arguments, ``RECLAIM_*`` environment variables
(nested with ``__``, e.g. ``RECLAIM_POLICY__SHELVE_AFTER=10d``), the YAML or TOML file named
by ``RECLAIM_CONFIG`` (or ``/etc/reclaim/reclaim.yaml`` when it exists), then the defaults.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from reclaim.bus.settings import BusSettings, TransportUrl
from reclaim.durations import Duration, format_duration, parse_duration
from reclaim.redact import mask_text, secret_name
from reclaim.wire import MAX_AHEAD, MAX_BODY, NOT_BEFORE, Bounds

DEFAULT_CONFIG_FILE = Path("/etc/reclaim/reclaim.yaml")


class EolRelease(BaseModel):
    """An operating system release and the day it leaves support."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    os_distro: str
    os_version: str
    end: datetime

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: Any) -> Any:
        return _midnight(value)


def _midnight(value: Any) -> Any:
    """A bare date as midnight UTC (settings' dates may be written either way)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and len(value) == 10:
        return value + "T00:00:00Z"
    return value


#: Database and cache ports that should never be open to the whole Internet.
DEFAULT_EXPOSED_PORTS: dict[str, tuple[int, ...]] = {
    "MongoDB": (27017, 27018, 27019),
    "Redis": (6379,),
    "Elasticsearch": (9200, 9300),
    "Memcached": (11211,),
    "PostgreSQL": (5432,),
    "MySQL": (3306,),
    "CouchDB": (5984,),
    "Cassandra": (9042,),
}


class PolicySettings(BaseModel):
    """The recovery policy's numbers. Defaults are the policy text's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shelve_after: Duration = Field(
        parse_duration("14d"), description="time stopped/suspended before shelving"
    )
    shelve_states: frozenset[str] = Field(
        frozenset({"stopped", "suspended"}), description="vm_states that start the shelve clock"
    )
    shelve_notices: tuple[Duration, ...] = Field(
        (parse_duration("7d"), parse_duration("1d")),
        description="notices this long before a shelve",
    )
    delete_shelved_after: Duration = Field(
        parse_duration("180d"), description="time shelved before deletion"
    )
    delete_notices: tuple[Duration, ...] = Field(
        (parse_duration("30d"), parse_duration("7d"), parse_duration("1d")),
        description="notices this long before a server deletion",
    )
    cleanup_after: Duration = Field(
        parse_duration("180d"),
        description="time after an allocation ends before its project is cleaned up",
    )
    cleanup_notices: tuple[Duration, ...] = Field(
        (parse_duration("30d"), parse_duration("7d"), parse_duration("1d")),
        description="notices this long before a project cleanup (one is also sent when the allocation ends)",
    )
    owner_removed_grace: Duration = Field(
        parse_duration("30d"),
        description="time after an image owner is removed before their shared images are deleted",
    )
    image_deletion_notices: tuple[Duration, ...] = Field(
        (parse_duration("7d"), parse_duration("1d")),
        description="notices this long before an owner's images are deleted",
    )
    dependents_reminder: Duration = Field(
        parse_duration("7d"), description="remind an image's dependents this long before it goes"
    )
    eol_when_hidden: bool = Field(True, description="an image hidden with os_hidden is end-of-life")
    eol_property: str = Field(
        "end_of_life", description="image property whose true value marks end-of-life"
    )
    eol_releases: tuple[EolRelease, ...] = Field(
        (), description="os_distro/os_version pairs with end dates"
    )
    eol_reminder_after: Duration = Field(
        parse_duration("30d"),
        description="remind users of an end-of-life image this long after the first warning",
    )
    exposed_ports: dict[str, tuple[int, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_EXPOSED_PORTS),
        description="service name -> ports never to open to the world",
    )
    exposed_reminder_after: Duration = Field(
        parse_duration("7d"), description="remind a project of an exposed service this long after"
    )
    exposed_remediation: bool = Field(
        False, description="remove a rule that exposes a service after a grace period"
    )
    exposed_remediation_grace: Duration = Field(
        parse_duration("3d"), description="grace before such a rule is removed"
    )
    exempt_metadata_key: str = Field(
        "reclaim:exempt", description="server metadata key that exempts a server"
    )
    exempt_servers: frozenset[str] = Field(frozenset(), description="server ids never acted on")
    exempt_projects: frozenset[str] = Field(frozenset(), description="project ids never acted on")

    @field_validator(
        "shelve_notices", "delete_notices", "cleanup_notices", "image_deletion_notices"
    )
    @classmethod
    def _sorted_offsets(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(sorted(set(value), reverse=True))

    @model_validator(mode="after")
    def _notices_within_their_period(self) -> PolicySettings:
        """A notice further ahead of the action than the rule's whole period would be due
        before the condition began (sent late, at once): a misconfiguration, refused."""
        pairs = (
            ("shelve_notices", "shelve_after"),
            ("delete_notices", "delete_shelved_after"),
            ("cleanup_notices", "cleanup_after"),
            ("image_deletion_notices", "owner_removed_grace"),
        )
        for notices, period in pairs:
            limit = getattr(self, period)
            too_early = [format_duration(n) for n in getattr(self, notices) if n > limit]
            if too_early:
                raise ValueError(
                    f"{notices} {', '.join(too_early)} before the action: longer than "
                    f"{period} ({format_duration(limit)}), so due before the condition began"
                )
        return self


class SweepSettings(BaseModel):
    """Caps, leases, retries and parallelism of a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = Field(False, description="default for --dry-run: no mutating request at all")
    max_actions: int = Field(
        100, ge=0, description="destructive actions per sweep before the breaker opens"
    )
    max_actions_per_project: int = Field(
        25, ge=0, description="destructive actions per project per sweep before the breaker opens"
    )
    lease: Duration = Field(parse_duration("10m"), description="how long a claim holds a timer")
    max_attempts: int = Field(5, ge=1, description="failed tries before a timer is marked failed")
    tries_per_sweep: int = Field(3, ge=1, description="tries of one action within one sweep")
    retry_sleep: float = Field(
        0.5, ge=0, description="seconds before the first in-sweep retry (doubles)"
    )
    retry_after: Duration = Field(
        parse_duration("15m"),
        description="wait before the next sweep retries (doubles per attempt)",
    )
    parallelism: int = Field(8, ge=1, description="actions in flight at once")
    change_tolerance: Duration = Field(
        timedelta(seconds=5),
        description="clock skew allowed between updated_at and the timer start",
    )
    offload_grace: Duration = Field(
        parse_duration("1d"),
        description="a shelve offload this soon after the shelve keeps the clock",
    )
    shelve_wait: Duration = Field(
        parse_duration("10m"),
        description="how long a shelve is followed until Nova shows the server shelved "
        "(Nova answers at once and shelves afterwards)",
    )
    min_notice_lead: Duration = Field(
        parse_duration("1d"),
        description="an action waits until its first notice went out at least this long before",
    )
    cloud: str = Field("", description="clouds.yaml entry to act through (default: OS_CLOUD)")
    cleanup_mark: str = Field(
        "",
        description="project tag or true property that must still mark the allocation ended "
        "for a cleanup (empty: not required)",
    )
    recheck_held: Duration = Field(
        parse_duration("1h"),
        description="how long a held action (allocation not confirmed, server locked, notices "
        "not delivered) waits before the sweeper looks again",
    )
    trust_allocation_events: bool = Field(
        False,
        description="clean up a project whose Keystone record says nothing of its allocation "
        "on the allocation event alone (risk: one forged or mistaken event deletes a live "
        "project; a recorded end date still in the future always holds the cleanup)",
    )
    cleanup_cloud: str = Field(
        "",
        description="clouds.yaml entry of reclaim's cleanup user, who holds no admin role; "
        "project cleanups are scoped to the target project as this user (empty: no cleanups)",
    )


class ReconcileSettings(BaseModel):
    """How ``reclaim reconcile`` (and the periodic reconcile of ``reclaim run``) reads the cloud."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: Duration = Field(
        parse_duration("1d"), description="time between two periodic reconciles"
    )
    first_install_grace: Duration = Field(
        parse_duration("14d"),
        description="on first install, no action falls due sooner than this after the reconcile",
    )
    page_size: int = Field(
        1000, ge=1, le=1000, description="servers, images or projects per listing request"
    )
    allocation_end_property: str = Field(
        "allocation_end",
        description="Keystone project property holding the allocation's end date (ISO 8601 "
        "date or datetime); projects carrying it are reconciled: a date at or before now means "
        "the allocation ended then, a later date that it runs (empty: projects are not "
        "reconciled)",
    )


class RunSettings(BaseModel):
    """The daemon (``reclaim run``): how often it sweeps (``reconcile.interval``: how often it reconciles)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep_every: Duration = Field(parse_duration("5m"), description="time between sweeps")
    cloud: str | None = Field(
        None, description="clouds.yaml entry to act through (default: OS_CLOUD)"
    )


class MailerSettings(BaseModel):
    """``reclaim mailer``: where notices are read from, how people are found, how mail goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field(
        "",
        description="listener pool; empty (the default): the topic's own queues "
        "(reclaim_notices.info, .warn), which the sweeper's first notice creates, so notices "
        "sent before the mailer first starts wait for it and nothing piles up unread; a name: "
        "a queue of the mailer's own (durable as bus.durable_queues), for a second consumer",
    )
    transport_url: TransportUrl = Field(
        "", description="bus transport URL (default: bus.transport_url)"
    )
    cloud: str = Field("", description="clouds.yaml entry for Keystone (default: $OS_CLOUD)")
    smtp_host: str = Field("127.0.0.1", description="SMTP server")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port")
    starttls: bool = Field(False, description="upgrade the SMTP connection with STARTTLS")
    tls_verify: bool = Field(True, description="verify the SMTP server's certificate")
    username: str = Field("", description="SMTP AUTH user (empty: no AUTH)")
    password: str = Field("", description="SMTP AUTH password", repr=False)
    smtp_timeout: float = Field(30.0, gt=0, description="seconds before an SMTP call gives up")
    sender: str = Field("reclaim@localhost", description="From: address")
    reply_to: str = Field("", description="Reply-To: address (empty: none)")
    subject_prefix: str = Field("[reclaim] ", description="put before every subject")
    fallback_contact: str = Field(
        "", description="address for notices whose people have no address (empty: drop them)"
    )
    operators: tuple[str, ...] = Field((), description="addresses of operator alerts")
    member_roles: tuple[str, ...] = Field(
        (), description="roles whose holders get project-wide notices (empty: any role)"
    )
    templates: str = Field("", description="directory of templates overriding the built-in ones")
    cloud_name: str = Field("the research cloud", description="the cloud's name in mails")
    support: str = Field("", description="where users get help (address or URL), in mails")
    policy_url: str = Field("", description="link to the policy text, in mails")
    digest: bool = Field(False, description="gather users' notices into one mail a day")
    digest_hour: int = Field(8, ge=0, le=23, description="UTC hour the daily digest goes out")
    retry_delay: float = Field(
        5.0, ge=0, description="seconds before a notice that could not be mailed is redelivered"
    )
    prefetch: int = Field(10, ge=0, description="unacknowledged notices the broker may send")

    @model_validator(mode="before")
    @classmethod
    def _durability_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "durable_queues" in data:
            raise ValueError(
                "mailer.durable_queues is gone: the mailer declares its queue as every reclaim "
                "publisher and consumer does, by bus.durable_queues (RECLAIM_BUS__DURABLE_QUEUES); "
                "move the value there"
            )
        return data


class IngestSettings(BaseModel):
    """What an incoming notification may be: its size and the event-time window of its dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    not_before: datetime = Field(
        NOT_BEFORE, description="events (and their dates) before this are dead-lettered"
    )
    max_ahead: Duration = Field(
        MAX_AHEAD, description="events stamped further ahead of their receipt are dead-lettered"
    )
    max_body: int = Field(MAX_BODY, ge=1024, description="largest notification body read, in bytes")

    @field_validator("not_before", mode="before")
    @classmethod
    def _floor_date(cls, value: Any) -> Any:
        return _midnight(value)

    @field_validator("not_before")
    @classmethod
    def _floor_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    def bounds(self, received_at: datetime | None) -> Bounds:
        """The bounds of a notification received at ``received_at`` (read at the edge)."""
        return Bounds(received_at, self.not_before, self.max_ahead, self.max_body)


class WebSettings(BaseModel):
    """``reclaim web``: the self-service pages, the signed links in mails, what people may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_key: str = Field(
        "",
        description="key that signs mail links and sessions (a secret: set it with "
        "RECLAIM_WEB__SECRET_KEY; empty: mails carry no link and reclaim web does not start)",
        repr=False,
    )
    base_url: str = Field(
        "",
        description="the address people open, as the mails write it "
        "(e.g. https://reclaim.example.org; empty: mails carry no link)",
    )
    host: str = Field("127.0.0.1", description="address reclaim web listens on")
    port: int = Field(8080, ge=1, le=65535, description="port reclaim web listens on")
    link_grace: Duration = Field(
        parse_duration("7d"),
        description="a mail's link works until the action's due date plus this",
    )
    session_lifetime: Duration = Field(
        parse_duration("1h"), description="how long a page stays open after a link is used"
    )
    extensions: dict[str, Duration] = Field(
        default_factory=lambda: {
            "shelve": parse_duration("14d"),
            "delete-shelved": parse_duration("30d"),
        },
        description='rule id -> how much later "keep it" moves the action (once per '
        "condition); a rule not named here cannot be extended",
    )
    max_extensions_per_resource: int = Field(
        2,
        ge=0,
        description="extensions one resource may get, over all its rules, within extension_window",
    )
    max_extensions_per_project: int = Field(
        20, ge=0, description="extensions one project's resources may get within extension_window"
    )
    extension_window: Duration = Field(
        parse_duration("365d"), description="the period the extension limits count over"
    )
    exemption_requests: bool = Field(
        True, description="people may ask operators to exempt a server"
    )
    keystone_url: str = Field(
        "",
        description="Keystone address people sign in against (empty: the auth_url of the "
        "clouds.yaml entry OS_CLOUD names)",
    )
    user_domain: str = Field("Default", description="Keystone domain of the user names signed in")
    member_roles: tuple[str, ...] = Field(
        (), description="roles that show a project to its members (empty: any role)"
    )
    operator_role: str = Field("admin", description="the role that makes an operator")
    signin_per_address: str = Field(
        "10/minute", description="sign-in attempts one remote address may make (limits syntax)"
    )
    signin_per_user: str = Field(
        "5/minute", description="refused sign-ins one user name may have (limits syntax)"
    )

    links_per_address: str = Field(
        "30/minute",
        description="mail links opened and resource-page forms sent from one remote address "
        "(limits syntax)",
    )

    @field_validator("signin_per_address", "signin_per_user", "links_per_address")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError on a rate it cannot read
        return value

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class Settings(BaseSettings):
    """Everything reclaim reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="RECLAIM_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    policy: PolicySettings = Field(default_factory=PolicySettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    sweep: SweepSettings = Field(default_factory=SweepSettings)
    mailer: MailerSettings = Field(default_factory=MailerSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    store_url: str = Field(
        "memory://", description="timer store: memory://, http://HOST:PORT/TABLE, dynamodb:///TABLE"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def config_file() -> Path | None:
    """The config file in force: ``$RECLAIM_CONFIG``, else the default path if it exists."""
    named = os.environ.get("RECLAIM_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"RECLAIM_CONFIG names {path}, which is not a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


#: ``RECLAIM_*`` variables that are not settings: the config file, the template, and the
#: test and benchmark switches.
NOT_SETTINGS = frozenset({"CONFIG", "TEMPLATE", "PIP_BUILD", "BENCH_SIZES", "WEB_SCREENSHOTS"})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``RECLAIM_*`` variables that name no setting, e.g. a misspelt section
    (``RECLAIM_POLCY__SHELVE_AFTER``) or a single underscore (``RECLAIM_POLICY_SHELVE_AFTER``),
    which the environment source would otherwise ignore. Unknown names inside a known
    section are refused by the section itself. Pure."""
    known = {name.upper() for name in Settings.model_fields}
    out = []
    for name in environ:
        if not name.upper().startswith("RECLAIM_"):
            continue
        head = name[len("RECLAIM_") :].upper().split("__", 1)[0]
        if head not in known and head not in NOT_SETTINGS:
            out.append(name)
    return sorted(out)


def nearest_setting(loc: Sequence[str | int]) -> str | None:
    """The setting nearest in spelling to a mistyped one (``("policy", "shelve_aftr")`` ->
    ``policy.shelve_after``; a variable's name, ``RECLAIM_POLCY__SHELVE_AFTER`` ->
    ``RECLAIM_POLICY__SHELVE_AFTER``), or None when none is close. Pure."""
    if len(loc) == 1 and str(loc[0]).upper().startswith("RECLAIM_"):
        head, _, rest = str(loc[0])[len("RECLAIM_") :].partition("__")
        sections = [n.upper() for n in Settings.model_fields]
        glued = [s for s in sections if head.upper().startswith(s + "_")]  # one underscore
        if glued and not rest:
            return f"RECLAIM_{glued[0]}__{head[len(glued[0]) + 1 :].upper()}"
        near = difflib.get_close_matches(head.upper(), sections, n=1)
        return f"RECLAIM_{near[0]}" + (f"__{rest.upper()}" if rest else "") if near else None
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        inner = field.annotation if field is not None else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    near = difflib.get_close_matches(str(loc[-1]).lower(), list(model.model_fields), n=1)
    return ".".join([*map(str, loc[:-1]), near[0]]) if near else None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from arguments, environment and config file (see module docstring).

    A ``RECLAIM_*`` variable that names no setting is an error: a mistyped variable must not
    leave the policy at its defaults unnoticed."""
    unknown = unknown_variables(os.environ)
    if unknown:
        sections = ", ".join(n for n, f in Settings.model_fields.items() if n != "store_url")
        named = "; ".join(
            f"{n}: no such setting"
            + (f", did you mean {m}?" if (m := nearest_setting([n])) else "")
            for n in unknown
        )
        raise ValueError(
            f"{named} (write RECLAIM_<SECTION>__<NAME>, sections "
            f"{sections}; or RECLAIM_STORE_URL, RECLAIM_CONFIG)"
        )
    return Settings(**overrides)


def load_bus_settings(**overrides: Any) -> BusSettings:
    """Bus settings from reclaim's settings (file ``bus`` section, ``RECLAIM_BUS__*``), then ``overrides``."""
    base = load_settings().bus
    given = {k: v for k, v in overrides.items() if v is not None}
    return BusSettings.model_validate({**base.model_dump(), **given}) if given else base


def describe_error(exc: BaseException) -> str:
    """A settings error in one line: ``section.name: what is wrong (got value)`` per problem.

    A value is shown only when it is no secret: never for a field whose name says password,
    secret, token or key, nor for a name that is no setting unless the setting it is nearest
    to is no secret (a misspelt ``RECLAIM_MAILER__PASWORD`` is named, its value is not), and
    a URL's credentials are masked. Pure.
    """
    if isinstance(exc, ValidationError):
        return "; ".join(_problem(e) for e in exc.errors())
    return mask_text(" ".join(str(exc).split()))


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = mask_text(str(error.get("msg", "")).removeprefix("Value error, "))
    got = error.get("input")
    hidden = (
        isinstance(got, dict | list)
        or got is None
        or any(secret_name(str(part)) for part in error.get("loc", ()))
    )
    near = None
    if error.get("type") == "extra_forbidden":
        # A misspelt name may be a misspelt secret's: its value is shown only when the
        # setting it is nearest to is no secret either.
        message, near = "no such setting", nearest_setting(error.get("loc", ()))
        hidden = hidden or near is None or secret_name(near)
    shown = "" if hidden else f" (got {mask_text(repr(got))})"
    return f"{where or 'settings'}: {message}{shown}" + (f", did you mean {near}?" if near else "")
