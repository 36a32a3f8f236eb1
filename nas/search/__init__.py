"""The search: study config, objective modes, samplers, the Optuna plan, the trial,
executors, results, selection, confirmation, and the pipeline that runs them in order."""
