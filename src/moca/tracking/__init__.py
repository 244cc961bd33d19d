"""MLflow tracking for moca: runs (`runs`), the credential scrubber (`scrub`), the pyfunc model (`pyfunc`) and the
registry with champion promotion (`registry`). Import the submodules; this package stays light so the CLI starts
fast."""
