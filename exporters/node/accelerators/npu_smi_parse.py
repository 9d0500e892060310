"""Parsers for npu-smi's text: the `npu-smi info` overview table and the `-t <type>` views.

npu-smi has no machine-readable output, and its layout changes with the driver and the card:
- the overview is a table of row pairs per chip; the second header row says which id columns the
  chip row has (`Chip` on 910B, `Chip  Phy-ID` on A3, `Chip    Device` on 310/310P), and the value
  cell's header names its columns (310/310P have no `HBM-Usage(MB)`); values are matched to those
  header names, never to fixed positions, and widths may change (26.0 widened the table);
- "used / total" pairs come as `3414 / 65536` or, once the number is wider, `61258/ 65536`;
- missing values are `NA`, `N/A` or `-` (A3's second chip has no power of its own): they parse to
  `None`, never to a number;
- the process table may be absent, say "No running processes found in NPU n", have empty process
  names, or (26.0) carry a fifth column;
- `-t` views are `key : value` lines, indented by a tab or spaces, in blank-line separated blocks:
  a header (NPU ID, Chip Count), one block per chip (its `Chip ID` line first or last, depending on
  the view), and blocks for the board's MCU or CPU (`Chip Name` without `Chip ID`), which are not
  the chip's values.
Anything else raises `ValueError` naming the offending line: a layout we do not know must show up
as a failed run with the line in the log, never as silently wrong numbers. `view_facts` then turns
a view's pairs into base units (ratios 0-1, hertz) under the names the backend uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

_MISSING = {"", "na", "n/a", "-", "--", "failed", "not support", "unknown"}
_BUS_ID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]")
_SLASH = re.compile(r"\s*/\s*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_NO_PROCESSES = re.compile(r"No running processes found in NPU\s+(\d+)")
_HEALTH = {"ok": 0, "warning": 1, "alarm": 2, "critical": 3}
MHZ = 1e6


class ViewUnsupported(Exception):
    """npu-smi says "This device does not support querying <type>" for this card."""


@dataclass
class ChipRow:
    """One chip of the overview table: its row pair, values keyed by their header name."""

    npu: int
    chip: int | None  # None: the layout has no chip column (views are asked without -c)
    name: str
    health: str
    bus_id: str
    phy_id: int | None  # A3 `Phy-ID` or 310/310P `Device`: the id the device plugin uses
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessRow:
    npu: int
    chip: int
    pid: int
    name: str
    memory_mb: float | None


@dataclass
class Overview:
    version: str = ""
    chips: list[ChipRow] = field(default_factory=list)
    # NPU id -> its process rows; None when the output has no process table at all
    processes: dict[int, list[ProcessRow]] | None = None


def number(raw: str, what: str = "value") -> float | None:
    """A number from npu-smi, or None for its "no value" spellings (NA, N/A, -, Failed)."""
    text = raw.strip()
    if text.lower() in _MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"npu-smi {what}: expected a number, got {raw!r}") from None


def fraction(raw: str, what: str) -> tuple[float | None, float | None]:
    """`used/total` (already without blanks around the slash) -> (used, total)."""
    used, sep, total = raw.partition("/")
    if not sep:
        raise ValueError(f"npu-smi {what}: expected 'used / total', got {raw!r}")
    return number(used, what), number(total, what)


def health_level(word: str) -> int:
    """OK 0, Warning 1, Alarm 2, Critical 3; anything else (UNKNOWN, NA, a word a newer driver
    adds) is 3: a chip whose health npu-smi cannot state is not known to be healthy."""
    return _HEALTH.get(word.strip().lower(), 3)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner.removeprefix("|").removesuffix("|")
    return [c.strip() for c in inner.split("|")]


def _tokens(cell: str) -> list[str]:
    return _SLASH.sub("/", cell).split()


def _named(names: list[str], cell: str, line: str) -> dict[str, str]:
    """The value cell's tokens by their header names; each must be a number, a "no value"
    spelling or a used/total pair of those, so that a shifted or garbled row names its line."""
    values = _tokens(cell)
    if len(values) != len(names):
        raise ValueError(f"npu-smi info: {len(values)} values for columns {names}: {line!r}")
    for token in values:
        for part in token.split("/", 1):
            if part.lower() not in _MISSING and not _NUMBER.fullmatch(part):
                raise ValueError(f"npu-smi info: {token!r} is not a value: {line!r}")
    return dict(zip(names, values, strict=True))


class _OverviewParser:
    def __init__(self) -> None:
        self.out = Overview()
        self.state = "start"
        self.head_top: list[str] = []
        self.head_ids: list[str] = []
        self.head_values: list[str] = []
        self.pending: tuple[int, str, str, dict[str, str], str] | None = None
        self.proc_cols: dict[str, int] = {}

    def feed(self, line: str) -> None:
        text = line.strip()
        if not text or text.startswith("+"):
            return
        if not text.startswith("|"):
            raise ValueError(f"unexpected line in npu-smi info output: {line!r}")
        cells = _cells(text)
        first = cells[0]
        if "Version:" in text and "npu-smi" in first:
            self.out.version = text.split("Version:", 1)[1].split()[0].rstrip("|")
        elif first.startswith("NPU") and "Name" in first and len(cells) == 3:
            self.head_top, self.state = cells[2].split(), "head"
        elif self.state == "head" and first.startswith("Chip"):
            self.head_ids, self.head_values = first.split(), cells[2].split()
            self.state = "chips"
        elif first.startswith("NPU") and any(c == "Process id" for c in cells):
            self._process_header(cells)
        elif m := _NO_PROCESSES.search(text):
            self._processes().setdefault(int(m.group(1)), [])
        elif self.state == "chips":
            self._chip_row(cells, line)
        elif self.state == "procs":
            self._process_row(cells, line)
        else:
            raise ValueError(f"unexpected line in npu-smi info output: {line!r}")

    def _chip_row(self, cells: list[str], line: str) -> None:
        if len(cells) != 3:
            raise ValueError(f"npu-smi info: expected 3 cells in a chip row: {line!r}")
        if self.pending is None:  # first row of the pair: NPU id, name, health, power/temp
            ids = cells[0].split()
            if not ids or not ids[0].isdigit() or not re.fullmatch(r"[A-Za-z]+", cells[1]):
                raise ValueError(f"npu-smi info: expected 'NPU Name | Health | ...': {line!r}")
            values = _named(self.head_top, cells[2], line)
            self.pending = (int(ids[0]), " ".join(ids[1:]), cells[1], values, line)
            return
        npu, name, health, values, _ = self.pending
        self.pending = None
        ids = cells[0].split()
        if len(ids) > len(self.head_ids) or not all(i.isdigit() for i in ids):
            raise ValueError(f"npu-smi info: chip ids {ids} for columns {self.head_ids}: {line!r}")
        by_name = dict(zip(self.head_ids, (int(i) for i in ids), strict=False))
        if cells[1].upper() not in ("NA", "N/A", "-") and not _BUS_ID.fullmatch(cells[1]):
            raise ValueError(f"npu-smi info: expected a PCI bus id: {line!r}")
        values |= _named(self.head_values, cells[2], line)
        phy = by_name.get("Phy-ID", by_name.get("Device"))
        bus = "" if cells[1].upper() in ("NA", "N/A", "-") else cells[1]
        self.out.chips.append(ChipRow(npu, by_name.get("Chip"), name, health, bus, phy, values))

    def _processes(self) -> dict[int, list[ProcessRow]]:
        if self.out.processes is None:
            self.out.processes = {}
        return self.out.processes

    def _process_header(self, cells: list[str]) -> None:
        self._processes()
        self.proc_cols = {c: i for i, c in enumerate(cells)}
        self.state = "procs"

    def _process_row(self, cells: list[str], line: str) -> None:
        cols = self.proc_cols
        if len(cells) != len(cols):
            raise ValueError(f"npu-smi info: {len(cells)} cells, header has {len(cols)}: {line!r}")
        ids = cells[0].split()
        pid = cells[cols["Process id"]]
        if len(ids) != 2 or not all(i.isdigit() for i in ids) or not pid.isdigit():
            raise ValueError(f"npu-smi info: expected 'NPU Chip | Process id | ...': {line!r}")
        mem_col = next((i for c, i in cols.items() if c.startswith("Process memory")), None)
        memory = number(cells[mem_col], "process memory") if mem_col is not None else None
        name = cells[cols["Process name"]] if "Process name" in cols else ""
        row = ProcessRow(int(ids[0]), int(ids[1]), int(pid), name, memory)
        self._processes().setdefault(row.npu, []).append(row)

    def result(self, text: str) -> Overview:
        if self.pending is not None:
            raise ValueError(f"npu-smi info: chip row without its second line: {self.pending[4]!r}")
        if not self.head_top and text.strip():
            first = next(ln for ln in text.splitlines() if ln.strip())
            raise ValueError(f"npu-smi info: no device table in the output; first line {first!r}")
        return self.out


def parse_overview(text: str) -> Overview:
    """The chips, versions and processes of a plain `npu-smi info` run."""
    parser = _OverviewParser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.result(text)


def parse_view(text: str, chip: int | None = None) -> dict[str, str]:
    """`key : value` pairs of one chip from a `npu-smi info -t <type>` run.

    Keeps the header block (NPU ID, Chip Count, card-level keys) and the block whose `Chip ID` is
    `chip` (0 when the layout has no chip ids); drops MCU/CPU blocks (`Chip Name` without
    `Chip ID`). A key seen twice in the kept blocks keeps its first value."""
    blocks: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
            continue
        if "does not support" in line:
            raise ViewUnsupported(line.strip())
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"unexpected line in npu-smi view: {line!r}")
        if key.strip():  # a blank key continues the previous value (Error Information)
            blocks[-1].append((key.strip(), value.strip()))
    wanted = str(chip if chip is not None else 0)
    keys = [dict(b) for b in blocks if b]
    chips = [b for b in keys if "Chip ID" in b]
    header = [b for b in keys if "Chip ID" not in b and "Chip Name" not in b]
    chosen = [b for b in chips if b["Chip ID"] == wanted]
    if chips and not chosen:
        ids = [b["Chip ID"] for b in chips]
        raise ValueError(f"npu-smi view: no block for chip {wanted} (chip ids {ids})")
    out: dict[str, str] = {}
    for block in [*header, *chosen]:
        for key, value in block.items():
            out.setdefault(key, value)
    return out


@dataclass
class ChipFacts:
    """What the views said about one chip, converted to units; None/empty: not reported."""

    vector: float | None = None
    cube: float | None = None
    ai_cpu: float | None = None
    ctrl_cpu: float | None = None
    overall: float | None = None
    hbm_bandwidth: float | None = None
    core_clock: float | None = None
    rated_clock: float | None = None
    memory_clock: float | None = None
    memory_temperature: float | None = None
    health: int | None = None
    error_code: float | None = None
    ecc_enabled: float | None = None
    ecc: dict[tuple[str, str], float] = field(default_factory=dict)
    retired: dict[str, float] = field(default_factory=dict)
    uuid: str = ""
    serial: str = ""
    firmware: str = ""
    driver: str = ""

    def fill(self, other: ChipFacts) -> None:
        """Take `other`'s values where this one has none (chip-level views win)."""
        for f in fields(self):
            if getattr(self, f.name) in (None, "", {}) and getattr(other, f.name) not in (None, ""):
                setattr(self, f.name, getattr(other, f.name))


def _ratio(view: dict[str, str], key: str) -> float | None:
    value = number(view[key], key) if key in view else None
    return None if value is None else value / 100.0


def _scaled(view: dict[str, str], key: str, scale: float) -> float | None:
    value = number(view[key], key) if key in view else None
    return None if value is None else value * scale


def _text(view: dict[str, str], key: str) -> str:
    value = view.get(key, "").strip()
    return "" if value.upper() in ("NA", "N/A", "-") else value


_ECC = {
    "HBM Single Bit Error Count": ("corrected", "volatile"),
    "HBM Double Bit Error Count": ("uncorrected", "volatile"),
    "HBM Single Bit Aggregate Total Err Cnt": ("corrected", "aggregate"),
    "HBM Double Bit Aggregate Total Err Cnt": ("uncorrected", "aggregate"),
}
_ISOLATED = {
    "HBM Single Bit Isolated Pages Count": "single_bit",
    "HBM Double Bit Isolated Pages Count": "double_bit",
}
_ON_OFF = {"true": 1.0, "enable": 1.0, "enabled": 1.0, "1": 1.0}
_ON_OFF |= {"false": 0.0, "disable": 0.0, "disabled": 0.0, "0": 0.0}


def view_facts(view: str, per_chip: bool, v: dict[str, str]) -> ChipFacts:
    """The values of one parsed `-t <view>` output, in base units (ratios 0-1, hertz)."""
    f = ChipFacts()
    if view == "usages":
        f.vector, f.cube = _ratio(v, "Aivector Usage Rate(%)"), _ratio(v, "Aicube Usage Rate(%)")
        f.ai_cpu, f.ctrl_cpu = _ratio(v, "Aicpu Usage Rate(%)"), _ratio(v, "Ctrlcpu Usage Rate(%)")
        f.overall = _ratio(v, "NPU Utilization(%)")
        f.hbm_bandwidth = _ratio(v, "HBM Bandwidth Usage Rate(%)")
    elif view == "common":
        f.core_clock = _scaled(v, "Aicore curFreq(MHZ)", MHZ)
        f.rated_clock = _scaled(v, "Aicore Freq(MHZ)", MHZ)
    elif view == "memory":
        f.memory_clock = _scaled(v, "HBM Clock Speed(MHz)", MHZ)
        f.memory_temperature = _scaled(v, "HBM Temperature(C)", 1.0)
    elif view == "health":
        if "Health Status" in v and _text(v, "Health Status"):
            f.health = health_level(v["Health Status"])
        if "Error Code" in v:  # NA: npu-smi has no error code for the chip
            codes = _text(v, "Error Code").split()
            f.error_code = _hex(codes[0]) if codes else 0.0
    elif view == "ecc":
        f.ecc = {k: n for key, k in _ECC.items() if (n := _scaled(v, key, 1.0)) is not None}
        pages = {k: _scaled(v, key, 1.0) for key, k in _ISOLATED.items()}
        f.retired = {k: n for k, n in pages.items() if n is not None}
    elif view == "ecc-enable":
        for key, value in v.items():
            if key.startswith("HBM") and key.endswith("ECC-Enable Status"):
                if value.strip().lower() not in _ON_OFF:
                    raise ValueError(f"npu-smi {key}: expected True/False, got {value!r}")
                f.ecc_enabled = _ON_OFF[value.strip().lower()]
    elif view == "board" and per_chip:
        f.uuid = "-".join(_text(v, "VDie ID").split())
        f.firmware = _text(v, "Firmware Version")
    elif view == "board":
        f.serial, f.driver = _text(v, "Serial Number"), _text(v, "Software Version")
        f.firmware = _text(v, "Firmware Version")
    return f


def _hex(code: str) -> float:
    try:
        return float(int(code, 16))
    except ValueError:
        raise ValueError(f"npu-smi Error Code: expected hex codes, got {code!r}") from None
