"""`llamadesk serve`: the loaded model (a local file or another server) behind an
OpenAI-compatible API, for editors such as VS Code's Continue, llama.vscode or Zed."""
from __future__ import annotations


from app.cli import UserError, add_engine_args, engine_options, gpu_layers_arg


def register(sub) -> None:
    s = sub.add_parser("serve", help="serve a model over an OpenAI-compatible API (/v1)")
    add_engine_args(s, model_required=True, key_flag="--engine-key-env")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this computer only; any other needs --api-key-env)")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--api-key-env", metavar="VAR",
                   help="environment variable holding the key clients must send (Bearer)")
    s.add_argument("--ctx", type=int, default=4096)
    s.add_argument("--gpu-layers", type=gpu_layers_arg, default="auto")
    s.add_argument("--threads", type=int)


async def run(args) -> int:
    import os

    from app.engine.base import open_engine
    from app.engine.serve import Server, is_loopback

    serve_key = None
    if args.api_key_env:
        serve_key = os.environ.get(args.api_key_env)
        if not serve_key:
            raise UserError(f"the environment variable {args.api_key_env} is not set")
    if not is_loopback(args.host) and not serve_key:
        raise UserError(f"--host {args.host} is reachable from other machines: give a key with "
                        f"--api-key-env VAR")
    if not 0 <= args.port <= 65535:
        raise UserError("--port must be 0-65535")
    engine = await open_engine(args.engine or args.model, remote=bool(args.engine), n_ctx=args.ctx, gpu_layers=args.gpu_layers,
                               threads=args.threads, **engine_options(args))
    async with engine:
        server = Server(engine, args.host, args.port, serve_key)
        try:
            url = await server.start()
        except OSError as exc:
            raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        print(f"serving {engine.info.name} at {url} (Ctrl-C stops)", flush=True)
        try:
            await server.wait()
        finally:
            await server.stop()
    return 0
