"""The nuScenes dataroot on disk: sensor files (`sensor_io`), the table schema (`tables`), the
CAN bus and GNSS/IMU files (`canbus`), the reader that builds frames (`reader`) and `validate`."""
