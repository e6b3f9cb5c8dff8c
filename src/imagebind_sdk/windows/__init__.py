"""Windows of long recordings: windowed embeddings and the moments found in them."""
