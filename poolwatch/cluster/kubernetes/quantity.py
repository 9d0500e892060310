"""Kubernetes resource quantities ("500m", "16Gi", "1k", "1e3") as plain numbers in base units.

The grammar is apimachinery's `resource.Quantity` (k8s.io/apimachinery/pkg/api/resource/
quantity.go): a signed decimal number, then one suffix: a binary SI suffix (Ki Mi Gi Ti Pi Ei,
powers of 1024), a decimal SI suffix (n u m "" k M G T P E, powers of 1000) or a decimal exponent
(e3, E-2). No spaces, no other units. The API server writes quantities in that form, but objects
built by hand (a CRD field is only `x-kubernetes-int-or-string`) and YAML numbers arrive as JSON
numbers too (`max: {cpu: 40}` in an ElasticQuotaTree), so numbers are accepted as they are.

Floats, not apimachinery's exact decimals: poolwatch only adds quantities up and compares them
with thresholds, and a float keeps 15 significant digits, far more than any cluster figure needs.
"""

from __future__ import annotations

import math
import re

_SUFFIX = {
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
    "Ei": 1024.0**6,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
# the suffix alternatives come first, so "1E" is exa and only "1E3" falls back to the exponent
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?\d+))?"
)


class QuantityError(ValueError):
    """Not a Kubernetes quantity; the message quotes what was given."""


def parse_quantity(value: object) -> float:
    """A quantity in base units: "500m" -> 0.5 (cores), "16Gi" -> 17179869184.0 (bytes).

    Negative quantities parse (the grammar allows them); whether one makes sense is the caller's
    call. Raises QuantityError for anything else: garbage, empty, a bool, NaN or infinity.
    """
    if isinstance(value, bool):  # a bool is an int to Python, never a quantity to Kubernetes
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        m = _QUANTITY.fullmatch(value)
        if m is None:
            raise QuantityError(
                f"not a quantity: {value[:64]!r} (expected a number with an optional suffix "
                "Ki Mi Gi Ti Pi Ei n u m k M G T P E or an exponent e<N>, e.g. 500m, 16Gi, 1k)"
            )
        number = float(m["number"])
        if m["exponent"] is not None:
            exponent = int(m["exponent"])
            if abs(exponent) > 300:  # 10.0**400 overflows; no real quantity comes near
                raise QuantityError(f"quantity out of range: {value[:64]!r}")
            number *= 10.0**exponent
        else:
            number *= _SUFFIX[m["suffix"] or ""]
    else:
        raise QuantityError(f"not a quantity: {type(value).__name__} {str(value)[:64]!r}")
    if not math.isfinite(number):
        raise QuantityError(f"not a finite quantity: {str(value)[:64]!r}")
    return number
