"""`llamadesk complete`: stream one completion from a local GGUF model to stdout."""
from __future__ import annotations

import os
import sys

from app.cli import UserError, gpu_layers_arg, print_json_line


def register(sub) -> None:
    c = sub.add_parser("complete", help="stream a completion from a local GGUF model")
    c.add_argument("prompt", help="the prompt, or - to read it from stdin")
    c.add_argument("--model", required=True, help="path to a .gguf file")
    c.add_argument("--format", default="auto", choices=["auto", "raw", "phind-v2", "phind-v1", "chat"])
    c.add_argument("--system", help="system prompt for phind-v2 / chat formats")
    c.add_argument("--max-tokens", type=int, default=256)
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    c.add_argument("--top-p", type=float, default=0.95)
    c.add_argument("--top-k", type=int, default=40)
    c.add_argument("--seed", type=int)
    c.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    c.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    c.add_argument("--gpu-layers", type=gpu_layers_arg, default="auto", help="auto, or a number (-1 = all)")
    c.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    c.add_argument("--stats", action="store_true", help="print one JSON line of statistics on stderr")


async def run(args) -> int:
    from app.engine import hardware, prompts
    from app.engine.client import EngineClient, EngineError
    from app.engine.protocol import GenerateParams
    from app.models import gguf_file

    text = read_prompt(args.prompt)
    try:
        info = gguf_file.inspect(args.model)
    except gguf_file.GGUFError as exc:
        raise UserError(str(exc)) from None
    if args.ctx <= 0 or args.max_tokens <= 0:
        raise UserError("--ctx and --max-tokens must be positive")
    try:
        hardware.check_context_here(info, args.ctx)
    except hardware.ContextTooLarge as exc:
        raise UserError(f"--ctx {args.ctx}: {exc}") from None
    n_gpu_layers, why = hardware.resolve_gpu_layers(args.gpu_layers, info, args.ctx)
    threads = hardware.bound_threads(args.threads)

    async with EngineClient() as client:
        try:
            loaded = await client.load(args.model, n_ctx=args.ctx, n_gpu_layers=n_gpu_layers,
                                       n_threads=threads)
            prompt = prompts.build(args.format, text, model_name=f"{info.name} {info.path.name}",
                                   chat_template=info.chat_template, system=args.system,
                                   bos_token=loaded.bos_token, eos_token=loaded.eos_token)
        except (EngineError, prompts.ChatTemplateError, ValueError) as exc:
            raise UserError(str(exc)) from None
        params = GenerateParams(max_tokens=args.max_tokens, temperature=args.temperature,
                                top_p=args.top_p, top_k=args.top_k, seed=args.seed,
                                stop=prompt.stop + args.stop)
        gen = client.generate(prompt.text, params)
        try:
            async for chunk in gen:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except EngineError as exc:
            sys.stdout.write("\n")
            raise UserError(str(exc)) from None
        except BrokenPipeError:  # the reader went away (`| head -c 5`): stop quietly
            gen.cancel()
            return quiet_broken_pipe()
        except KeyboardInterrupt:
            gen.cancel()
            raise
        try:
            sys.stdout.write("\n")
            sys.stdout.flush()
        except BrokenPipeError:
            return quiet_broken_pipe()
        if args.stats:
            s = gen.stats
            print_json_line({
                "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                "cached_tokens": s.cached_tokens, "ttft_s": round(s.ttft_s, 4),
                "tokens_per_s": round(s.tokens_per_s, 2), "load_s": round(loaded.load_s, 3),
                "finish_reason": s.finish_reason, "format": prompt.format,
                "n_gpu_layers": n_gpu_layers, "offload": why, "threads": loaded.n_threads,
            })
    return 0


def read_prompt(arg: str) -> str:
    """The prompt from the argument or stdin, as UTF-8; bytes that are not UTF-8 become U+FFFD
    (and the user is told), instead of failing later when the text is encoded."""
    if arg == "-":
        raw = sys.stdin.buffer.read()
    else:
        raw = os.fsencode(arg)  # undoes the surrogateescape that sys.argv decoding applied
    text = raw.decode("utf-8", errors="replace")
    if "\ufffd" in text and "\ufffd".encode() not in raw:
        print("llamadesk: the prompt is not valid UTF-8; undecodable bytes were replaced with U+FFFD",
              file=sys.stderr)
    return text


def quiet_broken_pipe() -> int:
    """Exit status for a closed stdout; later flushes (at exit) write to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe
