"""``ric export``: a classifier's network as ONNX, its preprocessing as JSON beside it."""

from __future__ import annotations

import json
from pathlib import Path

from ric.cli.common import add_output

HELP = "write a classifier's network as ONNX, its preprocessing as JSON beside it"


def add_arguments(s) -> None:
    s.add_argument("classifier", help="zoo name, bundle folder, TorchScript file, torchvision:NAME or module:factory")
    s.add_argument("--classifier-config", type=Path, help="JSON for the last three (as for encrypt)")
    s.add_argument("--onnx", required=True, type=Path, metavar="FILE",
                   help="the ONNX file (fixed input size, free batch axis); FILE with .json gets the preprocessing")
    s.add_argument("--force", action="store_true", help="replace existing files")
    add_output(s, False)


def run(args) -> int:
    from ric.classifiers import load_classifier
    from ric.stacks.export import export_onnx, need_onnx

    need_onnx()
    clf = load_classifier(args.classifier, config=args.classifier_config)
    model, side = export_onnx(clf, args.onnx, force=args.force)
    if args.json:
        print(json.dumps({"onnx": str(model), "preprocessing": str(side), "classifier": clf.ident}))
    else:
        print(f"wrote {model} ({clf.ident}, input {list(clf.input_shape)}) and {side}")
    return 0
