"""nsml-hpc job templates (Jinja), shipped inside the package."""
