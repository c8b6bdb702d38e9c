"""From a session spec to a job in Slurm's queue: render the sbatch script, snapshot and
upload the code, build the run directory, place the job, submit it.
"""
