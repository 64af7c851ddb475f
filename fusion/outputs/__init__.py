"""Where detections go: replay sinks (JSONL, results JSON, Foxglove MCAP, rerun) in `sinks`,
BEV and camera pictures and metric plots in `plots`."""
