"""Comparing sessions: compare tables, leaderboards, metric curves, key metrics."""
