"""Camera + LIDAR + radar + GPS/IMU sensor fusion for 3D object detection."""

__version__ = "0.1.0"
