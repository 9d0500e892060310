"""The web configuration file, in the format Prometheus exporters share (exporter-toolkit).

```yaml
tls_server_config:
  cert_file: /etc/poolwatch/tls.crt
  key_file: /etc/poolwatch/tls.key
basic_auth_users:
  prometheus: $2y$10$...   # bcrypt hash, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`
```
The same file an operator already writes for node_exporter works here. Every poolwatch server
takes its TLS and basic-auth settings in this shape (`WebConfig.auth()`, `WebConfig.ssl_context()`);
a server that also takes bearer tokens (the controller, the pool API, the alerts receiver) adds
them to the same `Auth`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from poolwatch.core.config import ConfigError, read_yaml

from .auth import BCRYPT_PREFIXES, Auth


class TLSServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cert_file: Path
    key_file: Path
    min_version: str = "TLS12"


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(BCRYPT_PREFIXES):
                raise ValueError(f"user {user!r}: expected a bcrypt hash ($2y$...), not a password")
        return users

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.tls_server_config
        if tls is None:
            return None
        return tls_context(tls.cert_file, tls.key_file, tls.min_version, "tls_server_config")

    def auth(self, tokens: Iterable[str] = ()) -> Auth:
        """The basic-auth users of this file, plus any bearer `tokens` the server also takes."""
        return Auth(self.basic_auth_users, tokens)


def tls_context(
    cert_file: Path, key_file: Path, min_version: str = "TLS12", field: str = "tls"
) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer; "TLS13": 1.3 only); ConfigError naming
    `field` when the certificate or key cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    )
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"{field}: cannot load certificate/key: {err}") from None
    return ctx


def load_web_config(path: Path | None) -> WebConfig:
    if path is None:
        return WebConfig()
    data, _ = read_yaml(path)
    try:
        web = WebConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]
        raise ConfigError("\n".join([f"invalid web config in {path}:", *lines])) from None
    try:
        web.ssl_context()
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return web
