"""Settings: the config file, environment overrides, and where files live by default."""
