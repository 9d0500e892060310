"""infiniband: HCA port state and counters from /sys/class/infiniband (seed ma_node_infiniband_*).

Data counters (port_rcv_data, port_xmit_data) count 32-bit words; the canonical series are bytes
(x 4) and the seed aliases keep the words. A node without InfiniBand has nothing to report and stays
`up 1`. A counter file that is unreadable or not a number is skipped for that port (mlx5 firmware
returns EINVAL for some counters), and the collector reports the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import PartialFailure, families, register
from ..settings import NodeExporterSettings, _IncludeExclude

log = logging.getLogger(__name__)

# sysfs counter file -> catalog name (without the poolwatch_infiniband_ prefix), and scale
COUNTERS: dict[str, tuple[str, float]] = {
    "port_rcv_data": ("port_data_received_bytes_total", 4.0),
    "port_xmit_data": ("port_data_transmitted_bytes_total", 4.0),
    "port_rcv_packets": ("port_packets_received_total", 1.0),
    "port_xmit_packets": ("port_packets_transmitted_total", 1.0),
    "symbol_error": ("port_symbol_errors_total", 1.0),
    "link_error_recovery": ("port_link_error_recoveries_total", 1.0),
    "link_downed": ("port_link_downed_total", 1.0),
    "port_rcv_errors": ("port_receive_errors_total", 1.0),
    "local_link_integrity_errors": ("port_local_link_integrity_errors_total", 1.0),
    "port_rcv_remote_physical_errors": ("port_receive_remote_physical_errors_total", 1.0),
    "port_rcv_switch_relay_errors": ("port_receive_switch_relay_errors_total", 1.0),
    "port_rcv_constraint_errors": ("port_receive_constraint_errors_total", 1.0),
    "port_xmit_constraint_errors": ("port_transmit_constraint_errors_total", 1.0),
    "port_xmit_wait": ("port_transmit_wait_total", 1.0),
    "port_xmit_discards": ("port_transmit_discards_total", 1.0),
    "excessive_buffer_overrun_errors": ("port_excessive_buffer_overrun_errors_total", 1.0),
    "VL15_dropped": ("port_vl15_dropped_total", 1.0),
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*Gb/sec")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def parse_state(text: str | None) -> float | None:
    """'4: ACTIVE' -> 4."""
    if not text:
        return None
    head = text.split(":", 1)[0].strip()
    return float(head) if head.isdigit() else None


def parse_rate(text: str | None) -> float | None:
    """'100 Gb/sec (4X EDR)' -> bytes per second."""
    m = _RATE.match(text or "")
    return float(m.group(1)) * 1e9 / 8 if m else None


class InfinibandCollector:
    name = "infiniband"

    def __init__(self, settings: _IncludeExclude, sysfs: Path) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.settings = settings
        self.root = sysfs / "class" / "infiniband"

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        problems: list[str] = []
        if self.root.is_dir():
            for hca in sorted(self.root.iterdir()):
                if self.settings.wants(hca.name):
                    self._hca(hca, fams, problems)
        yield from fams.values()
        if problems:
            raise PartialFailure("; ".join(problems[:5]))

    def _hca(self, hca: Path, fams: dict[str, Metric], problems: list[str]) -> None:
        fams["poolwatch_infiniband_info"].add_metric(
            [hca.name, _read(hca / "board_id") or "", _read(hca / "fw_ver") or "",
             _read(hca / "hca_type") or ""],
            1,
        )  # fmt: skip
        ports = hca / "ports"
        if not ports.is_dir():
            problems.append(f"{hca.name}: no ports directory")
            return
        for port in sorted(ports.iterdir(), key=lambda p: (len(p.name), p.name)):
            labels = [hca.name, port.name]
            for fname, metric, parse in (
                ("state", "port_state", parse_state),
                ("phys_state", "port_physical_state", parse_state),
                ("rate", "port_rate_bytes_per_second", parse_rate),
            ):
                value = parse(_read(port / fname))
                if value is not None:
                    fams[f"poolwatch_infiniband_{metric}"].add_metric(labels, value)
            for fname, (metric, scale) in COUNTERS.items():
                raw = _read(port / "counters" / fname)
                if raw is None:
                    continue  # not every HCA has every counter
                try:
                    value = float(int(raw))
                except ValueError:
                    log.debug("infiniband %s/%s: %s is %r", hca.name, port.name, fname, raw)
                    continue
                fams[f"poolwatch_infiniband_{metric}"].add_metric(labels, value * scale)


@register("infiniband", lambda s: s.collectors.infiniband)
def _factory(settings: NodeExporterSettings) -> InfinibandCollector:
    return InfinibandCollector(settings.collectors.infiniband, settings.roots.sysfs)
