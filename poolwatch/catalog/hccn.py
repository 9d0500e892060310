"""Catalog entries of the Ascend NPU's own network port, read through Huawei's `hccn_tool`.

Every Ascend training NPU (910, 910B, A3 chips) has a RoCE port of its own, with its own optical
module; npu-smi does not report them, `hccn_tool -i <device id> ...` does. `<device id>` is the
chip's physical id (0-7 on an 8-NPU node, 0-15 on A3), which is all hccn_tool knows about the chip,
so these families are labelled `device_id` (plus `lane` for per-lane optical power) rather than with
the `vendor`/`model`/`index`/`uuid` labels of the npu-smi families. On A3 and on 910B the device id
is the npu-smi overview's Phy-ID / the N of `/dev/davinciN`.

Sources, one command each, named in every help text:
- `-link -g`: `link status: UP|DOWN` -> `poolwatch_npu_link_up`;
- `-link_stat -g`: `link up count` and (drivers of 2025 on) `link down count`, counted since the
  driver loaded or `hccn_tool -link_stat -c`, so they are counters: a flap is one down transition
  followed by an up one. The fault-isolation rule "NPU port disconnected more than five times in
  24 h" (A050149) is `increase(poolwatch_npu_link_down_transitions_total[24h]) > 5`; on older
  drivers, which print no down count, the up count stands in (it also counts the first link-up).
  The command's "link change records" (its last few changes, in the node's local time without a
  zone) are not exported;
- `-stat -g`: the port's MAC and RoCE engine counters (`mac_*_num`, `roce_*_num`);
- `-optical -g`: the optical module's presence, temperature, supply voltage and per-lane TX/RX
  power. Units are converted to base units (volts, watts); the seed aliases give them back in mV and
  mW.

The seeds' "RoCE rate" (`ma_node_npu_roce_{tx,rx}_rate_bytes_per_second`) is the rate of the port's
MAC byte counters: hccn_tool counts packets, not bytes, for the RoCE engine, and the MAC carries the
RoCE traffic (plus a little host-NIC traffic, `nic_*_oct_num`). The per-container RoCE rates
(`ma_container_npu_roce_*`) are not produced: they would need the device -> pod mapping, which is
keyed by the npu-smi labels these families do not carry.
"""

from __future__ import annotations

from poolwatch.core.catalog.model import Alias, MetricSpec, read_every

#: hccn_tool views -> seconds between two readings by default (0: every collection). The MAC and
#: RoCE counters (-stat) are read every collection: their seed aliases are per-collection rates.
HCCN_INTERVALS: dict[str, float] = {"link": 0.0, "link_stat": 60.0, "stat": 0.0, "optical": 60.0}

MA = "modelarts"
MILLI = 1000.0  # mW per W, mV per V
PORT = ("device_id",)
LANE = ("device_id", "lane")
LANES = ("0", "1", "2", "3")


def _a(name: str, unit: str, **kw: object) -> Alias:
    return Alias(name=name, compat=MA, unit=unit, **kw)  # type: ignore[arg-type]


def _count(name: str, unit: str = "Number") -> Alias:
    return _a(name, unit, type="counter")


def _spec(
    name: str, typ: str, unit: str, help_: str, labels: tuple[str, ...], *al: Alias
) -> MetricSpec:
    return MetricSpec(name, typ, unit, help_, labels, "accelerator", tuple(al))  # type: ignore[arg-type]


def _per_lane(prefix: str, unit: str) -> tuple[Alias, ...]:
    return tuple(
        _a(f"{prefix}{lane}", unit, scale=MILLI, match=(("lane", lane),)) for lane in LANES
    )


# The tables below are data, aligned for reading; the formatter would put every argument on a line.
# fmt: off
HCCN_SPECS: list[MetricSpec] = [
    # --- link state: -link -g, -link_stat -g ---------------------------------------------------
    _spec("poolwatch_npu_link_up", "gauge", "",
          "1 if the NPU's RoCE port reports link UP, 0 if DOWN (accelerator; hccn_tool -link -g).",
          PORT),
    _spec("poolwatch_npu_link_up_transitions_total", "counter", "",
          "Times the NPU's RoCE port link came up since the driver loaded or the history was "
          "cleared, the first link-up included (accelerator; hccn_tool -link_stat -g link up "
          "count).", PORT),
    _spec("poolwatch_npu_link_down_transitions_total", "counter", "",
          "Times the NPU's RoCE port link went down (flaps) since the driver loaded or the history "
          "was cleared; absent where the driver prints no link down count (accelerator; hccn_tool "
          "-link_stat -g link down count).", PORT),
    # --- port MAC counters: -stat -g ------------------------------------------------------------
    _spec("poolwatch_npu_port_receive_bytes_total", "counter", "bytes",
          "Bytes received by the NPU port's MAC, RoCE and host-NIC traffic together (accelerator; "
          "hccn_tool -stat -g mac_rx_total_oct_num).", PORT,
          _a("ma_node_npu_roce_rx_rate_bytes_per_second", "Bytes/s", transform="rate")),
    _spec("poolwatch_npu_port_transmit_bytes_total", "counter", "bytes",
          "Bytes sent by the NPU port's MAC, RoCE and host-NIC traffic together (accelerator; "
          "hccn_tool -stat -g mac_tx_total_oct_num).", PORT,
          _a("ma_node_npu_roce_tx_rate_bytes_per_second", "Bytes/s", transform="rate")),
    _spec("poolwatch_npu_port_receive_packets_total", "counter", "",
          "Packets received by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_rx_total_pkt_num).", PORT),
    _spec("poolwatch_npu_port_transmit_packets_total", "counter", "",
          "Packets sent by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_tx_total_pkt_num).", PORT),
    _spec("poolwatch_npu_port_receive_bad_packets_total", "counter", "",
          "Bad packets received by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_rx_bad_pkt_num).", PORT,
          _count("ma_node_npu_roce_mac_rx_bad_packets_total")),
    _spec("poolwatch_npu_port_transmit_bad_packets_total", "counter", "",
          "Bad packets sent by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_tx_bad_pkt_num).", PORT,
          _count("ma_node_npu_roce_mac_tx_bad_packets_total")),
    _spec("poolwatch_npu_port_receive_pause_frames_total", "counter", "",
          "Ethernet pause frames received by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_rx_mac_pause_num).", PORT,
          _count("ma_node_npu_roce_mac_rx_pause_packets_total")),
    _spec("poolwatch_npu_port_transmit_pause_frames_total", "counter", "",
          "Ethernet pause frames sent by the NPU port's MAC (accelerator; hccn_tool -stat -g "
          "mac_tx_mac_pause_num).", PORT,
          _count("ma_node_npu_roce_mac_tx_pause_packets_total")),
    _spec("poolwatch_npu_port_receive_pfc_frames_total", "counter", "",
          "PFC (priority flow control) frames received by the NPU port's MAC, all priorities "
          "(accelerator; hccn_tool -stat -g mac_rx_pfc_pkt_num).", PORT,
          _count("ma_node_npu_roce_mac_rx_pfc_packets_total")),
    _spec("poolwatch_npu_port_transmit_pfc_frames_total", "counter", "",
          "PFC (priority flow control) frames sent by the NPU port's MAC, all priorities "
          "(accelerator; hccn_tool -stat -g mac_tx_pfc_pkt_num).", PORT,
          _count("ma_node_npu_roce_mac_tx_pfc_packets_total")),
    # --- RoCE engine counters: -stat -g ---------------------------------------------------------
    _spec("poolwatch_npu_roce_receive_packets_total", "counter", "",
          "Packets received by the NPU's RoCE engine (accelerator; hccn_tool -stat -g "
          "roce_rx_all_pkt_num).", PORT,
          _count("ma_node_npu_roce_rx_all_packets_total")),
    _spec("poolwatch_npu_roce_transmit_packets_total", "counter", "",
          "Packets sent by the NPU's RoCE engine (accelerator; hccn_tool -stat -g "
          "roce_tx_all_pkt_num).", PORT,
          _count("ma_node_npu_roce_tx_all_packets_total")),
    _spec("poolwatch_npu_roce_receive_errors_total", "counter", "",
          "Bad packets received by the NPU's RoCE engine (accelerator; hccn_tool -stat -g "
          "roce_rx_err_pkt_num).", PORT,
          _count("ma_node_npu_roce_rx_err_packets_total")),
    _spec("poolwatch_npu_roce_transmit_errors_total", "counter", "",
          "Bad packets sent by the NPU's RoCE engine (accelerator; hccn_tool -stat -g "
          "roce_tx_err_pkt_num).", PORT,
          _count("ma_node_npu_roce_tx_err_packets_total")),
    # --- optical module: -optical -g ------------------------------------------------------------
    _spec("poolwatch_npu_optical_present", "gauge", "",
          "1 if an optical module is seated in the NPU's port, 0 if not (accelerator; hccn_tool "
          "-optical -g present).", PORT),
    _spec("poolwatch_npu_optical_temperature_celsius", "gauge", "celsius",
          "Optical module temperature (accelerator; hccn_tool -optical -g temperature).", PORT,
          _a("ma_node_npu_optical_temperature", "°C")),
    _spec("poolwatch_npu_optical_supply_voltage_volts", "gauge", "volts",
          "Optical module supply voltage (accelerator; hccn_tool -optical -g Vcc).", PORT,
          _a("ma_node_npu_optical_vcc", "mV", scale=MILLI)),
    _spec("poolwatch_npu_optical_transmit_power_watts", "gauge", "watts",
          "Optical transmit power per lane; a single-lane reading is lane 0 (accelerator; "
          "hccn_tool -optical -g Tx Power<lane>).", LANE,
          *_per_lane("ma_node_npu_optical_tx_power", "mW")),
    _spec("poolwatch_npu_optical_receive_power_watts", "gauge", "watts",
          "Optical receive power per lane; a single-lane reading is lane 0 (accelerator; "
          "hccn_tool -optical -g Rx Power<lane>).", LANE,
          *_per_lane("ma_node_npu_optical_rx_power", "mW")),
]
# fmt: on


def _view_of(spec: MetricSpec) -> str:
    """The hccn_tool view a family comes from, as its help names it (`hccn_tool -<view> -g`)."""
    for view in sorted(HCCN_INTERVALS, key=len, reverse=True):
        if f"hccn_tool -{view} -g" in spec.help:
            return view
    raise ValueError(f"{spec.name}: help names no hccn_tool view")


HCCN_SPECS = [
    read_every(s, "hccn_tool", _view_of(s), HCCN_INTERVALS[_view_of(s)]) for s in HCCN_SPECS
]
