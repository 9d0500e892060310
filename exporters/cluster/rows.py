"""Rendered lines of one object kind, kept the way kube-state-metrics' metrics store keeps them:
key -> one bytes per family, plus each family's cached join and its compressed piece."""

from __future__ import annotations

from itertools import chain
from operator import itemgetter

from poolwatch.core.gzip_join import Piece

from .generators import FamilyGen

GZIP_LEVEL = 1  # a scrape's body changes with every event burst; level 6 costs 3-4x the time


class FamilyRows:
    """Rendered lines of one kind: key -> one bytes per family, and each family's cached join.

    A family's join (header + every object's lines) and its compressed piece are rebuilt only when
    one of its lines changed: a pod moving changes only its node's allocated line, a job's
    restart only its restarts line, and a MODIFIED that renders the same bytes (a status
    heartbeat) changes nothing."""

    def __init__(self, gens: list[FamilyGen]) -> None:
        self.gens = gens
        self.rows: dict[str, tuple[bytes, ...]] = {}
        self.versions = [0] * len(gens)  # per family, bumped when one of its lines changes
        self._joined: list[tuple[int, bytes]] = [(-1, b"")] * len(gens)
        self._pieces: list[tuple[int, Piece | None]] = [(-1, None)] * len(gens)

    def put(self, key: str, obj: object, only: tuple[int, ...] = ()) -> None:
        """Render `obj`'s families (`only` these indexes when it is already stored)."""
        old = self.rows.get(key)
        if only and old is not None:
            new = list(old)
            for i in only:
                new[i] = self.gens[i].render(obj)
        else:
            new = [g.render(obj) for g in self.gens]
        for i, lines in enumerate(new):
            if lines != (old[i] if old is not None else b""):
                self.versions[i] += 1
        self.rows[key] = tuple(new)

    def drop(self, key: str) -> None:
        old = self.rows.pop(key, None)
        for i, lines in enumerate(old or ()):
            if lines:
                self.versions[i] += 1

    def index(self, name: str) -> int:
        return next(i for i, g in enumerate(self.gens) if g.name == name)

    def families(self) -> list[tuple[int, int, bytes]]:
        """(family index, version, header + lines) for every family; under the store's lock."""
        out = []
        rows = None
        for i, gen in enumerate(self.gens):
            version, cached = self._joined[i]
            if version != self.versions[i]:
                rows = rows if rows is not None else list(self.rows.values())
                version = self.versions[i]
                cached = b"".join(chain((gen.header,), map(itemgetter(i), rows)))
                self._joined[i] = (version, cached)
            out.append((i, version, cached))
        return out

    def piece(self, i: int, version: int, data: bytes) -> Piece:
        """Family `i`'s join at `version` compressed as a piece of the scrape's gzip stream,
        cached; called outside the store's lock, so a scrape compressing does not hold up the
        watch loop."""
        version_of, cached = self._pieces[i]
        if cached is None or version_of != version:
            cached = Piece.of(data, GZIP_LEVEL)
            self._pieces[i] = (version, cached)
        return cached
