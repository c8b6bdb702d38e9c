"""What users do with and see of sessions: list (ps), show, stop, remove, logs, memo, diff."""
