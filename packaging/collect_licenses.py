"""Copy the licences that must ship with the app into one folder: LlamaDesk's own (MIT), Qt /
PySide6 (LGPL-3.0), llama.cpp / llama-cpp-python (MIT) and every other bundled distribution's."""
import shutil
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = """LlamaDesk bundles third-party software. Their licences follow, one file per package.

- Qt for Python (PySide6, shiboken6) and the Qt libraries: GNU LGPL v3. The Qt libraries are
  shipped as separate shared libraries in the app folder and may be replaced by the user;
  sources: https://code.qt.io and https://download.qt.io/official_releases/QtForPython/
- llama.cpp and llama-cpp-python: MIT licence (https://github.com/ggml-org/llama.cpp,
  https://github.com/abetlen/llama-cpp-python).
- Models downloaded with LlamaDesk carry their own licences (the Phind-CodeLlama and Code Llama
  builds: Llama 2 Community License), shown in the Models panel before download.
"""


def main(out: str) -> int:
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "LICENSE", dest / "LlamaDesk-LICENSE.txt")
    # PySide6's wheels carry no licence files: ship the LGPL (and the GPL it refers to) ourselves.
    for f in (ROOT / "packaging" / "licenses").glob("*.txt"):
        shutil.copy(f, dest / f.name)
    (dest / "README.txt").write_text(NOTICE)
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        files = [f for f in (dist.files or []) if f.name.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE"))
                 or "licenses/" in str(f).lower()]
        for f in files:
            src = Path(dist.locate_file(f))
            if src.is_file():
                shutil.copy(src, dest / f"{name}-{src.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
