"""``python -m nsml_hpc`` is ``nsml-hpc``."""

import sys

from nsml_hpc.cli import main

sys.exit(main())
