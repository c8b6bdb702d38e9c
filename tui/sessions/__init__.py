"""The sessions screen: the live, filterable, sortable, virtual table of every session."""
