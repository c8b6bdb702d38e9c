"""Modal dialogs: confirm, memo, fork form, key help."""
