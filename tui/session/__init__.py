"""The session screen: spec, hyperparameters, jobs and events, live plots, logs, snapshots."""
