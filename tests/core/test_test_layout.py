from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    """pytest's default import mode puts each test folder on sys.path, so two test files with one name collide."""
    tests = Path(__file__).resolve().parents[1]
    names = Counter(p.name for p in tests.rglob("*.py") if p.name not in {"conftest.py", "__init__.py"})
    assert not [name for name, count in names.items() if count > 1]
