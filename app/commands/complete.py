"""`llamadesk complete`: stream one completion from a local GGUF model or a server to stdout."""
from __future__ import annotations

import os
import sys

from app.cli import UserError, add_engine_args, engine_options, gpu_layers_arg, print_json_line


def register(sub) -> None:
    c = sub.add_parser("complete", help="stream a completion from a local GGUF model or a server")
    c.add_argument("prompt", nargs="?", help="the prompt, or - to read it from stdin")
    add_engine_args(c, model_required=True)
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
    c.add_argument("--purpose", choices=["edit", "ask", "complete"], default="",
                   help="what the request is for: edit uses prompt-lookup decoding, ask does when "
                        "the prompt holds code")
    from app.commands import complete_fim

    complete_fim.add_arguments(c)


async def run(args) -> int:
    if args.fim:
        from app.commands import complete_fim

        return await complete_fim.run(args)
    if args.prompt is None:
        raise UserError("give a PROMPT (or - to read it from stdin), or use --fim")
    from app.engine import family, prompts
    from app.engine.base import EngineError, open_engine
    from app.engine.protocol import GenerateParams

    text = read_prompt(args.prompt)
    if args.ctx <= 0 or args.max_tokens <= 0:
        raise UserError("--ctx and --max-tokens must be positive")
    engine = await open_engine(args.engine or args.model, remote=bool(args.engine), n_ctx=args.ctx,
                               gpu_layers=args.gpu_layers, threads=args.threads, **engine_options(args))
    async with engine:
        loaded = engine.info
        params = GenerateParams(max_tokens=args.max_tokens, temperature=args.temperature,
                                top_p=args.top_p, top_k=args.top_k, seed=args.seed, stop=list(args.stop),
                                purpose=args.purpose)
        fmt = args.format
        if fmt == "auto":
            fmt = family.prompt_format(loaded.chat_template, loaded.name, loaded.path)
            if fmt == "raw" and engine.kind == "remote" and engine.has_chat:
                fmt = "chat"  # the server knows its template even when it does not show it
        if fmt == "chat" and not loaded.chat_template and engine.kind == "remote":
            messages = ([{"role": "system", "content": args.system}] if args.system else []) + \
                       [{"role": "user", "content": text}]
            gen, used = engine.chat_remote(messages, params), "chat (server's template)"
        else:
            try:
                prompt = prompts.build(fmt, text, model_name=loaded.name, chat_template=loaded.chat_template,
                                       system=args.system, bos_token=loaded.bos_token, eos_token=loaded.eos_token)
            except (prompts.ChatTemplateError, ValueError) as exc:
                raise UserError(str(exc)) from None
            params.stop = prompt.stop + params.stop
            gen, used = engine.generate(prompt.text, params), prompt.format
        try:
            async for chunk in gen:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except EngineError:
            sys.stdout.write("\n")
            raise
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
                "finish_reason": s.finish_reason, "format": used,
                "n_gpu_layers": loaded.n_gpu_layers, "offload": loaded.offload_note,
                "threads": loaded.n_threads, "engine": engine.kind,
                # prompt-lookup decoding (tokens_per_s above is then the effective rate) and
                # how many sequences the engine decoded together meanwhile
                "lookup_drafted": s.draft_tokens, "lookup_accepted": s.accepted_tokens,
                "acceptance": None if s.acceptance is None else round(s.acceptance, 3),
                "in_flight": s.in_flight,
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
