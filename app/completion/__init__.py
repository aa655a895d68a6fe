"""Completion at the cursor, without Qt: the prompt (context ring, infill formats), the
trimming rules, a suggestion cache and latency stats. The editor, the CLI (`complete --fim`)
and the latency benchmark all go through `Completer`."""
