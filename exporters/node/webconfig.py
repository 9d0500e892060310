"""The web configuration file, in the format Prometheus exporters share (exporter-toolkit).

```yaml
tls_server_config:
  cert_file: /etc/poolwatch/tls.crt
  key_file: /etc/poolwatch/tls.key
basic_auth_users:
  prometheus: $2y$10$...   # bcrypt hash, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`
```
The same file an operator already writes for node_exporter works here.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from poolwatch.core.config import ConfigError, read_yaml


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
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"user {user!r}: expected a bcrypt hash ($2y$...), not a password")
        return users

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.tls_server_config
        if tls is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = (
            ssl.TLSVersion.TLSv1_3 if tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
        )
        try:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"tls_server_config: cannot load certificate/key: {err}") from None
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
