"""Offline evaluation: run detectors over a split and score them with the nuScenes devkit."""
