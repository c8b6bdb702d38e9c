"""``python -m nsml_hpc.job RUN_DIR``: the job wrapper (see :mod:`nsml_hpc.job.wrapper`)."""

import sys

from nsml_hpc.job.wrapper import main

sys.exit(main())
