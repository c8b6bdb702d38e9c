"""What jobs write into their run directories, read as pure functions: metric and event
lines (byte offsets, complete lines only), GPU samples and idle detection.
"""
