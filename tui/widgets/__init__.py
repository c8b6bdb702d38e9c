"""Widgets shared by several screens: the status line, metric plots, state styling."""
