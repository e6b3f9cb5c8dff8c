"""Weights: checkpoint reading, key mapping, the Hub registry, conversion, dtypes and int8 quantisation."""
