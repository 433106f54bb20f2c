"""The Textual app: app, screens/, widgets/ (the only package that imports textual)."""
