"""Pipeline steps: one function per step, each reading files and writing files plus a `manifest.json` into its own
folder (see `manifest.py`). Kubeflow components, the CLI, the Prefect flow and tests all call these.

    ingest -> validate -> mine_pairs -> train -> infer -> evaluate -> register_and_promote

Import the step modules directly (`from moca.steps.validate import validate`); this package stays light.
"""
