"""Vectors once made: the Embeddings result, similarity/search ops, zero-shot scoring and prompt templates."""
