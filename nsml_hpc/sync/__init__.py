"""Slurm and the run directories into the catalog: ONE query per cluster per sync, and an
incremental scrape of what jobs wrote.
"""
