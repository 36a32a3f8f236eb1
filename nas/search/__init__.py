"""The search: study config, Optuna plan, samplers, executors, results, selection, confirmation."""
