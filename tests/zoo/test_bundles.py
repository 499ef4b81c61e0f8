"""The zoo's tables agree with the shipped bundles: each data set's classifier is the one its RIC model was made
for, and the defaults are entries of those tables."""

import json

import pytest

from ric.zoo import bundles


@pytest.mark.parametrize("dataset", sorted(bundles.DATASET_MODELS))
def test_dataset_tables_match_the_shipped_configs(dataset):
    model = json.loads((bundles.SHIPPED_DIR / bundles.DATASET_MODELS[dataset] / "config.json").read_text())
    clf = json.loads((bundles.SHIPPED_DIR / bundles.DATASET_CLASSIFIERS[dataset] / "config.json").read_text())
    assert model["kind"] == "ric" and clf["kind"] == "classifier"
    assert model["classifier"] == bundles.DATASET_CLASSIFIERS[dataset]


def test_defaults_are_the_svhn_entries():
    assert bundles.DEFAULT_MODEL == bundles.DATASET_MODELS["svhn"]
    assert bundles.DEFAULT_CLASSIFIER == bundles.DATASET_CLASSIFIERS["svhn"]
