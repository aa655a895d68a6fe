import sys
from pathlib import Path

# packaging/smoke_test.py is shared with the release workflow; import it under a distinct name
ROOT = Path(__file__).resolve().parents[2]
import importlib.util

_spec = importlib.util.spec_from_file_location("packaging_smoke", ROOT / "packaging" / "smoke_test.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
sys.modules["packaging_smoke"] = _mod
