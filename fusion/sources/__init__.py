"""Log sources (nuScenes dataroot, Foxglove MCAP, ROS 2 and ROS 1 bags) behind one interface."""
