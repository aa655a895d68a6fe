"""A small cache of shown suggestions keyed by the text around the cursor.

A lookup also finds the suggestion made a few characters earlier when the user has since
typed its first characters (what llama.vim does): the rest of it is still the answer."""
from __future__ import annotations

import hashlib
from collections import OrderedDict

MAX_TYPED_BACK = 64


def _key(prefix: str, suffix: str) -> str:
    return hashlib.sha1(f"{prefix}\x00{suffix}".encode("utf-8", "surrogatepass")).hexdigest()


class SuggestionCache:
    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()

    def put(self, prefix: str, suffix: str, text: str) -> None:
        k = _key(prefix, suffix)
        self._items[k] = text
        self._items.move_to_end(k)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, prefix: str, suffix: str) -> str | None:
        """The suggestion for this spot, or None when nothing cached fits."""
        k = _key(prefix, suffix)
        if k in self._items:
            self._items.move_to_end(k)
            return self._items[k]
        for n in range(1, min(len(prefix), MAX_TYPED_BACK) + 1):
            typed = prefix[-n:]
            hit = self._items.get(_key(prefix[:-n], suffix))
            if hit is not None and len(hit) > n and hit.startswith(typed):
                return hit[n:]
        return None

    def __len__(self) -> int:
        return len(self._items)
