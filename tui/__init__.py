"""The Textual TUI (issue 6). Nothing in the headless core imports this package."""
