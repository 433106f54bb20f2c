"""The fine-tuning engine: runs in its own process (`python -m tuneterm.engine RUN_DIR`).

Nothing here is imported by the CLI or TUI at start-up: torch loads only inside the engine
process and in the functions that validate model names.
"""
