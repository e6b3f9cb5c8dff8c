"""Vector search: the exact in-memory index and its optional FAISS backend."""
