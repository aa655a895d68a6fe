# The real llama-server fixtures of the engine tests (SmolLM2 on 127.0.0.1), shared, not copied.
from tests.engine.conftest import llama_server, llama_server_bin, server_logs  # noqa: F401
