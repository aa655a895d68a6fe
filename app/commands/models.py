"""`llamadesk models`: the catalog, fit and recommendation, downloads, local files."""
from __future__ import annotations

import json
import sys
import threading

from app.cli import UserError
from app.commands.status_line import StatusLine, eta_text


def register(sub) -> None:
    m = sub.add_parser("models", help="list, download, verify and manage GGUF models")
    msub = m.add_subparsers(dest="models_command", required=True)
    ls = msub.add_parser("list", help="the catalog with fit for this machine")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--ctx", type=int, default=4096)
    msub.add_parser("refresh", help="update sizes and sha256 from the hub")
    dl = msub.add_parser("download", help="download a catalog ID (e.g. phind-v2:Q4_K_M) or REPO FILE")
    dl.add_argument("what", nargs="+", metavar="ID | REPO FILE")
    dl.add_argument("--revision", default="main")
    v = msub.add_parser("verify", help="check that a file is a complete GGUF model")
    v.add_argument("path")
    loc = msub.add_parser("local", help="GGUF files in the HF cache and the models folder")
    loc.add_argument("--json", action="store_true")
    imp = msub.add_parser("import", help="copy a .gguf into the models folder (validated)")
    imp.add_argument("path")
    imp.add_argument("--link", action="store_true", help="link instead of copying")
    rm = msub.add_parser("delete", help="delete a local model file")
    rm.add_argument("path")
    ms = msub.add_parser("measure", help="measure this machine's speed with a model (cached; "
                                         "the advice predicts every catalog file from it)")
    ms.add_argument("path")
    ms.add_argument("--gpu-layers", default="auto")


def run(args) -> int:
    return {"list": _list, "refresh": _refresh, "download": _download, "verify": _verify,
            "local": _local, "import": _import, "delete": _delete,
            "measure": _measure}[args.models_command](args)


def _measure(args) -> int:
    import asyncio

    from app.engine import hardware
    from app.engine.client import EngineClient, EngineError
    from app.models import gguf_file, speed

    try:
        info = gguf_file.inspect(args.path)
    except gguf_file.GGUFError as exc:
        raise UserError(str(exc)) from None
    layers, _ = hardware.resolve_gpu_layers(args.gpu_layers, info, 1024)

    async def go():
        async with EngineClient() as client:
            await client.load(args.path, n_ctx=1024, n_gpu_layers=layers,
                              n_threads=hardware.detect().default_threads)
            return await speed.measure(client, info.file_size, on_gpu=layers != 0)

    try:
        result = asyncio.run(go())
    except (EngineError, RuntimeError) as exc:
        raise UserError(f"measuring failed: {exc}") from None
    speed.save(result)
    half = (f" ({result.half_threads_tps:.1f} with {result.measured_threads // 2} of its "
            f"{result.measured_threads} threads)" if result.half_threads_tps else "")
    print(f"{result.measured_tps:.1f} tokens/s with {info.path.name}{half}; memory bandwidth "
          f"{result.probe_bandwidth / 1e9:.1f} GB/s, weights read at "
          f"{result.cpu_bandwidth / 1e9:.1f} GB/s; saved to {speed.cache_path()}")
    return 0


def _list(args) -> int:
    from app.models import advisor, catalog, download

    import dataclasses

    machine = advisor.Machine.detect()
    advice = advisor.advise(machine, args.ctx)   # the same advice as the desktop app's
    rec = advice.ask
    rows = []
    for f in catalog.files():
        plan = advisor.fit(f, machine, args.ctx)
        rows.append({**f.to_dict(), "fit": plan.label, "gpu_layers": plan.n_gpu_layers,
                     "ram_bytes": plan.ram_bytes, "vram_bytes": plan.vram_bytes,
                     "downloaded": download.cached_path(f.repo, f.filename) is not None,
                     "tokens_per_s": round(advice.tps.get(f.id, 0.0), 2),
                     "recommended": rec.file is not None and rec.file.id == f.id,
                     "recommended_for_completion": advice.complete.file is not None
                     and advice.complete.file.id == f.id})
    if args.json:
        print(json.dumps({"machine": dataclasses.asdict(machine), "recommendation": rec.reason,
                          "recommended": rec.file.id if rec.file else None,
                          "completion_recommendation": advice.complete.reason,
                          "recommended_for_completion": advice.complete.file.id if advice.complete.file else None,
                          "files": rows}, indent=1))
        return 0
    print(f"{'id':<36} {'size':>8} {'tok/s':>7}  {'fit':<26} {'RAM':>7} {'VRAM':>7}  state")
    for r in rows:
        state = (("downloaded" if r["downloaded"] else "") + (" * recommended" if r["recommended"] else "")
                 + (" * completion" if r["recommended_for_completion"] else ""))
        print(f"{r['id']:<36} {r['size_bytes'] / 1e9:>6.2f}GB {r['tokens_per_s']:>7.1f}  {r['fit']:<26} "
              f"{r['ram_bytes'] / 1e9:>5.1f}GB {r['vram_bytes'] / 1e9:>5.1f}GB  {state}")
    print(f"\nrecommended: {rec.reason}\nfor completion: {advice.complete.reason}")
    return 0


def _refresh(args) -> int:
    from app.models import catalog

    try:
        result = catalog.refresh()
    except Exception as exc:  # the hub's own errors, offline, ...: one line either way
        raise UserError(f"refresh failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    n = len(result["files"])
    print(f"refreshed {n} files from {len(result['repos'])} repositories at {result['refreshed_at']}")
    return 0


class _ProgressLine:
    def __init__(self):
        self.line = StatusLine(tty_every_s=0.25, log_every_s=5.0)

    def __call__(self, p) -> None:
        pct = 100 * p.done / p.total if p.total else 0
        eta = f" {eta_text(p.eta_s)}" if p.eta_s else ""
        self.line.show(f"{p.stage}: {p.done / 1e9:.2f}/{p.total / 1e9:.2f} GB ({pct:.0f}%) "
                       f"{p.speed / 1e6:.1f} MB/s{eta}", force=p.stage != "downloading")


def _download(args) -> int:
    from app.models import catalog, download

    if len(args.what) == 1:
        try:
            f = catalog.find(args.what[0])
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        repo, filename = f.repo, f.filename
    elif len(args.what) == 2:
        repo, filename = args.what
    else:
        raise UserError("give a catalog ID, or REPO FILE")
    _log_to_file()
    cancel = threading.Event()
    try:
        remote = download.resolve(repo, filename, args.revision)
        progress = _ProgressLine()
        path = download.Downloader(remote, cancel=cancel, progress=progress).run()
    except download.DownloadError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        cancel.set()
        print("\ncancelled; run the same command to resume", file=sys.stderr)
        return 130
    progress.line.end()
    print(path)
    return 0


def _log_to_file() -> None:
    """Retries and connection details go to the log file; the terminal gets one line."""
    import logging

    from app import paths

    try:
        logging.basicConfig(filename=paths.ensure(paths.log_dir()) / "llamadesk.log", level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", encoding="utf-8")
    except OSError:
        logging.getLogger().addHandler(logging.NullHandler())


def _verify(args) -> int:
    from app.models import gguf_file

    try:
        info = gguf_file.inspect(args.path)
    except gguf_file.GGUFError as exc:
        raise UserError(str(exc)) from None
    print(f"ok: {info.name}, {info.architecture}, {info.n_layers} layers, {info.quantization}, "
          f"context {info.context_length}, {info.file_size / 1e9:.2f} GB")
    return 0


def _local(args) -> int:
    from app.models import local

    models = local.all_models()
    if args.json:
        print(json.dumps([m.__dict__ for m in models], indent=1))
        return 0
    if not models:
        print("no local models (download one with `llamadesk models download ID`)")
    for m in models:
        state = "ok" if m.usable else f"unusable: {m.problem}"
        print(f"{m.path}  {m.size_bytes / 1e9:.2f} GB  {m.quantization or '-'}  [{m.source}] {state}")
    return 0


def _import(args) -> int:
    from app.models import gguf_file, local

    try:
        m = local.import_model(args.path, link=args.link)
    except (gguf_file.GGUFError, ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    print(m.path)
    return 0


def _delete(args) -> int:
    from app.models import local

    try:
        gone = local.delete_model(args.path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot delete {args.path}: {exc.strerror or exc}") from None
    print(f"deleted {gone}")
    return 0
