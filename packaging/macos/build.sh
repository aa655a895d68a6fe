#!/usr/bin/env bash
# Build LlamaDesk.app and a .dmg on macOS (arm64, Metal). Signing and notarization run only
# when their secrets are set (MACOS_SIGN_IDENTITY; APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD),
# and are skipped with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VERSION=$($PY -c "import app; print(app.__version__)")
$PY -m PyInstaller --noconfirm --log-level WARN --distpath build/dist --workpath build/work packaging/pyinstaller/llamadesk.spec
APP=build/dist/LlamaDesk.app
$PY packaging/collect_licenses.py "$APP/Contents/Resources/licenses"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$MACOS_SIGN_IDENTITY" "$APP"
else
    echo "MACOS_SIGN_IDENTITY not set: the app is not signed (Gatekeeper will warn on first start)"
fi
DMG=build/LlamaDesk-${VERSION}-macos-arm64.dmg
rm -f "$DMG"
hdiutil create -volname LlamaDesk -srcfolder "$APP" -ov -format UDZO "$DMG"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ] && [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ]; then
    codesign --sign "$MACOS_SIGN_IDENTITY" --timestamp "$DMG"
    xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$DMG"
else
    echo "notarization secrets not set: the .dmg is not notarized"
fi
echo "$DMG"
