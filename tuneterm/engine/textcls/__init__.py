"""Text classification (run.task = "text-classify"): data, Hugging Face models, the loop."""
