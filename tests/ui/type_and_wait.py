"""Driver for the recovery test: the real app window, unsaved text typed in, then wait for the
autosave to reach the disk and say so. The test kills this process with SIGKILL."""
import asyncio
import sys

from PySide6.QtTest import QTest

from app.settings import Settings
from app.ui.app import build


def main() -> None:
    text = sys.stdin.readline().rstrip("\n").replace("\\n", "\n").replace("\\t", "\t")
    app, loop, window = build(Settings(autosave_s=0.2))
    window.show()
    tab = window.tabs.new_tab()
    tab.setFocus()
    tab.insertPlainText(text)  # like typing or pasting: the document changes, nothing is saved

    async def wait_for_autosave():
        folder = window.recovery.folder
        while True:
            await asyncio.sleep(0.05)
            for f in folder.rglob("*.json") if folder.exists() else []:
                import json
                if json.loads(f.read_text(encoding="utf-8"))["text"] == text:
                    print("AUTOSAVED", flush=True)
                    await asyncio.sleep(3600)

    with loop:
        loop.run_until_complete(wait_for_autosave())


if __name__ == "__main__":
    main()
