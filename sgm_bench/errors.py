"""The suite's errors: each message says what went wrong and what to do."""


class SgmBenchError(Exception):
    """Base class: a clear, user-facing failure (the CLI prints it without a traceback)."""


class ConfigError(SgmBenchError, ValueError):
    """A bad configuration value, unknown name or inapplicable combination."""


class DataMissingError(SgmBenchError, FileNotFoundError):
    """A dataset or weights file is not where the configuration says."""


class CheckpointError(SgmBenchError):
    """A checkpoint is corrupt or belongs to another configuration."""


class NonFiniteLossError(SgmBenchError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class SolverError(SgmBenchError, RuntimeError):
    """An ODE solve could not finish (step size underflow, a non-finite state): its cell is labelled, not blank."""


class DivergedError(SgmBenchError, FloatingPointError):
    """Sampling gave non-finite samples (a diverged model or setting); they are kept for inspection."""


class ProcessFailedError(SgmBenchError, RuntimeError):
    """One of a data-parallel run's processes failed (its own error named); the others were stopped."""
