import pytest

from tests.servers import procs


@pytest.fixture(scope="module")
def server_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="module")
def llama_server_bin():
    path = procs.llama_server_binary()
    if path is None:
        pytest.fail("llama-server is not built: run tests/servers/build_llama_server.sh "
                    "(the README's test command does)")
    return path


@pytest.fixture(scope="module")
def llama_server(llama_server_bin, smollm, server_logs):
    server = procs.start_llama_server(llama_server_bin, smollm, server_logs)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llama_cpp_server(smollm, server_logs):
    server = procs.start_llama_cpp_server(smollm, server_logs)
    yield server
    server.stop()
