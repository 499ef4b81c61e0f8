"""The model zoo: shipped bundles (``ric/zoo/models/<name>/``: safetensors weights, ``config.json``, model card)
and the functions that find, read and write bundles."""

from ric.zoo.bundles import (
    SHIPPED_DIR,
    codec_sha256,
    dataset_of,
    load_codec_weights,
    load_weights,
    read_config,
    resolve,
    resolve_shipped,
    save_bundle,
    shipped,
)

__all__ = ["SHIPPED_DIR", "codec_sha256", "dataset_of", "load_codec_weights", "load_weights", "read_config", "resolve",
           "resolve_shipped", "save_bundle", "shipped"]
