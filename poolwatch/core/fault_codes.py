"""The 25 ModelArts fault isolation codes: what a rule may name in an `isolate` action and what
the controller accepts as a taint value (shared vocabulary, so both parts read one table).

Source: spec/statuses-and-events.md section 4 (Table 2-3 of seed 000, L682-L724); the same rows are
`FI-01`..`FI-25` in seed-alarms.csv. ModelArts taints the faulty node with the code; poolwatch's
controller does the same, so a rule can only isolate with a code that exists here, and the
controller refuses any other (the code becomes a taint value and a notice label).
"""

from __future__ import annotations

import re
from typing import NamedTuple

CODE_FORMAT = re.compile(r"A[0-9]{6}")  # "A" and six ASCII digits: A050101


class FaultCode(NamedTuple):
    code: str
    category: str
    subcategory: str
    description: str


FAULT_CODES: dict[str, FaultCode] = {
    c.code: c
    for c in (
        FaultCode("A050101", "GPU", "GPU memory", "GPU ECC error exists."),
        FaultCode("A050102", "GPU", "Other", "The nvidia-smi output contains ERR."),
        FaultCode(
            "A050103", "GPU", "Other", "The execution of nvidia-smi times out or does not exist."
        ),
        FaultCode("A050104", "GPU", "GPU memory", "ECC error occurred 64 times."),
        FaultCode("A050148", "GPU", "Other", "An infoROM alarm occurs."),
        FaultCode("A050109", "GPU", "Other", "Other GPU errors."),
        FaultCode("A050147", "IB", "Link", "The IB NIC is abnormal."),
        FaultCode("A050121", "NPU", "Other", "A driver exception is detected by NPU DCMI."),
        FaultCode("A050122", "NPU", "Other", "The NPU DCMI device is abnormal."),
        FaultCode("A050123", "NPU", "Link", "The NPU DCMI net is abnormal."),
        FaultCode("A050129", "NPU", "Other", "Other NPU errors."),
        FaultCode(
            "A050149", "NPU", "Link",
            "Check whether the network port of the hccn tool is intermittently disconnected.",
        ),
        FaultCode(
            "A050951", "NPU", "GPU memory (sic)",
            "The number of NPU ECCs reaches the maintenance threshold.",
        ),
        FaultCode("A050146", "Runtime", "Other", "The NTP is abnormal."),
        FaultCode("A050202", "Runtime", "Other", "The node is not ready."),
        FaultCode(
            "A050203", "Runtime", "Disconnection",
            "The number of normal AI cards does not match the actual capacity.",
        ),
        FaultCode("A050206", "Runtime", "Other", "The Kubelet hard disk is read-only."),
        FaultCode("A050801", "Node management", "Node O&M", "Resource is reserved."),
        FaultCode("A050802", "Node management", "Node O&M", "An unknown error occurs."),
        FaultCode("A200001", "Node management", "Driver upgrade", "The GPU is being upgraded."),
        FaultCode("A200002", "Node management", "Driver upgrade", "The NPU is being upgraded."),
        FaultCode(
            "A200008", "Node management", "Node admission", "The admission is being examined."
        ),
        FaultCode(
            "A050933", "Node management", "Fault tolerance Failover",
            "The Failover service on the tainted node will be migrated.",
        ),
        FaultCode(
            "A050931", "Training toolkit", "Pre-check container",
            "A GPU error is detected in the pre-check container.",
        ),
        FaultCode(
            "A050932", "Training toolkit", "Pre-check container",
            "An IB error is detected in the pre-check container.",
        ),
    )
}  # fmt: skip


def describe(code: str) -> str:
    """`fault code A050104 (ECC error occurred 64 times)`: the code with what it means, the words
    every reason and message that names a fault code uses (a code not in the table: the code)."""
    known = FAULT_CODES.get(code)
    meaning = known.description.rstrip(".") if known else ""
    return f"fault code {code} ({meaning})" if meaning else f"fault code {code}"
