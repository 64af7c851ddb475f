"""Immutable rigid transforms between named frames.

A `Transform` maps points expressed in `src` to the same points expressed in `dst`
(`p_dst = R @ p_src + t`). Composition checks that frames meet, so a missing hop
through the global frame is an error, not a silent mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.quaternion import matrix_to_quaternion, quaternion_to_matrix


class FrameMismatchError(ValueError):
    """Two transforms were composed whose frames do not meet."""


@dataclass(frozen=True, eq=False)
class Transform:
    """4x4 rigid transform `dst <- src`, float64, read-only."""

    matrix: NDArray[np.float64] = field(repr=False)
    src: str
    dst: str

    def __post_init__(self) -> None:
        m = np.array(self.matrix, dtype=np.float64)  # own copy: callers can't mutate us
        if m.shape != (4, 4):
            raise ValueError(f"transform {self.src}->{self.dst}: matrix must be 4x4, got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"transform {self.src}->{self.dst}: matrix has NaN or Inf")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    @classmethod
    def from_translation_quaternion(
        cls, translation: ArrayLike, rotation_wxyz: ArrayLike, *, src: str, dst: str
    ) -> Transform:
        """From a translation (3,) in m and a quaternion (w, x, y, z), as nuScenes stores them."""
        m = np.eye(4)
        m[:3, :3] = quaternion_to_matrix(rotation_wxyz)
        m[:3, 3] = np.asarray(translation, dtype=np.float64)
        return cls(m, src=src, dst=dst)

    @classmethod
    def from_rotation_translation(
        cls, rotation: ArrayLike, translation: ArrayLike, *, src: str, dst: str
    ) -> Transform:
        m = np.eye(4)
        m[:3, :3] = np.asarray(rotation, dtype=np.float64)
        m[:3, 3] = np.asarray(translation, dtype=np.float64)
        return cls(m, src=src, dst=dst)

    @classmethod
    def identity(cls, frame: str) -> Transform:
        return cls(np.eye(4), src=frame, dst=frame)

    @property
    def rotation(self) -> NDArray[np.float64]:
        return self.matrix[:3, :3]

    @property
    def translation(self) -> NDArray[np.float64]:
        return self.matrix[:3, 3]

    @property
    def quaternion(self) -> NDArray[np.float64]:
        """Rotation as (w, x, y, z) with w >= 0."""
        return matrix_to_quaternion(self.rotation)

    def inverse(self) -> Transform:
        """`src <- dst`, computed exactly for a rigid transform (R^T, -R^T t)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = -self.rotation.T @ self.translation
        return Transform(m, src=self.dst, dst=self.src)

    def __matmul__(self, other: Transform) -> Transform:
        """`(C <- B) @ (B <- A)` is `C <- A`; raises FrameMismatchError if the B's differ."""
        if not isinstance(other, Transform):
            return NotImplemented
        if other.dst != self.src:
            raise FrameMismatchError(
                f"cannot compose ({self.dst} <- {self.src}) @ ({other.dst} <- {other.src}): "
                f"frame {other.dst!r} does not meet {self.src!r}"
            )
        return Transform(self.matrix @ other.matrix, src=other.src, dst=self.dst)

    def apply(self, points: ArrayLike) -> NDArray[np.float64]:
        """Map (N, 3) points (m) in `src` to (N, 3) float64 points in `dst`."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got {p.shape}")
        return p @ self.rotation.T + self.translation

    def apply_vectors(self, vectors: ArrayLike) -> NDArray[np.float64]:
        """Rotate (N, 3) direction vectors (velocities) from `src` to `dst`: no translation."""
        v = np.asarray(vectors, dtype=np.float64)
        return v @ self.rotation.T

    def allclose(self, other: Transform, atol: float = 1e-9) -> bool:
        return (
            self.src == other.src
            and self.dst == other.dst
            and bool(np.allclose(self.matrix, other.matrix, atol=atol))
        )

    def __repr__(self) -> str:
        t = np.array2string(self.translation, precision=3)
        return f"Transform({self.dst} <- {self.src}, t={t}, q={np.round(self.quaternion, 4)})"
