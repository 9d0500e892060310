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

from .receiver import Credentials, make_server
from .service import AlertService
from .settings import AlertsSettings

log = logging.getLogger(__name__)


def tls_context(settings: AlertsSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"tls: cannot load certificate/key: {err}") from None
    return ctx


def run(settings: AlertsSettings) -> int:
    token, users = settings.auth.secrets()  # fail closed: unreadable or empty -> ConfigError
    for target in settings.targets:  # likewise each url_file, before the outbox is opened
        target.resolve_url()
    tls = tls_context(settings)
    service = AlertService(settings)
    httpd = make_server(service, split_listen(settings.listen), Credentials(token, users), tls)
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
    if not token and not users:
        log.warning("no auth configured: anyone who reaches %s:%s can post alerts", host, port)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        service.close()
    return 0
