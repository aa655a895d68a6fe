"""API keys of saved servers: in the OS keyring (the `keyring` package), or named environment
variables. Never in a file of ours: settings keep only the server's URL and the variable's name."""
from __future__ import annotations

import os

SERVICE = "llamadesk"


class NoKeyring(Exception):
    """No usable keyring on this system (a headless Linux): the message says what to do instead."""


def _keyring():
    import keyring
    from keyring.errors import NoKeyringError

    return keyring, NoKeyringError


def save_key(url: str, key: str) -> None:
    keyring, NoKeyringError = _keyring()
    try:
        keyring.set_password(SERVICE, url, key)
    except (NoKeyringError, RuntimeError) as exc:
        raise NoKeyring("this system has no keyring, so the key was not saved: put it in an "
                        "environment variable and give the variable's name instead") from exc


def load_key(url: str, key_env: str = "") -> str | None:
    """The key for a server: its environment variable if one is named, else the keyring."""
    if key_env:
        return os.environ.get(key_env) or None
    keyring, NoKeyringError = _keyring()
    try:
        return keyring.get_password(SERVICE, url)
    except (NoKeyringError, RuntimeError):
        return None


def forget_key(url: str) -> None:
    keyring, NoKeyringError = _keyring()
    try:
        keyring.delete_password(SERVICE, url)
    except Exception:  # nothing saved, or no keyring: either way nothing to forget
        pass
