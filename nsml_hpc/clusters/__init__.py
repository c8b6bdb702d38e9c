"""Cluster profiles and what the front end learns about a cluster: the profiles file,
``cluster test``, GPUs and queue, host keys, whether it answers.
"""
