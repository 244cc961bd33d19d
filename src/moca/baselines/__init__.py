"""Training-free baselines (OWOD-BIND, the AT-GDINO-SAM plug-in point) and the floors (centre prior,
all-foreground), written in the same prediction layout as `moca infer` (method.md "Baselines")."""

from moca.baselines.config import BaselineConfig, baseline_config
from moca.baselines.floors import all_foreground, centre_prior

__all__ = ["BaselineConfig", "all_foreground", "baseline_config", "centre_prior", "run_baseline"]


def run_baseline(*args, **kwargs) -> dict:  # noqa: ANN002, ANN003  (lazy: the registry pulls torch and models)
    from moca.baselines.run import run_baseline as run

    return run(*args, **kwargs)
