"""Files on disk: sensor files (`sensor_io`), the nuScenes table schema (`tables`), the CAN bus
and GNSS/IMU files (`canbus`), the rig file format (`rig_file`), the reader that builds frames
(`reader`) and `validate`."""
