"""LlamaDesk: an offline coding assistant around llama.cpp."""

__version__ = "0.1.0"
