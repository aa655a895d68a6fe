; Inno Setup script: installs the PyInstaller app folder, a Start menu entry and an uninstaller.
; Built by packaging/windows/build.ps1 (iscc /DAppVersion=... llamadesk.iss).
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{7C1D6E0B-3F8A-4B7B-9C0E-5A1F2D3E4B5C}
AppName=LlamaDesk
AppVersion={#AppVersion}
AppPublisher=LlamaDesk
DefaultDirName={autopf}\LlamaDesk
DefaultGroupName=LlamaDesk
UninstallDisplayIcon={app}\llamadesk.exe
OutputDir=..\..\build
OutputBaseFilename=LlamaDesk-{#AppVersion}-windows-x64-setup
Compression=lzma2/fast
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
LicenseFile=..\..\LICENSE
SetupIconFile=..\..\resources\icons\llamadesk.ico
PrivilegesRequiredOverridesAllowed=dialog

[Files]
Source: "..\..\build\dist\llamadesk\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion
Source: "..\..\build\licenses\*"; DestDir: "{app}\licenses"; Flags: recursesubdirs

[Icons]
Name: "{group}\LlamaDesk"; Filename: "{app}\llamadesk.exe"
Name: "{group}\Uninstall LlamaDesk"; Filename: "{uninstallexe}"

[Run]
Filename: "{app}\llamadesk.exe"; Description: "Start LlamaDesk"; Flags: nowait postinstall skipifsilent
