"""One click on "Download recommended" starts one download, however often the list was
refreshed (issue 11, item 15)."""


def test_one_click_one_download_after_several_refreshes(gui):
    w = gui.window
    started = []
    w.start_download = started.append  # the window's entry point for downloads
    gui.run(w.fill_from_jobs())  # the scan and the advice the bar shows
    for _ in range(3):
        w.model_bar.refresh_models()  # no models in the test home: the recommendation is offered
    assert w.model_bar.download_btn.isVisible()
    w.model_bar.download_btn.click()
    assert len(started) == 1 and started[0]
