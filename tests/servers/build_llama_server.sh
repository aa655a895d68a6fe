#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the llama.cpp vendored in the installed
# llama-cpp-python's source release, so the tests talk to the same llama.cpp the local
# engine runs, and llama-batched-bench beside it (the benchmarks' reference for what llama.cpp
# itself gains from batching here). Cached by version, flags and targets: a second run with the
# same inputs does nothing. Prints llama-server's path on its last line.
#   LLAMA_SERVER_CACHE   where builds are kept (default ~/.cache/llamadesk/llama-server)
#   LLAMA_CPP_VERSION    llama-cpp-python version (default: the installed one)
# With --path it only prints where the binary is (exit 1 when it has not been built).
set -euo pipefail

PY=${PYTHON:-python3}
VERSION=${LLAMA_CPP_VERSION:-$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null)} ||
    { echo "llama-cpp-python is not installed for $PY: activate the project's venv first" >&2; exit 2; }
FLAGS="-DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON"
TARGETS="llama-server llama-batched-bench"
KEY=$(printf '%s %s %s' "$VERSION" "$FLAGS" "$TARGETS" | sha256sum | cut -c1-12)
CACHE=${LLAMA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llamadesk/llama-server}
DEST="$CACHE/$VERSION-$KEY"
BIN="$DEST/llama-server"

if [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi
if [ "${1:-}" = "--path" ]; then
    echo "$BIN"
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "building llama-server for llama-cpp-python $VERSION in $WORK" >&2
"$PY" -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK" "llama-cpp-python==$VERSION" >&2
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
# shellcheck disable=SC2086
cmake -S "$SRC" -B "$WORK/build" $FLAGS >&2
# shellcheck disable=SC2086
cmake --build "$WORK/build" --target $TARGETS -j "$(nproc)" >&2
mkdir -p "$DEST"
# Copy then rename, llama-server last: it is what marks the cache complete, so an interrupted
# build never leaves a half-written binary there.
cp "$WORK/build/bin/llama-batched-bench" "$DEST/llama-batched-bench.tmp"
mv "$DEST/llama-batched-bench.tmp" "$DEST/llama-batched-bench"
cp "$WORK/build/bin/llama-server" "$DEST/llama-server.tmp"
mv "$DEST/llama-server.tmp" "$BIN"
printf '%s\n%s\n%s\n' "$VERSION" "$FLAGS" "$TARGETS" > "$DEST/BUILD_INFO"
echo "$BIN"
