"""Run lifecycle: launch, stop, kill, resume, the queue, sweeps, and one view of a run."""
