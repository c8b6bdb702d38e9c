"""Datasets pushed to a cluster once and named at submit (``nsml-hpc dataset ...``,
``submit --dataset NAME[:VERSION] [--stage]``): :mod:`nsml_hpc.datasets.store`."""
