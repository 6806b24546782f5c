"""neuroai-papers: Hugging Face Daily Papers dumps -> one documented SQLite database."""

__version__ = "0.1.0"
