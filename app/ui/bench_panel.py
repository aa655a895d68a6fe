"""HumanEval panel: run the self-test on the loaded model, watch it, compare with the papers."""
from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QListWidget, QProgressBar,
                               QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem,
                               QTextBrowser, QVBoxLayout, QWidget)

from app import paths
from app.bench import humaneval as he
from app.bench import references
from app.bench.run_folder import SETTINGS, RunFolder, RunFolderError
from app.bench.runner import HumanEvalRun, check_same_model, model_identity, resolve_protocol, source_label
from app.bench.sandbox import Sandbox
from app.plain_words import plain
from app.ui.bench_chart import BenchChart, Row, wilson
from app.ui.jobs import JobRefused


NO_MODEL = "Load a model first."
FIRST_HINT = "Load a model, then Start. The canonical solutions pass 164/164."
CHART_REFERENCES = {"Phind-CodeLlama-34B-v2", "Phind-CodeLlama-34B-Python-v1", "Phind-CodeLlama-34B-v1",
                    "GPT-4", "Code Llama - Python 34B", "Code Llama 34B", "GPT-3.5",
                    "Code Llama - Instruct 13B", "Code Llama - Instruct 7B"}


def past_runs() -> list[tuple[Path, dict]]:
    out = []
    base = paths.results_dir()
    for summary in sorted(base.glob("*/summary.json"), reverse=True) if base.is_dir() else []:
        try:
            out.append((summary.parent, json.loads(summary.read_text())))
        except (OSError, ValueError):
            continue
    return out


class BenchPanel(QWidget):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.run: HumanEvalRun | None = None
        self.rows: dict[tuple[str, int], int] = {}
        self.problems: dict[str, dict] = {}   # filled once by the window's job (off the GUI thread)
        self.protocol = QComboBox()
        self.protocol.addItems(["auto", "phind", "codex", "instruct"])
        self.limit = QSpinBox(minimum=1, maximum=164, value=164)
        self.samples = QSpinBox(minimum=1, maximum=200, value=1)
        self.temperature = QDoubleSpinBox(minimum=-0.1, maximum=2.0, singleStep=0.1, value=-0.1,
                                          specialValueText="protocol's")
        form = QFormLayout()
        form.addRow("Protocol", self.protocol)
        form.addRow("Tasks (first N)", self.limit)
        form.addRow("Samples per task", self.samples)
        form.addRow("Temperature", self.temperature)
        self.exclude = QCheckBox("Exclude contaminated tasks")
        self.exclude.setToolTip("Score only the tasks that the newest decontamination report found clean")
        form.addRow("", self.exclude)
        self.start_btn, self.stop_btn = QPushButton("Start"), QPushButton("Stop")
        self.resume_btn, self.export_btn = QPushButton("Resume…"), QPushButton("Export…")
        self.stop_btn.setEnabled(False)
        self.start_btn.clicked.connect(lambda: self.start())
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn.clicked.connect(self._resume)
        self.export_btn.clicked.connect(self._export)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.stop_btn, self.resume_btn, self.export_btn):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.hide()   # shown while a run goes (an empty bar reads as something stuck)
        self.status = QLabel(FIRST_HINT)
        self.status.setWordWrap(True)
        self.sandbox_note = QLabel("")
        self.sandbox_note.setWordWrap(True)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Task", "Verdict", "Time (s)", "Tokens", "Error"])
        # beside the details the table is narrow: the short columns take what they need, the
        # error gets the rest (with fixed widths "Error" was cut to "Erro")
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.detail = QTextBrowser()
        self.detail.setPlaceholderText("Select a task to see its prompt and the model's completion.")
        self.chart = BenchChart()
        self.chart.setMinimumHeight(220)   # with the tables above it the panel fits 1280x800
        self.past = QListWidget()
        self.past.itemSelectionChanged.connect(self._draw_chart)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addLayout(form)
        ll.addLayout(buttons)
        ll.addWidget(self.progress)
        ll.addWidget(self.status)
        ll.addWidget(self.sandbox_note)
        ll.addWidget(QLabel("Past runs (select to compare):"))
        ll.addWidget(self.past)
        # the tasks beside the selected task's details, the chart below both: stacked three high
        # the panel made the window taller than 800 px
        tasks = QSplitter()
        tasks.addWidget(self.table)
        tasks.addWidget(self.detail)
        tasks.setSizes([360, 360])
        right = QSplitter(Qt.Vertical)
        right.addWidget(tasks)
        right.addWidget(self.chart)
        right.setSizes([160, 360])
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        QVBoxLayout(self).addWidget(split)
        self.current_summary: dict | None = None
        self.refresh_past()

    # --- run ---------------------------------------------------------------------------------
    def start(self, out_dir: Path | None = None, saved: dict | None = None) -> None:
        """A new run from the form, or (with `saved`, a run's run.json) the resume of that run."""
        engine = self.window.engine
        if engine.info is None:
            self.status.setText(NO_MODEL)
            return
        if self.run is not None:
            return
        try:
            self.window.jobs.start("selftest", "humaneval", f"HumanEval on {model_label(engine.info)}",
                                   lambda job: self._run(out_dir, saved), on_cancel=self.stop)
        except JobRefused as exc:
            self.status.setText(str(exc))

    def model_available(self) -> None:
        """A hint to load a model is not true any more: say what Start will do."""
        info = self.window.engine.info
        if self.run is None and info is not None and self.status.text() in (NO_MODEL, FIRST_HINT):
            self.status.setText(f"Start runs the self-test on {model_label(info)}. "
                                f"The canonical solutions pass 164/164.")

    def _new_settings(self) -> dict:
        info = self.window.engine.info
        temp = self.temperature.value()
        proto = self.protocol.currentText()
        if info.remote is not None:  # a server: its URL (no user info), nothing on this disk to compare
            from app.engine.remote import public_url

            where = {"engine": public_url(info.path)}
        else:
            where = {"model": str(Path(info.path).resolve()), "model_file": model_identity(info.path)}
        return {**SETTINGS, **where,
                "protocol": None if proto == "auto" else proto, "limit": self.limit.value(),
                "samples": self.samples.value(), "temperature": None if temp < 0 else temp,
                "ctx": info.n_ctx, "exclude_contaminated": self._report()}

    def _report(self) -> str | None:
        if not self.exclude.isChecked():
            return None
        report = latest_decontam_report()
        if report is None:
            raise RunFolderError("no decontamination report yet: run the check in the Decontamination panel")
        return str(report)

    async def _run(self, out_dir, saved) -> None:
        engine = self.window.engine
        remote = engine.info.remote is not None
        name = f"{engine.info.name} {model_label(engine.info)}"
        stem = source_label(engine.info.path, remote)
        out = out_dir or paths.results_dir() / f"humaneval-{time.strftime('%Y%m%d-%H%M%S')}-{stem}"
        self._set_running(True)
        sandbox, reloaded = None, False
        try:
            if saved is not None and bool(saved.get("engine")) != remote:
                raise RunFolderError("this run used " + ("a model file on this computer" if remote else
                                     f"the server {saved['engine']}") + "; load that to resume it")
            if saved is not None and not remote:  # a resume runs with the run's own settings and model file
                self.status.setText("Checking that the loaded model is the run's model file…")
                await asyncio.to_thread(check_same_model, saved, engine.info.path)
            if not remote:  # the count of sequences decoded together, measured once per model
                reloaded = await self._use_measured_parallel(engine)
            engine = self.window.engine
            parallel = max(1, engine.capabilities.parallel_slots)
            settings = saved if saved is not None else self._new_settings()
            proto = resolve_protocol(settings, name)
            problems = await asyncio.to_thread(  # a file read: off the GUI thread
                he.load_problems, settings.get("problems"),
                settings["tasks"].split(",") if settings.get("tasks") else None, settings.get("limit"))
            self.problems.update({p["task_id"]: p for p in problems})
            note = {}
            if settings.get("exclude_contaminated"):  # only the tasks the report found clean
                from app.bench.decontam import clean_task_ids

                clean = set(clean_task_ids(settings["exclude_contaminated"]))
                note = {"excluded_contaminated": [p["task_id"] for p in problems if p["task_id"] not in clean],
                        "decontam_report": settings["exclude_contaminated"]}
                problems = [p for p in problems if p["task_id"] in clean]
            self.table.setRowCount(0)
            self.rows.clear()
            self.progress.setMaximum(len(problems) * (settings.get("samples") or 1))
            self.progress.setValue(0)
            sandbox = Sandbox(timeout=settings.get("timeout") or 5.0)
            await sandbox.start()
            limits = sandbox.limitations()
            self.sandbox_note.setText("Sandbox: " + ("; ".join(limits) if limits else
                                                     "own process, temp folder, limits, Landlock; "
                                                     "leftover processes killed")
                                      + f" · {parallel} generation(s) at once"
                                      + (" (the server's slots)" if remote else
                                         f" over {engine.info.contexts} contexts (measured for this model)"
                                         if engine.info.contexts > 1 else " (measured for this model)"))
            self.run = HumanEvalRun(out, problems, protocol=proto, samples=settings.get("samples") or 1,
                                    engine=engine, sandbox=sandbox, model=engine.record(),
                                    seed=settings.get("seed") or 0, on_progress=self._progress,
                                    on_result=self._result, settings=settings, note=note, parallel=parallel)
            summary = await self.run.run()
            self.current_summary = summary
            state = "done" if summary["complete"] else "stopped (Resume continues it)"
            self.status.setText(f"{state}: pass@1 = {summary.get('pass@1', 0):.3f} "
                                f"({summary['passed']}/{summary['samples']}), {summary.get('tokens_per_s') or 0} tok/s, "
                                f"{summary['wall_s']:.0f} s. Results in {out}")
        except RunFolderError as exc:  # busy folder, another model file, a damaged log
            self.status.setText(f"Cannot run: {plain(exc)}")
        except Exception as exc:  # the engine died, the sandbox failed: say so, keep the window
            self.status.setText(f"The run stopped: {plain(exc)}. Resume continues from the results folder {out}.")
        finally:
            if sandbox is not None:
                await sandbox.close()
            if reloaded:
                await self._load_as_before()
            self.run = None
            self._set_running(False)
            self.refresh_past()
            self._draw_chart()

    async def _use_measured_parallel(self, engine) -> bool:
        """As the CLI does: the best count of sequences for this model and backend (a probe of
        about 15 s the first time, cached), and the model reloaded with that many slots, exact
        (P.Load), so the score does not depend on how many answers were generated at once.
        Returns whether it reloaded the model (not when it was loaded so already)."""
        from app.engine import hardware, parallel_probe
        from app.engine.base import open_engine

        path, bar = engine.info.path, self.window.model_bar
        backend = await asyncio.to_thread(hardware.detect_backend)
        best = parallel_probe.cached(path, backend)
        if best is None:
            self.status.setText("Measuring how many answers this machine generates best at once "
                                "(about 15 s, once per model)…")
            await bar.unload()   # the probe loads the model itself: one copy in memory at a time
            best = await parallel_probe.default_parallel(
                path, backend=backend, open_probe_engine=lambda n, contexts: open_engine(
                    path, n_ctx=1024, gpu_layers=bar.gpu_layers_text(), threads=bar.threads.value() or None,
                    parallel=n, exact=True, contexts=contexts))
        engine = self.window.engine
        if (engine.info is not None and best == engine.capabilities.parallel_slots and engine.info.exact
                and engine.info.contexts == parallel_probe.cached_contexts(path, backend, best)):
            return False
        self.status.setText(f"Loading {Path(path).name} with {best} sequence slots…")
        # every slot holds a context of its own: where that many do not fit, one does
        if not await bar.load(path, parallel=best, exact=True) and (
                best == 1 or not await bar.load(path, parallel=1, exact=True)):
            raise RunFolderError(f"could not load {Path(path).name} again: {bar.state.text()}")
        return True

    async def _load_as_before(self) -> None:
        """An exact load gives up weight repacking and most prompt-cache reuse, which edits and
        completion at the cursor rely on: after the run the model is loaded as the model bar
        loads it. Where that fails the bar says why and offers Load."""
        info = self.window.engine.info
        if info is None or not info.exact:
            return   # the engine stopped during the run: the bar offers Restart
        await self.window.model_bar.load(info.path)

    def stop(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def _set_running(self, running: bool) -> None:
        self.start_btn.setEnabled(not running)
        self.resume_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)
        self.progress.setVisible(running)
        # Loading another model mid-run would mix two models in one results folder.
        self.window.model_bar.setEnabled(not running)
        self.window.model_bar.setToolTip("Locked while the self-test runs" if running else "")

    def _progress(self, p) -> None:
        self.progress.setValue(p.done)
        eta = f"ETA {int(p.eta_s // 60)}m{int(p.eta_s % 60):02d}s" if p.eta_s is not None else "ETA —"
        rate = f"{100 * p.passed / p.done:.1f}%" if p.done else "—"
        self.status.setText(f"{p.done}/{p.total} scored · passing {rate} · {eta} · {p.tokens_per_s:.1f} tok/s")

    def _result(self, row: dict) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.rows[(row["task_id"], row["sample"])] = r
        for c, text in enumerate([row["task_id"], row["verdict"], f"{row['gen_s'] + row['exec_s']:.2f}",
                                  str(row["tokens"]), row["error"]]):
            item = QTableWidgetItem(text)
            if c == 0:
                item.setData(Qt.UserRole, row)
            self.table.setItem(r, c, item)

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        row = self.table.item(rows[0].row(), 0).data(Qt.UserRole)
        problem = self.problems.get(row["task_id"], {"prompt": ""})
        fmt = HtmlFormatter(noclasses=True, style=self.window.pygments_style(), linenos="inline")
        self.detail.setHtml(
            f"<h3>{row['task_id']}: {row['verdict']}</h3>"
            + (f"<p style='color:#b00'>{row['error']}</p>" if row["error"] else "")
            + "<p><b>Prompt</b></p>" + highlight(problem["prompt"], PythonLexer(), fmt)
            + "<p><b>Completion</b></p>" + highlight(row["completion"] or " ", PythonLexer(), fmt))

    def theme_changed(self) -> None:
        """The chart paints with the palette; the task details are HTML in the old style."""
        self.chart.update()
        self._show_selected()

    # --- chart, past runs, export, resume -------------------------------------------------------
    def refresh_past(self) -> None:
        self.past.clear()
        self._past = past_runs()
        for folder, s in self._past:
            label = (f"{folder.name}: pass@1 {s.get('pass@1', 0):.3f} ({s.get('passed')}/{s.get('samples')})"
                     + ("" if s.get("complete") else " — incomplete"))
            self.past.addItem(label)

    def _draw_chart(self) -> None:
        rows = []
        if self.current_summary:
            rows.append(run_row(self.current_summary, "This run: " + run_label(None, self.current_summary), "this"))
        for i in [x.row() for x in self.past.selectedIndexes()][:4]:
            folder, s = self._past[i]
            rows.append(run_row(s, run_label(folder, s), "run"))
        refs = [r for r in references.REFERENCES if r.model in CHART_REFERENCES]
        for ref in sorted(refs, key=lambda r: -r.pass_at_1):
            rows.append(Row(ref.model, ref.pass_at_1, "reference", tip="published"))
        self.chart.set_rows(rows)

    def _selected_run(self, hint: str):
        rows = self.past.selectedIndexes()
        if not rows:
            self.status.setText(hint)
            return None
        return self._past[rows[0].row()][0]

    def _export(self) -> None:
        folder = self._selected_run("Select a past run to export.")
        dest = QFileDialog.getExistingDirectory(self, "Export run to") if folder else ""
        if dest:
            try:
                shutil.copytree(folder, Path(dest) / folder.name, dirs_exist_ok=True)
            except OSError as exc:
                self.status.setText(f"Could not export to {dest}: {plain(exc)}")
                return
            self.status.setText(f"Exported to {Path(dest) / folder.name}")

    def _resume(self) -> None:
        folder = self._selected_run("Select an incomplete run to resume.")
        if folder is None:
            return
        try:
            saved = RunFolder(folder).read_settings()
        except RunFolderError as exc:
            self.status.setText(f"Cannot resume: {plain(exc)}")
            return
        if saved.get("canonical") or saved.get("evaluate") or saved.get("exclude_contaminated"):
            self.status.setText(f"This run scores given samples or a filtered task list; resume it with "
                                f"`llamadesk humaneval --resume {folder}`.")
            return
        self.start(folder, saved)


def run_label(folder: Path | None, s: dict) -> str:
    """A run as a person names it: the model file, the protocol, when."""
    model = (s.get("model") or {})
    name = Path(model.get("path") or "").stem or model.get("name") or (folder.name if folder else "run")
    proto = (s.get("protocol") or {}).get("name", "")
    when = folder.name.split("-")[1] if folder and folder.name.count("-") >= 2 else ""
    when = f"{when[:4]}-{when[4:6]}-{when[6:]}" if len(when) == 8 and when.isdigit() else ""
    extra = " · ".join(x for x in (proto, when) if x)
    return f"{name}" + (f" ({extra})" if extra else "") + ("" if s.get("complete", True) else " — incomplete")


def run_row(s: dict, label: str, kind: str) -> Row:
    n, passed = int(s.get("samples") or 0), int(s.get("passed") or 0)
    lo, hi = wilson(passed, n) if n else (None, None)
    return Row(label, 100 * float(s.get("pass@1", 0.0)), kind, lo, hi, tip=f"{passed}/{n} passed")


def latest_decontam_report() -> Path | None:
    base = paths.results_dir()
    reports = sorted(base.glob("decontam-*.json")) if base.is_dir() else []
    return reports[-1] if reports else None


def model_label(info) -> str:
    """The model as the panel names it: the file's name, or for a server its model at its URL."""
    if info.remote is not None:
        return f"{info.name} at {info.path}"
    return Path(info.path).name if info.path else info.name
