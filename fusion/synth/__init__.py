"""Synthetic nuScenes-format world: a moving 3D city sensed by the nuScenes rig (LIDAR_TOP,
six cameras, five radars, GPS/IMU), written in the exact nuScenes schema (`fusion generate`)."""
