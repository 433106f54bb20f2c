"""Integrations of the tuneterm API with training frameworks, each imported only by a script
that uses it: `hf` (a `transformers.TrainerCallback`) and `lightning` (a Logger and a Callback).
The core never imports them, nor the frameworks."""
