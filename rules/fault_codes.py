"""The fault isolation codes a rule may name: the shared table in `poolwatch.fault_codes`."""

from poolwatch.core.fault_codes import FAULT_CODES, FaultCode

__all__ = ["FAULT_CODES", "FaultCode"]
