# llama-cpp-python loads libllama / libggml* from llama_cpp/lib with ctypes; PyInstaller does not
# see them, and without them the frozen app fails: "Shared library with base name 'llama' not found".
from PyInstaller.utils.hooks import collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp", destdir="llama_cpp/lib")
