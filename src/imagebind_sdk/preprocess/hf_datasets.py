"""Hugging Face ``datasets`` feature values as ``embed()`` inputs (imports neither datasets nor torchcodec).

A dataset column can go straight into ``embed()``, e.g. in
``ds.map(lambda b: {"embedding": model.embed(vision=b["image"]).vision.numpy()}, batched=True)``:

- ``Image``: PIL images (decoded; ``embed`` takes them as they are) or ``{"bytes", "path"}``
  dicts (``Image(decode=False)``);
- ``Audio``: ``{"array", "sampling_rate"}`` dicts (datasets < 4), ``{"bytes", "path"}``
  dicts (``decode=False``) and the torchcodec ``AudioDecoder`` that datasets >= 4 returns;
- ``Video``: the torchcodec ``VideoDecoder`` of datasets >= 4, or ``{"bytes", "path"}`` dicts.

A decoder made by ``datasets`` remembers the file it came from; that file goes through
the SDK's own decoding, so the vector equals ``embed(path)`` exactly. A torchcodec
decoder made by hand has no such file: audio is read with ``get_all_samples()`` and
resampled as any ``(waveform, rate)``; a hand-made ``VideoDecoder`` is refused with a
clear error (pass the video's path or bytes). :func:`dataset_value` is the one hook
``preprocess`` calls per item; this module imports nothing of the SDK, so that hook
adds no import cycle.
"""

from __future__ import annotations

import io
from typing import Any

ENCODED_KEYS = frozenset({"bytes", "path"})


def dataset_value(item: Any) -> Any:
    """A ``datasets`` feature value as an item the preprocessors take; anything else unchanged.

    Cheap for ordinary items (a few type checks); a hand-made torchcodec decoder is
    decoded here, one item at a time as the batch is preprocessed.
    """
    if isinstance(item, dict) and item and set(item) <= ENCODED_KEYS:
        return _encoded(item)
    encoded = getattr(item, "_hf_encoded", None)  # set by datasets' Audio/Video.decode_example
    if isinstance(encoded, dict) and set(encoded) <= ENCODED_KEYS and any(v is not None for v in encoded.values()):
        return _encoded(encoded)
    if _is_torchcodec(item, "AudioDecoder"):
        samples = item.get_all_samples()
        return samples.data, int(samples.sample_rate)
    if _is_torchcodec(item, "VideoDecoder"):
        raise TypeError(
            "a torchcodec VideoDecoder made by hand does not say which file it reads; pass the video's "
            "path or bytes (decoders from a datasets Video column work as they are)"
        )
    if type(item).__name__ == "Column" and type(item).__module__.startswith("datasets"):
        # Only reached for a Column given as one item: say how to pass its values.
        raise TypeError("got a datasets Column as one item; pass its values as a list: list(ds['column'])")
    return item


def _encoded(value: dict) -> Any:
    """``{"bytes", "path"}`` -> the bytes as a file named after the path, else the path itself."""
    data, path = value.get("bytes"), value.get("path")
    if data is None:
        return path if path is not None else value  # both None: the preprocessor names the dict
    stream = io.BytesIO(data)
    if path:
        stream.name = path  # errors and Embeddings.sources name the original file
    return stream


def _is_torchcodec(item: Any, name: str) -> bool:
    return type(item).__module__.startswith(("torchcodec", "datasets")) and any(
        cls.__name__ == name for cls in type(item).__mro__
    )

