"""Snapshots in the front end: list, pin, pull, delete, fork from one, retention and gc."""
