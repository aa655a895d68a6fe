# Build the Windows app folder and the Inno Setup installer into build\ (run from any folder).
# Needs: Python with the app, llama-cpp-python built portable (CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF",
# or -DGGML_CUDA=on for the CUDA variant), pyinstaller, and Inno Setup 6 (iscc on PATH).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$version = python -c "import app; print(app.__version__)"
python -m PyInstaller --noconfirm --log-level WARN --distpath build\dist --workpath build\work packaging\pyinstaller\llamadesk.spec
python packaging\collect_licenses.py build\licenses
iscc /DAppVersion=$version packaging\windows\llamadesk.iss
Write-Output "build\LlamaDesk-$version-windows-x64-setup.exe"
