"""The cluster screen: GPUs per partition (total / allocated / idle) and the user's queue."""
