"""pymavlink set-up for the simulator: MAVLink 2 with PX4's development dialect.

pymavlink picks the protocol version from the MAVLINK20 environment variable at import time, so every
simulator module imports the dialect from here rather than from pymavlink directly.
"""

from __future__ import annotations

import os
import struct

os.environ.setdefault("MAVLINK20", "1")

from pymavlink.dialects.v20 import development as mavlink

__all__ = ["decode_param_value", "encode_param_value", "mavlink"]

INT32 = mavlink.MAV_PARAM_TYPE_INT32
UINT32 = mavlink.MAV_PARAM_TYPE_UINT32


def encode_param_value(value: float, ptype: int) -> float:
    """PX4 sends integer parameters bytewise in the float field (PARAM_ENCODE_BYTEWISE)."""
    if ptype == INT32:
        return float(struct.unpack("<f", struct.pack("<i", int(value)))[0])
    if ptype == UINT32:
        return float(struct.unpack("<f", struct.pack("<I", int(value) & 0xFFFFFFFF))[0])
    return float(value)


def decode_param_value(raw: float, ptype: int) -> float:
    """Inverse of :func:`encode_param_value` for values a client sends in PARAM_SET."""
    if ptype == INT32:
        return float(struct.unpack("<i", struct.pack("<f", raw))[0])
    if ptype == UINT32:
        return float(struct.unpack("<I", struct.pack("<f", raw))[0])
    return float(raw)
