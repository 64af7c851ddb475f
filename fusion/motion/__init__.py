"""Ego motion over time, below the data: the one pose interpolator (`poses`), sweep motion
compensation (`sweeps`). The GNSS/IMU estimator, `fusion.localization`, is in this layer too."""
