"""The receiver's settings: YAML file < POOLWATCH_ALERTS__* environment < flags.

Loaded with `poolwatch.config.load`, so a typo or a bad value is reported with its file and line.
Secrets (bearer token, basic-auth passwords, target URLs that carry SMTP passwords) are read from
files named here, never written inline in a config that is checked in; `url` inline is accepted
for targets without secrets (a local SMTP relay, a webhook on the cluster network).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from poolwatch.core.config import ConfigError, Duration, Listen, env_overrides, load
from poolwatch.core.ports import listen as listen_default

ENV_PREFIX = "POOLWATCH_ALERTS__"
Severity = Literal["critical", "warning", "info"]

#: urgency rank: lower is sent first; anything unknown sorts after info
SEVERITY_RANK = {"critical": 0, "major": 1, "warning": 2, "minor": 3, "info": 4, "suggestion": 5}


def severity_rank(severity: str | None) -> int:
    return SEVERITY_RANK.get((severity or "").lower(), 9)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(_Model):
    """Who may post. Alertmanager's `http_config` sends either a bearer token or basic auth.

    These users' files hold plain passwords (Alertmanager's `password_file` must read the same
    password). Users may also come, as bcrypt hashes, from `web_config_file`'s
    `basic_auth_users`: both sets are accepted together, and a user named in both is refused at
    start (one user, one password). The bearer token works alongside either."""

    bearer_token_file: Path | None = None
    basic_users: dict[str, Path] = Field(
        default_factory=dict, description="user name -> file holding that user's password"
    )

    def secrets(self) -> tuple[str | None, dict[str, str]]:
        """(bearer token, {user: password}) read from their files; ConfigError when a file is
        unreadable or empty. Fail closed: an empty token file would otherwise turn auth off, and
        an empty password file would let that user in with an empty password."""
        token = _read_secret(self.bearer_token_file, "auth.bearer_token_file")
        users = {
            u: _read_secret(p, f"auth.basic_users.{u}") or "" for u, p in self.basic_users.items()
        }
        return token, users


class TLS(_Model):
    """The receiver's own TLS. `web_config_file`'s `tls_server_config` does the same; giving both
    is refused at start, naming both, rather than one silently winning."""

    cert_file: Path
    key_file: Path


class Matchers(_Model):
    """Which notifications a target gets. Empty lists match everything."""

    severities: list[str] = Field(default_factory=list)
    pools: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict, description="label -> exact value")

    def match(self, labels: Mapping[str, str]) -> bool:
        if self.severities and labels.get("severity", "") not in self.severities:
            return False
        if self.pools and labels.get("pool", "") not in self.pools:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


class RateLimit(_Model):
    """At most `messages` messages per `per` seconds to one target (a token bucket)."""

    messages: int = Field(default=30, ge=1)
    per: Duration = Field(60.0, gt=0)


class Target(_Model):
    """One apprise URL (mailto://, mailtos://, json://, form://, slack://, ...)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str | None = None
    url_file: Path | None = None
    match: Matchers = Field(default_factory=Matchers)
    rate_limit: RateLimit = Field(default_factory=RateLimit)

    @model_validator(mode="after")
    def _one_url(self) -> Target:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("give exactly one of url and url_file")
        return self

    def resolve_url(self) -> str:
        if self.url is not None:
            return self.url
        return _read_secret(self.url_file, f"targets.{self.name}.url_file") or ""


class JobOwners(_Model):
    """The seed's `alert_job_owners`: also tell the owner of the affected job (off by default).

    The owner's address is read from `label` on the alert (the rule copies it from the pod or job
    label); the message goes through the mail target `via`, with the recipient swapped."""

    enabled: bool = False
    label: str = "owner_email"
    via: str = ""
    max_recipients: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="owners told per alert at most: a label listing thousands of addresses "
        "must not queue thousands of mails ahead of on-call",
    )


class Retry(_Model):
    initial_backoff: Duration = Field(2.0, gt=0)
    max_backoff: Duration = Field(300.0, gt=0)
    deadline: Duration = 86400.0  # after this long undelivered, a notification is dead


class AlertsSettings(_Model):
    listen: Listen = listen_default("alerts")
    cluster_name: str = "poolwatch"
    outbox: Path = Path("var/alerts/outbox.sqlite")
    auth: Auth = Field(default_factory=Auth)
    tls: TLS | None = None
    web_config_file: Path | None = Field(
        default=None,
        description="TLS and basic-auth users (bcrypt) in the Prometheus web configuration format, "
        "the same file every other poolwatch server takes; it combines with `auth` (one set of "
        "users; the bearer token keeps working) and refuses to start next to `tls`",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    targets: list[Target] = Field(default_factory=list)
    job_owners: JobOwners = Field(default_factory=JobOwners)
    templates_dir: Path | None = None
    reminders: bool = True
    reminder_wait: Duration = 86400.0  # the seed's reminder_wait_time
    group_wait: Duration = 1.0  # collect a burst this long before the first message
    group_max: int = Field(default=200, ge=1, description="alerts per message at most")
    retry: Retry = Field(default_factory=Retry)
    retention: Duration = 7 * 86400.0  # sent and dead rows are kept this long (dedup horizon)
    public_url: str = Field(default="", description="how Alertmanager reaches the receiver")

    @model_validator(mode="after")
    def _consistent(self) -> AlertsSettings:
        names = [t.name for t in self.targets]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"targets: duplicate name(s) {sorted(dup)}")
        if self.job_owners.enabled and self.job_owners.via not in names:
            raise ValueError(f"job_owners.via: {self.job_owners.via!r} is not a target name")
        return self


def _read_secret(path: Path | None, field: str) -> str | None:
    """The stripped content of a secret file; None when no file is named. An empty file is an
    error, never "no secret": every caller would otherwise fail open."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or err
        raise ConfigError(f"{field}: cannot read {path}: {why}") from None
    if not text:
        raise ConfigError(f"{field}: {path} is empty; refusing to start without the secret")
    return text


def load_settings(
    file: Path | None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[tuple[str, ...], tuple[Any, str]] | None = None,
) -> AlertsSettings:
    """Defaults < file < POOLWATCH_ALERTS__* < flags; ConfigError names file:line or variable."""
    env = os.environ if env is None else env
    # poolwatch.config reads POOLWATCH_<PATH>; ours live under POOLWATCH_ALERTS__<PATH>, and an
    # error must name the variable the operator actually set
    renamed = {"POOLWATCH_" + k[len(ENV_PREFIX) :]: v for k, v in env.items()
               if k.startswith(ENV_PREFIX)}  # fmt: skip
    layered = {
        path: (value, origin.replace("POOLWATCH_", ENV_PREFIX, 1))
        for path, (value, origin) in env_overrides(renamed).items()
    }
    # the web config file is one for every poolwatch server: POOLWATCH_WEB_CONFIG_FILE, as the
    # other parts read it; the receiver's own POOLWATCH_ALERTS__WEB_CONFIG_FILE wins over it
    shared = env.get("POOLWATCH_WEB_CONFIG_FILE")
    if shared and ("web_config_file",) not in layered:
        layered[("web_config_file",)] = (shared, "environment variable POOLWATCH_WEB_CONFIG_FILE")
    layered.update(flags or {})
    return load(AlertsSettings, file, {}, layered)
