"""Pure knowledge of Slurm: job states, time formats, and parsers for sacct/squeue output."""
