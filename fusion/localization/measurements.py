"""The inputs of the pose estimator, as time-stamped arrays: IMU samples, GNSS fixes, speeds.

Times are integer microseconds of the log's clock. Nothing here is checked: the estimator
rejects and counts bad samples one by one, so a log with a few bad messages still runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# sensor_msgs/NavSatStatus.status: -1 no fix, 0 fix, 1 SBAS, 2 GBAS (RTK and the like)
STATUS_NO_FIX = -1
STATUS_FIX = 0
STATUS_SBAS_FIX = 1
STATUS_GBAS_FIX = 2
# sensor_msgs/NavSatFix.position_covariance_type
COVARIANCE_UNKNOWN = 0


@dataclass(frozen=True, eq=False)
class ImuSamples:
    """Angular rate (N, 3) rad/s and specific force (N, 3) m/s^2 in the IMU frame (at rest the
    accelerometer reads +g up)."""

    timestamps_us: NDArray[np.int64]
    gyro: NDArray[np.float64]
    accel: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.timestamps_us)


@dataclass(frozen=True, eq=False)
class GnssFixes:
    """WGS84 fixes of the antenna: latitude, longitude (deg), altitude (m), position covariance
    (N, 3, 3) m^2 in ENU (the NavSatFix order), its type (N,) and the fix status (N,)."""

    timestamps_us: NDArray[np.int64]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    alt_m: NDArray[np.float64]
    covariance: NDArray[np.float64]
    covariance_type: NDArray[np.int64]
    status: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.timestamps_us)

    @staticmethod
    def empty() -> GnssFixes:
        z = np.zeros(0)
        zi = np.zeros(0, np.int64)
        return GnssFixes(zi, z, z, z, np.zeros((0, 3, 3)), zi, zi)


@dataclass(frozen=True, eq=False)
class SpeedSamples:
    """Forward speed of the ego frame (N,) m/s: wheel speed, CAN vehicle speed, odometry twist."""

    timestamps_us: NDArray[np.int64]
    speed: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.timestamps_us)
