"""Screens of the tuneterm TUI."""
