"""Network outputs to boxes: decoding (`decode`) and detections to devkit results in the global
frame (`results`)."""
