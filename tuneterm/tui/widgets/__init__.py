"""Widgets of the tuneterm TUI."""
