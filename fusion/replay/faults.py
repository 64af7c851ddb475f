"""Seeded message faults for `fusion replay`: drops, corrupted bytes, delays."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.errors import FusionError
from fusion.sources.base import LogMessage


@dataclass(frozen=True)
class Faults:
    """Seeded message faults: each message is dropped with probability `drop`, else corrupted
    (bytes flipped and truncated) with probability `corrupt`, and delayed by a uniform
    [0, `delay_ms`] ms."""

    drop: float = 0.0
    corrupt: float = 0.0
    delay_ms: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        """`drop=P,corrupt=P,delay_ms=D,seed=K` (any subset)."""
        if not text:
            return cls()
        values: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, val = item.strip().partition("=")
            if not sep or key not in {f.name for f in dataclasses.fields(cls)}:
                raise FusionError(
                    f"--faults wants drop=P,corrupt=P,delay_ms=D,seed=K, got {item.strip()!r}"
                )
            try:
                values[key] = int(val) if key == "seed" else float(val)
            except ValueError as exc:
                raise FusionError(f"--faults {key} must be a number, got {val!r}") from exc
        faults = cls(**values)
        for p in ("drop", "corrupt"):
            if not 0.0 <= getattr(faults, p) <= 1.0:
                raise FusionError(f"--faults {p} must be a probability in [0, 1]")
        if not (0.0 <= faults.delay_ms < 60_000.0 and math.isfinite(faults.delay_ms)):
            raise FusionError("--faults delay_ms must be in [0, 60000)")
        return faults

    @property
    def any(self) -> bool:
        return self.drop > 0 or self.corrupt > 0 or self.delay_ms > 0


class FaultInjector:
    """Applies `Faults` to messages, deterministically for a seed."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = np.random.default_rng(faults.seed)
        self.dropped = 0
        self.corrupted = 0
        self.corrupted_by: dict[str, int] = {}  # per channel
        self.delayed = 0

    def apply(self, msg: LogMessage) -> tuple[LogMessage | None, int]:
        """(the message, possibly corrupted, or None when dropped; its extra delay in us)."""
        f = self.faults
        if not f.any:
            return msg, 0
        # one draw of each kind per message, so the fault pattern does not depend on outcomes
        u_drop, u_corrupt, u_delay = self.rng.random(3)
        if u_drop < f.drop:
            self.dropped += 1
            return None, 0
        if u_corrupt < f.corrupt:
            self.corrupted += 1
            self.corrupted_by[msg.channel] = self.corrupted_by.get(msg.channel, 0) + 1
            msg = msg.with_raw(corrupt_bytes(msg.raw, self.rng))
        delay = int(u_delay * f.delay_ms * 1000)
        if delay > 0:
            self.delayed += 1
        return msg, delay


def corrupt_bytes(raw: bytes, rng: np.random.Generator) -> bytes:
    """Flip the first bytes (every format's header or first record) and cut the message at an
    odd length (no whole number of 2-, 4- or 20-byte records)."""
    if len(raw) < 4:
        return b"\x00"
    out = bytearray(raw[: max(3, int(len(raw) * rng.uniform(0.2, 0.8)))])
    if len(out) % 2 == 0:
        out = out[:-1]
    for i in range(min(8, len(out))):
        out[i] ^= 0xFF
    return bytes(out)
