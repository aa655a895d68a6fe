#!/usr/bin/env bash
# Build the Linux app folder (PyInstaller), a .deb and a tarball, into build/.
# Uses the Python of the current environment (PYTHON to override), which must have the app,
# llama-cpp-python built with portable flags (CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF") and pyinstaller.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VERSION=$($PY -c "import app; print(app.__version__)")
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)

$PY -m PyInstaller --noconfirm --log-level WARN --distpath build/dist --workpath build/work \
    packaging/pyinstaller/llamadesk.spec

PKG=build/deb/llamadesk_${VERSION}_${ARCH}
rm -rf "$PKG"
mkdir -p "$PKG/DEBIAN" "$PKG/usr/lib" "$PKG/usr/bin" "$PKG/usr/share/applications" \
         "$PKG/usr/share/metainfo" "$PKG/usr/share/doc/llamadesk" "$PKG/usr/share/icons/hicolor/scalable/apps"
cp -a build/dist/llamadesk "$PKG/usr/lib/llamadesk"
ln -s ../lib/llamadesk/llamadesk "$PKG/usr/bin/llamadesk"
install -m 644 resources/llamadesk.desktop "$PKG/usr/share/applications/llamadesk.desktop"
install -m 644 resources/app.llamadesk.LlamaDesk.metainfo.xml "$PKG/usr/share/metainfo/"
install -m 644 resources/icons/llamadesk.svg "$PKG/usr/share/icons/hicolor/scalable/apps/llamadesk.svg"
for s in 16 24 32 48 64 128 256 512; do
    mkdir -p "$PKG/usr/share/icons/hicolor/${s}x${s}/apps"
    install -m 644 "resources/icons/llamadesk-$s.png" "$PKG/usr/share/icons/hicolor/${s}x${s}/apps/llamadesk.png"
done
$PY packaging/collect_licenses.py "$PKG/usr/share/doc/llamadesk/licenses"
cp LICENSE "$PKG/usr/share/doc/llamadesk/copyright"
SIZE_KB=$(du -sk "$PKG/usr" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: llamadesk
Version: ${VERSION}
Architecture: ${ARCH}
Maintainer: LlamaDesk <maintainers@llamadesk.invalid>
Installed-Size: ${SIZE_KB}
Depends: libc6 (>= 2.31), libgl1, libegl1, libfontconfig1, libxkbcommon0, libdbus-1-3, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xinerama0, libxcb-xkb1
Section: devel
Priority: optional
Homepage: https://github.com/llamadesk/llamadesk
Description: offline coding assistant with a local Phind-CodeLlama model
 A code editor whose assistant runs GGUF models on this machine through llama.cpp,
 with resumable verified model downloads, a sandboxed HumanEval self-test and a
 training-set contamination check.
CONTROL
dpkg-deb --root-owner-group -Zgzip -z1 --build "$PKG" "build/llamadesk_${VERSION}_${ARCH}.deb" >/dev/null
tar -C build/dist -cf - llamadesk | gzip -1 > "build/llamadesk-${VERSION}-linux-${ARCH}.tar.gz"
echo "build/llamadesk_${VERSION}_${ARCH}.deb"
