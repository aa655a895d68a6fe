"""Smoke test of an installed (or extracted) LlamaDesk: run it as a user would, with no Python
environment of ours on the PATH. Used by tests/packaging/test_deb.py and by the release workflow.

    python packaging/smoke_test.py /path/to/llamadesk MODEL.gguf OUTDIR
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def clean_env(home: Path) -> dict:
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "SYSTEMROOT", "TEMP", "TMP")}
    path = "/usr/bin:/bin" if os.name != "nt" else os.environ.get("SYSTEMROOT", "C:\\Windows") + "\\System32"
    return {**keep, "PATH": path, "LLAMADESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}


def run(exe: str, *args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=timeout)


def smoke(exe: str, model: str, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = clean_env(out / "home")
    results = {}
    r = run(exe, "--version", env=env)
    results["version"] = (r.returncode, r.stdout.strip())
    r = run(exe, "doctor", env=env)
    results["doctor"] = (r.returncode, r.stdout)
    r = run(exe, "complete", "--model", model, "--format", "raw", "--max-tokens", "16", "--stats", "def add(a, b):", env=env)
    results["complete"] = (r.returncode, r.stdout, r.stderr[-2000:])
    r = run(exe, "humaneval", "--canonical", "--limit", "5", "--out", str(out / "he"), env=env)
    results["humaneval"] = (r.returncode, r.stdout, r.stderr[-2000:])
    shot = out / "shot.png"
    r = run(exe, "--screenshot", str(shot), env=env)
    results["screenshot"] = (r.returncode, shot.exists() and shot.stat().st_size, r.stderr[-2000:])
    return results


def check(results: dict) -> list[str]:
    problems = []
    if results["version"][0] != 0 or not results["version"][1].startswith("llamadesk "):
        problems.append(f"--version: {results['version']}")
    doctor = results["doctor"][1]
    if (results["doctor"][0] != 0 or "llama.cpp backend" not in doctor or "(frozen)" not in doctor
            or "decontam filter compiled" not in " ".join(doctor.split())):
        problems.append(f"doctor: {results['doctor']}")
    if results["complete"][0] != 0 or not results["complete"][1].strip():
        problems.append(f"complete: {results['complete']}")
    if results["humaneval"][0] != 0 or "pass@1 = 1.000 (5/5)" not in results["humaneval"][1]:
        problems.append(f"humaneval: {results['humaneval']}")
    if results["screenshot"][0] != 0 or not results["screenshot"][1]:
        problems.append(f"screenshot: {results['screenshot']}")
    return problems


if __name__ == "__main__":
    res = smoke(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
    bad = check(res)
    print(json.dumps({"ok": not bad, "problems": bad}, indent=1))
    sys.exit(1 if bad else 0)
