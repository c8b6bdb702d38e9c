"""Package discovery for the wheel (metadata lives in pyproject.toml).

Every package under ``nsml_hpc/`` is found automatically; the design card's top-level
``tui/`` and ``sbatch_templates/`` ship inside it as ``nsml_hpc.tui`` and
``nsml_hpc.sbatch_templates``. No hand-kept list, so a new subpackage cannot be left out of
the wheel (tests/pure/test_packaging.py checks the built wheel against the source tree).
"""

from setuptools import find_packages, setup

CORE = find_packages(include=["nsml_hpc", "nsml_hpc.*"])
TUI = ["nsml_hpc." + name for name in find_packages(include=["tui", "tui.*"])]

setup(
    packages=[*CORE, *TUI, "nsml_hpc.sbatch_templates"],
    package_dir={"nsml_hpc.tui": "tui", "nsml_hpc.sbatch_templates": "sbatch_templates"},
    package_data={
        "nsml_hpc": ["py.typed"],
        "nsml_hpc.sbatch_templates": ["*.j2"],
        # the catalog's alembic environment: revisions (not a package), template, ini
        "nsml_hpc.catalog.migrations": ["versions/*.py", "script.py.mako", "alembic.ini"],
        **{name: ["*.tcss"] for name in TUI},
    },
)
