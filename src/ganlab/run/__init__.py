"""Run plumbing, the same for every family: the console summary, TensorBoard's HPARAMS tab, loggers, provenance,
the run-dir lock, checkpoint IO and resume checks, DDP, the CPU allocator."""
