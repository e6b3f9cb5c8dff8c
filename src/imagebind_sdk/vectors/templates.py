"""Default text prompt templates for zero-shot classification, per input modality.

Zero-shot classification embeds every class label through a few sentence templates
("a photo of a {}.") and averages them (see :func:`imagebind_sdk.vectors.zero_shot.build_label_embeddings`).
Averaging several phrasings is the prompt-ensembling trick popularised by CLIP: it
is cheap and usually beats a bare label.

Why these templates:

* ``vision`` uses a short, generic subset in the style of CLIP's ImageNet prompts.
* ``video`` goes through the vision encoder, so it mixes video and photo phrasings.
* ``audio``, ``depth`` and ``thermal`` name the sensor ("the sound of a {}.",
  "a depth map of a {}.") and also keep a plain photo prompt: ImageBind binds every
  modality to images, so image-style captions stay meaningful.
* ``imu`` labels are usually activities ("walking", "cooking"), so its templates
  describe a person doing something rather than an object.

Every template holds exactly one ``{}`` placeholder, filled with
``template.format(label)``.
"""

from __future__ import annotations

import string
from typing import Iterable

__all__ = ["DEFAULT_TEMPLATES", "templates_for", "validate_template"]

_VISION = (
    "a photo of a {}.",
    "a picture of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a good photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a cropped photo of a {}.",
    "art of the {}.",
)

DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "vision": _VISION,
    "video": (
        "a video of a {}.",
        "a video of the {}.",
        "a video frame of a {}.",
        "a photo of a {}.",
    ),
    "audio": (
        "the sound of a {}.",
        "a sound of a {}.",
        "a recording of a {}.",
        "an audio clip of a {}.",
        "the sound of the {}.",
    ),
    "depth": (
        "a depth map of a {}.",
        "a depth image of a {}.",
        "a depth photo of the {}.",
        "a photo of a {}.",
    ),
    "thermal": (
        "a thermal image of a {}.",
        "a thermal photo of the {}.",
        "an infrared photo of a {}.",
        "a photo of a {}.",
    ),
    "imu": (
        "a person {}.",
        "a person is {}.",
        "someone {}.",
        "a video of a person {}.",
    ),
}


def validate_template(template: str) -> str:
    """Check that ``template`` is a string with exactly one ``{}`` placeholder.

    Literal braces may be written doubled (``{{`` / ``}}``), as in :meth:`str.format`.

    >>> validate_template("a photo of a {}.")
    'a photo of a {}.'
    >>> validate_template("a photo")  # doctest: +SKIP
    ValueError: template 'a photo' must contain exactly one '{}' placeholder, found 0
    """
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    try:
        fields = [
            (name, spec, conv)
            for _, name, spec, conv in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        raise ValueError(f"template {template!r} is not a valid format string: {exc}") from None
    if len(fields) != 1 or fields[0] != ("", "", None):
        found = ", ".join(_render_field(*field) for field in fields) or "none"
        raise ValueError(
            f"template {template!r} must contain exactly one '{{}}' placeholder "
            f"(found {len(fields)}: {found})"
        )
    return template


def _render_field(name: str, spec: str, conv: str | None) -> str:
    return "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"


def templates_for(
    modality: str, templates: str | Iterable[str] | None = None
) -> tuple[str, ...]:
    """The prompt templates to use for zero-shot on inputs of ``modality``.

    ``templates=None`` gives :data:`DEFAULT_TEMPLATES` for the modality; a single
    string is one template; any other iterable of strings is used as given. Every
    template is validated (exactly one ``{}``).

    >>> templates_for("audio")[0]
    'the sound of a {}.'
    >>> templates_for("vision", "a sketch of a {}.")
    ('a sketch of a {}.',)
    """
    if templates is None:
        if modality not in DEFAULT_TEMPLATES:
            raise ValueError(
                f"no default templates for modality {modality!r}; expected one of "
                f"{sorted(DEFAULT_TEMPLATES)} or pass templates=..."
            )
        return DEFAULT_TEMPLATES[modality]
    if isinstance(templates, str):
        templates = (templates,)
    result = tuple(validate_template(t) for t in templates)
    if not result:
        raise ValueError("templates must not be empty")
    return result
