"""The user's code that travels with a session: which files (.nsmlignore/.gitignore), and
sending only what changed to a remote cluster.
"""
