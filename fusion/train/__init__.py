"""Training: the dataset of frames and targets (`dataset`) and the training loop (`loop`)."""
