"""Who may call a poolwatch server: basic auth against bcrypt hashes, and bearer tokens.

One implementation for every server poolwatch runs (the exporters, the alerts receiver, the rule
engine, the controller, the pool API, the demo site), so every one of them answers the same way:
no credentials and wrong credentials are both 401 with a challenge naming the accepted schemes.

Basic auth: the users map user -> bcrypt hash, the format of the Prometheus web-config file
(`basic_auth_users`). A credential that verified once is remembered (as a SHA-256 of user,
password and hash), so a scraper that sends the same password every 15 s costs one bcrypt check,
not one per scrape. An unknown user is checked against a dummy hash of the same cost as the real
ones, so the answer takes as long as for a wrong password and the time does not tell which users
exist. At most `BCRYPT_AT_ONCE` bcrypt checks run at a time (each costs tens of milliseconds of
CPU): a flood of wrong passwords waits its turn and leaves the other cores to the scrapes.

Bearer tokens are compared in constant time. `Auth()` with neither is open: every request passes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from enum import Enum

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class Verdict(Enum):
    """What a request's Authorization header amounts to."""

    OK = "ok"  # accepted (or the server is open)
    MISSING = "missing"  # no credentials of a scheme this server accepts
    WRONG = "wrong"  # credentials given, not accepted


class Auth:
    """Basic auth (bcrypt hashes) and bearer tokens; a server with neither is open."""

    BCRYPT_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)

    def __init__(self, users: Mapping[str, str] | None = None, tokens: Iterable[str] = ()) -> None:
        self.users = dict(users or {})
        for user, hashed in self.users.items():
            if not hashed.startswith(BCRYPT_PREFIXES):
                raise ValueError(f"user {user!r}: expected a bcrypt hash ($2y$...), not a password")
        self.tokens = [t.encode() for t in tokens if t]
        self._dummy = _dummy_hash(next(iter(self.users.values()), "")) if self.users else b""
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()
        self._bcrypt = threading.BoundedSemaphore(self.BCRYPT_AT_ONCE)

    @classmethod
    def from_passwords(cls, passwords: Mapping[str, str], tokens: Iterable[str] = ()) -> Auth:
        """Users given as plain-text passwords (a configuration that predates hashes): each is
        hashed in memory at the lowest bcrypt cost, which protects nothing a disk holding the
        password in clear does not already expose, and keeps a wrong password cheap to refuse."""
        import bcrypt

        hashed = {u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()
                  for u, p in passwords.items()}  # fmt: skip
        return cls(hashed, tokens)

    @property
    def required(self) -> bool:
        """Whether any credential is asked for (False: the server is open)."""
        return bool(self.users or self.tokens)

    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401: the schemes this server accepts."""
        schemes = (['Basic realm="poolwatch"'] if self.users else []) + (
            ['Bearer realm="poolwatch"'] if self.tokens else []
        )
        return ", ".join(schemes) or 'Basic realm="poolwatch"'

    def verdict(self, header: str | None) -> Verdict:
        """Judge an Authorization header (None when the request has none)."""
        if not self.required:
            return Verdict.OK
        scheme, _, value = (header or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.tokens and value:
            given = value.encode()
            # every token compared, in constant time each: the time says nothing of which matched
            hits = [hmac.compare_digest(given, t) for t in self.tokens]
            return Verdict.OK if any(hits) else Verdict.WRONG
        if scheme == "basic" and self.users and value:
            return Verdict.OK if self._basic(value) else Verdict.WRONG
        if scheme in ("basic", "bearer") and value:
            return Verdict.WRONG  # a scheme this server does not take: wrong, not missing
        return Verdict.MISSING if not header else Verdict.WRONG

    def check(self, header: str | None) -> bool:
        """True when the request may pass."""
        return self.verdict(header) is Verdict.OK

    def _basic(self, value: str) -> bool:
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            self._bcrypt_check(password, self._dummy)  # same cost as a wrong password
            return False
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(token, t) for t in self._ok):
                return True
        if not self._bcrypt_check(password, hashed.encode()):
            return False
        with self._lock:
            self._ok.add(token)
        return True

    def _bcrypt_check(self, password: str, hashed: bytes) -> bool:
        import bcrypt

        with self._bcrypt:
            return bool(bcrypt.checkpw(password.encode(), hashed))


def _dummy_hash(like: str) -> bytes:
    """A bcrypt hash of a random password with the cost of `like` (a configured hash)."""
    import bcrypt

    try:
        rounds = int(like.split("$")[2])
    except (IndexError, ValueError):
        rounds = 12
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(min(max(rounds, 4), 31)))
