"""Everything that runs inside the Slurm job: the in-job API behind ``import nsml_hpc``
(report, save, load, session) and the job wrapper (``python -m nsml_hpc.job RUN_DIR``).

Standard library only: these modules are copied into every run directory and imported by
every training process (tests/pure/test_headless.py checks it).
"""
