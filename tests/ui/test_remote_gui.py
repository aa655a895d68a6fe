"""The GUI with a server as its source (issue 13, item 7): connect, list the models, stream an
answer, survive the server being killed; the key never lands in settings; "Serve"."""
from __future__ import annotations

import httpx

from tests.servers import procs
from tests.ui.conftest import until


def test_gui_connects_streams_and_survives_the_server_killed(gui, smollm, tmp_path):
    server = procs.start_llama_cpp_server(smollm, tmp_path)
    try:
        w = gui.window
        entry = {"url": server.url + "/v1", "model": "", "key_env": "", "ca_bundle": ""}
        w.settings.servers = [entry]
        w.settings.source = entry["url"]
        w.model_bar.refresh_sources()
        assert not w.model_bar.model.isVisibleTo(w.model_bar)  # local controls hidden for a server
        editor = w.current_editor() or w.tabs.new_tab()
        editor.setPlainText("x = 1\n")

        async def go():
            assert await w.model_bar.connect_server(entry)
            assert w.engine.kind == "remote" and w.engine.models
            assert w.engine.api_model in w.model_bar.state.text()
            w.settings.max_tokens = 16
            w.assistant.prompt.setPlainText("Say hello.")
            w.assistant.ask()
            await until(lambda: w.assistant.generation is not None and w.assistant.generation.done, 300)
            first = w.assistant.answer
            # now a long answer, and the server dies while it streams
            w.settings.max_tokens = 2000
            w.assistant.prompt.setPlainText("Write a very long story.")
            w.assistant.ask()
            await until(lambda: len(w.assistant.answer or "") > 0 and w.assistant.generation is not None
                        and len(w.assistant.generation.text) > 5, 120)
            server.kill()
            await until(lambda: "failed" in w.assistant.view.toPlainText(), 120)
            return first

        first = gui.run(go())
        assert first.strip()
        assert editor.toPlainText() == "x = 1\n"  # the editor keeps its text
        assert w.model_bar.restart_btn.isVisibleTo(w.model_bar)
        assert w.model_bar.restart_btn.text() == "Reconnect"
    finally:
        server.stop()


def test_server_dialog_lists_models_and_keeps_no_key_in_plain_text(gui, smollm, tmp_path):
    from app.ui.server_dialog import ServerDialog

    server = procs.start_llama_cpp_server(smollm, tmp_path)
    try:
        dialog = ServerDialog(gui.window)
        dialog.url.setText(server.url)
        assert gui.run(dialog.test())
        assert dialog.model.count() >= 1 and "Connected in" in dialog.result.text()
        dialog.key.setText("sk-gui-secret-99")
        dialog._save()  # this machine has no keyring: the dialog says so and keeps nothing
        assert dialog.entry is None and "no keyring" in dialog.result.text()
        dialog.key_env.setText("MY_SERVER_KEY")
        dialog._save()
        assert dialog.entry["key_env"] == "MY_SERVER_KEY"
        gui.window.model_bar._server_added(dialog.entry)
        gui.window.settings.save()
        from app import paths

        saved = (paths.config_dir() / "settings.json").read_text()
        assert server.url in saved and "sk-gui-secret-99" not in saved
    finally:
        server.stop()


SERVE_DRIVER = """
import asyncio, json, os, sys, tempfile
import httpx
from app.recovery import RecoveryStore
from app.settings import Settings
from app.ui.app import build
app, loop, window = build(Settings(autosave_s=0.2), RecoveryStore(tempfile.mkdtemp()))
window.show()
async def go():
    assert await window.model_bar.load(sys.argv[1])
    url = await window.model_bar.toggle_serve(port=0)
    shown = window.model_bar.state.text()
    async with httpx.AsyncClient(timeout=120) as http:
        r = await http.post(url + "/completions", json={"prompt": "def f():", "max_tokens": 8, "temperature": 0})
    await window.model_bar.unload()   # serving ends with the model it served
    after = window.model_bar.state.text()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await http.get(url + "/models")
        refused = False
    except httpx.ConnectError:
        refused = True
    await window.engine.close()
    return {"url": url, "shown": shown, "status": r.status_code, "text": r.json()["choices"][0]["text"],
            "after": after, "refused": refused, "button": window.model_bar.serve_btn.text()}
print(json.dumps(loop.run_until_complete(asyncio.wait_for(go(), 300))), flush=True)
os._exit(0)  # the result is out; Qt's teardown of qasync's executor threads is not under test
"""


def test_serve_the_loaded_model(smollm, tmp_path):
    # In its own process: the window, its qasync loop and the server thread, as the app runs them.
    import json
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", SERVE_DRIVER, str(smollm)], capture_output=True, text=True,
                       timeout=400, env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                         "LLAMADESK_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["url"].startswith("http://127.0.0.1:") and out["url"] in out["shown"]
    assert out["status"] == 200 and out["text"]
    # unloading the model stops serving it, and says so (it said "Serving … at URL" still)
    assert out["refused"] and "serving stopped" in out["after"] and out["button"] == "Serve"
