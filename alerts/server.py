"""`poolwatch alerts serve`: the service, its delivery workers and the HTTP receiver, until a
signal. On SIGTERM the listener stops first (Alertmanager retries elsewhere or later), then the
workers finish the batch in flight and record it, so a graceful restart never sends twice."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from types import FrameType

from poolwatch.core.config import ConfigError, split_listen
from poolwatch.core.web.auth import Auth
from poolwatch.core.web.config import load_web_config
from poolwatch.core.web.config import tls_context as web_tls

from .receiver import credentials, make_server
from .service import AlertService
from .settings import AlertsSettings

log = logging.getLogger(__name__)


def tls_context(settings: AlertsSettings) -> ssl.SSLContext | None:
    """The `tls` section as the shared web layer's TLS (1.2 or newer); ConfigError naming it."""
    if settings.tls is None:
        return None
    return web_tls(settings.tls.cert_file, settings.tls.key_file, field="tls")


def web_setup(settings: AlertsSettings) -> tuple[Auth, ssl.SSLContext | None]:
    """The receiver's credentials and TLS from its own `auth` and `tls` and `web_config_file`.

    The web config file applies as on every other poolwatch server. Combined with the
    receiver's own settings: TLS from one of them only (both: ConfigError naming both, since
    neither silently wins); the users of `auth.basic_users` (plain passwords, hashed in memory)
    and of `basic_auth_users` (bcrypt) form one set, a user named in both being refused; the
    bearer token of `auth.bearer_token_file` keeps working. Secrets are read here, so an
    unreadable or empty one stops the start (fail closed)."""
    token, passwords = settings.auth.secrets()
    path = settings.web_config_file
    web = load_web_config(path)
    if settings.tls is not None and web.tls_server_config is not None:
        raise ConfigError(
            f"tls and web_config_file ({path}: tls_server_config) both set the receiver's TLS; "
            "give it in one of them"
        )
    both = sorted(set(passwords) & set(web.basic_auth_users))
    if both:
        raise ConfigError(
            f"user(s) {', '.join(both)} in both auth.basic_users and web_config_file ({path}: "
            "basic_auth_users); name each user in one of them"
        )
    own = credentials(token, passwords)
    auth = Auth({**own.users, **web.basic_auth_users}, [token] if token else [])
    tls = web.ssl_context() if web.tls_server_config is not None else tls_context(settings)
    return auth, tls


def run(settings: AlertsSettings) -> int:
    auth, tls = web_setup(settings)  # fail closed: unreadable or empty secrets -> ConfigError
    for target in settings.targets:  # likewise each url_file, before the outbox is opened
        target.resolve_url()
    service = AlertService(settings)
    httpd = make_server(service, split_listen(settings.listen), auth, tls)
    service.start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, shutting down", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    host, port = httpd.server_address[:2]
    log.info(
        "alerts receiver at %s://%s:%s/alertmanager, %d target(s): %s",
        "https" if tls else "http",
        host,
        port,
        len(service.redacted),
        ", ".join(f"{n}={u}" for n, u in service.redacted.items()) or "none",
    )
    if not auth.required:
        log.warning("no auth configured: anyone who reaches %s:%s can post alerts", host, port)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        service.close()
    return 0
