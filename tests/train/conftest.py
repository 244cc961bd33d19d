import sys
from pathlib import Path

# The stand-ins module sits beside the tests; subprocess scripts add the same folder themselves.
sys.path.insert(0, str(Path(__file__).parent))
