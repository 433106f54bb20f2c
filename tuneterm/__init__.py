"""tuneterm: manage PyTorch fine-tuning runs from the terminal."""

__version__ = "0.1.0"
