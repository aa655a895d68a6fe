"""Recovery text survives screenshots, second instances and damaged neighbours (issue 11, items 1-3)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

from app.recovery import RecoveryStore
from tests.helpers import run_cli

# A real second process that autosaves one buffer the way the editor does, then waits.
OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.recovery import RecoveryStore
    store = RecoveryStore(Path(sys.argv[1]))
    store.save("livebuffer", None, "text typed in the other window")
    print("SAVED", flush=True)
    time.sleep(600)
""")


def start_owner(folder):
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(folder)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "SAVED"
    return proc


def buffers(folder):
    return sorted(p.name for p in folder.rglob("*.json"))


def test_a_live_instances_autosaves_are_not_offered_and_a_dead_ones_are(tmp_path):
    folder = tmp_path / "recovery"
    owner = start_owner(folder)
    try:
        second = RecoveryStore(folder)
        assert second.pending() == [], "another running instance's buffer is not a crash leftover"
        assert buffers(folder) == ["livebuffer.json"]
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    found = RecoveryStore(folder).pending()
    assert [r.text for r in found] == ["text typed in the other window"]


def test_a_second_instance_does_not_offer_buffers_the_first_has_claimed(tmp_path):
    folder = tmp_path / "recovery"
    owner = start_owner(folder)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    first, second = RecoveryStore(folder), RecoveryStore(folder)
    assert len(first.pending()) == 1          # the user is being asked in the first window
    assert second.pending() == []             # the second window must not offer (or drop) it too
    first.forget(first.pending())
    assert buffers(folder) == []


def test_screenshot_keeps_recovery_text(tmp_path):
    home = tmp_path / "home"
    folder = home / "data" / "recovery"
    owner = start_owner(folder)  # a crashed session: its buffer is waiting for the user
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    folder.mkdir(parents=True, exist_ok=True)
    # and one written by an older version, untitled ("path": null), at the top of the folder
    (folder / "older.json").write_text(json.dumps({"path": None, "text": "keep me", "saved_at": 1.0, "pid": 1}))
    before = buffers(folder)
    r = run_cli("--screenshot", str(tmp_path / "shot.png"), "--panel", "editor",
                env={**os.environ, "LLAMADESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    assert buffers(folder) == before == ["livebuffer.json", "older.json"]


def test_malformed_recovery_files_are_skipped_and_the_good_ones_offered(gui, tmp_path):
    folder = gui.window.recovery.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list.json").write_text("[1]")
    (folder / "date.json").write_text(json.dumps({"path": None, "text": "a", "saved_at": "abc"}))
    (folder / "path.json").write_text(json.dumps({"path": 5, "text": "b", "saved_at": 1.0}))
    (folder / "text.json").write_text(json.dumps({"path": None, "text": None, "saved_at": 1.0}))
    (folder / "good.json").write_text(json.dumps({"path": None, "text": "valid text", "saved_at": 2.0}))
    restored = gui.window.offer_recovery(ask=lambda: True)
    assert [t.toPlainText() for t in restored] == ["valid text"]


def test_declining_removes_only_what_was_offered(gui):
    folder = gui.window.recovery.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.json").write_text(json.dumps({"path": None, "text": "old", "saved_at": 2.0}))
    assert gui.window.offer_recovery(ask=lambda: False) == []
    assert not (folder / "good.json").exists()  # the user saw it and said no


def test_doctor_has_a_recovery_row(tmp_path):
    r = run_cli("doctor", env={**os.environ, "LLAMADESK_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.split()[0] == "recovery"]
    assert len(rows) == 1 and str(tmp_path / "data" / "recovery") in rows[0]
    assert "0 unsaved buffer" in rows[0]
    # every row keeps the `key  value` layout: the value starts in one column
    cols = {len(line) - len(line[line.index("  "):].lstrip()) for line in r.stdout.splitlines() if line}
    assert len(cols) == 1
