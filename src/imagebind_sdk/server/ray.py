"""Ray Serve: model replicas across a Ray cluster behind one gateway (``pip install "imagebind-sdk[distributed]"``).

``app`` is an application builder, for ``serve run imagebind_sdk.server.ray:app`` and config
files; ``imagebind-sdk serve --engine ray`` builds the same application from its options.

.. code-block:: yaml

    applications:
      - name: imagebind
        import_path: imagebind_sdk.server.ray:app
        route_prefix: /
        args: {checkpoint: imagebind-huge, modalities: [text, vision], autoscale: "1:4", max_batch_size: 32}

Every value may also be a string (``serve run imagebind_sdk.server.ray:app replicas=2``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ray import serve
from ray.serve.config import AutoscalingConfig

from ..model.config import MODALITIES
from .ray_gateway import DEFAULT_RETRIES, Gateway, GatewayLimits
from .ray_replica import ModelReplica
from .settings import Settings, public_name

REPLICA_DEPLOYMENT = "ImageBind"
GATEWAY_DEPLOYMENT = "Gateway"
DEFAULT_CHECKPOINT = "imagebind-huge"
# Requests a gateway holds at once: it only forwards (Ray's default of 5 would serialise clients).
GATEWAY_MAX_ONGOING = 10_000
MIN_MAX_ONGOING = 64  # a replica's default max_ongoing_requests: at least this, and two batches' worth

# args of the model: name -> type (None: the value's own)
_MODEL_ARGS = {"checkpoint": str, "modalities": None, "backend": str, "device": str, "dtype": str,
               "quantize": str, "adapters": None, "offline": bool}
_REPLICA_ARGS = {"replicas": int, "autoscale": None, "num_cpus_per_replica": float, "num_gpus_per_replica": float,
                 "max_ongoing_requests": int, "max_queued_requests": int, "max_replicas_per_node": int,
                 "retries": int}
# Settings fields -> the type a string converts to (None: taken as given, e.g. ranges: a file or {model: file}).
_SETTINGS_TYPES: dict[str, type | None] = {f.name: None if f.default is None else type(f.default)
                                           for f in dataclasses.fields(Settings)}
_SETTINGS_TYPES["api_key"] = str
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
# Ray's autoscaling_config fields (pydantic 2 names them model_fields, pydantic 1 __fields__).
_AUTOSCALING_FIELDS = sorted(getattr(AutoscalingConfig, "model_fields", None) or AutoscalingConfig.__fields__)


class ArgsError(ValueError):
    """An application argument that cannot be used; the message names it."""


def _typed(name: str, value: Any, kind: type | None) -> Any:
    """``value`` as ``kind``; strings (from ``serve run ... key=value``) are converted."""
    if kind is None or value is None:
        return value
    if kind is bool:
        if isinstance(value, bool) or isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS.get(str(value).lower(), value)
    elif kind is tuple:
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else tuple(value)
    elif isinstance(value, kind) and not isinstance(value, bool):
        return value
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise ArgsError(f"{name}: expected {kind.__name__}, got {value!r}")


def _modalities(value: Any) -> list[str]:
    wanted = [m.strip() for m in value.split(",")] if isinstance(value, str) else list(value or MODALITIES)
    wanted = [m for m in wanted if m]
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise ArgsError(f"modalities: expected names from {', '.join(MODALITIES)}, got {value!r}")
    return wanted


def _adapters(value: Any) -> list[tuple[str | None, str]] | None:
    """``["NAME=SOURCE", "SOURCE", [NAME, SOURCE]]`` -> (name or None, source) pairs."""
    if not value:
        return None
    out: list[tuple[str | None, str]] = []
    for item in [value] if isinstance(value, str) else value:
        if isinstance(item, str):
            name, sep, source = item.partition("=")
            out.append((name, source) if sep and name and source else (None, item))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            raise ArgsError(f"adapters: expected NAME=SOURCE strings or [name, source] pairs, got {item!r}")
    return out


def parse_autoscale(value: Any) -> dict[str, Any]:
    """``"MIN:MAX"`` or a dict of Ray's ``autoscaling_config`` -> that dict (min <= max, max >= 1)."""
    if isinstance(value, str):
        low, sep, high = value.partition(":")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ArgsError(f"autoscale: expected MIN:MAX, e.g. 1:4, got {value!r}")
        value = {"min_replicas": int(low), "max_replicas": int(high)}
    if not isinstance(value, Mapping):
        raise ArgsError(f"autoscale: expected MIN:MAX or a mapping of Ray's autoscaling_config, got {value!r}")
    config = dict(value)
    unknown = sorted(set(config) - set(_AUTOSCALING_FIELDS))
    if unknown:  # Ray would ignore a misspelt delay silently
        raise ArgsError(f"autoscale: unknown fields {unknown}; Ray's autoscaling_config has {_AUTOSCALING_FIELDS}")
    low, high = config.get("min_replicas", 1), config.get("max_replicas", 1)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and high >= 1):
        raise ArgsError(f"autoscale: expected 0 <= MIN <= MAX and MAX >= 1, got {low}:{high}")
    try:
        AutoscalingConfig(**config)
    except ValueError as exc:  # pydantic's ValidationError names the field
        raise ArgsError(f"autoscale: {exc}") from None
    return config


def split_args(args: Mapping[str, Any] | None) -> tuple[dict, dict, dict]:
    """(model spec, server settings, replica options) from the application's args; unknown names are an error."""
    args = dict(args or {})
    known = {**_MODEL_ARGS, **_REPLICA_ARGS, **_SETTINGS_TYPES}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ArgsError(f"unknown args {unknown} for imagebind_sdk.server.ray:app; expected some of {sorted(known)}")
    typed = {k: _typed(k, v, known[k]) for k, v in args.items()}
    model = {k: typed[k] for k in _MODEL_ARGS if k in typed}
    settings = {k: typed[k] for k in _SETTINGS_TYPES if k in typed}
    replica = {k: typed[k] for k in _REPLICA_ARGS if k in typed}
    settings.setdefault("model_name", public_name(model.get("checkpoint") or DEFAULT_CHECKPOINT))
    try:
        Settings.from_kwargs(**settings)  # refused here, before anything is deployed
    except (TypeError, ValueError) as exc:
        raise ArgsError(str(exc)) from None
    return model_spec(model), settings, replica


def model_spec(model: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``ImageBind.load`` a replica uses (``checkpoint`` included)."""
    return {
        "checkpoint": model.get("checkpoint") or DEFAULT_CHECKPOINT,
        "modalities": _modalities(model.get("modalities")),
        "backend": model.get("backend") or "torch",
        "device": model.get("device"),
        "dtype": model.get("dtype"),
        "quantize": model.get("quantize"),
        "adapters": _adapters(model.get("adapters")),
        "local_files_only": True if model.get("offline") else None,
    }


def deployment_options(replica: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """``serve.deployment`` options of the model replicas: count or autoscaling, resources, queues."""
    if "replicas" in replica and "autoscale" in replica:
        raise ArgsError("replicas and autoscale exclude each other: give a fixed count or MIN:MAX")
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": replica.get("num_cpus_per_replica", 1.0),
                              "num_gpus": replica.get("num_gpus_per_replica", 0.0)},
        # The engine batches concurrent requests: Ray's default of 5 in flight would starve it.
        "max_ongoing_requests": replica.get("max_ongoing_requests", max(MIN_MAX_ONGOING, 2 * settings.max_batch_size)),
        "max_queued_requests": replica.get("max_queued_requests", settings.max_queue),
        "graceful_shutdown_timeout_s": settings.shutdown_timeout_s,
    }
    for name, value in zip(("num_cpus_per_replica", "num_gpus_per_replica"), options["ray_actor_options"].values()):
        if value < 0:
            raise ArgsError(f"{name}: must be >= 0, got {value}")
    if "autoscale" in replica:
        config = parse_autoscale(replica["autoscale"])
        config.setdefault("target_ongoing_requests", settings.max_batch_size)  # queue depth per replica
        options["autoscaling_config"] = config
    else:
        count = replica.get("replicas", 1)
        if count < 1:
            raise ArgsError(f"replicas: must be >= 1, got {count}")
        options["num_replicas"] = count
    if replica.get("max_replicas_per_node") is not None:
        options["max_replicas_per_node"] = replica["max_replicas_per_node"]
    return options


def app(args: Mapping[str, Any] | None = None) -> Any:
    """The Ray Serve application: a gateway (the HTTP ingress) and the model replicas behind it.

    ``args``: ``checkpoint``, ``modalities``, ``backend``/``device``/``dtype``/``quantize``/
    ``adapters``/``offline`` (as the CLI's global options), ``replicas`` or ``autoscale``
    (``"MIN:MAX"`` or Ray's ``autoscaling_config``), ``num_cpus_per_replica``,
    ``num_gpus_per_replica``, ``max_ongoing_requests``, ``max_queued_requests``,
    ``max_replicas_per_node``, ``retries``, and any field of the server's ``Settings``.
    """
    model, settings, replica = split_args(args)
    options = deployment_options(replica, Settings.from_kwargs(**settings))
    replicas = serve.deployment(ModelReplica, name=REPLICA_DEPLOYMENT, **options).bind(model, settings)
    retries = replica.get("retries", DEFAULT_RETRIES)
    if retries < 0:
        raise ArgsError(f"retries: must be >= 0, got {retries}")
    gateway = serve.deployment(Gateway, name=GATEWAY_DEPLOYMENT, ray_actor_options={"num_cpus": 0},
                               max_ongoing_requests=GATEWAY_MAX_ONGOING)
    # The gateway needs only its limits: the rest (ranges files, the key) is the replicas'.
    config = Settings.from_kwargs(**settings)
    return gateway.bind(replicas, GatewayLimits(config.max_request_bytes, config.retry_after_s,
                                                config.request_timeout_s), retries)


__all__ = ["ArgsError", "GATEWAY_DEPLOYMENT", "REPLICA_DEPLOYMENT", "app", "split_args"]
