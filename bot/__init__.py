"""qibot: the chatbot of a quality-infrastructure one-stop service platform."""

__version__ = "0.1.0"
