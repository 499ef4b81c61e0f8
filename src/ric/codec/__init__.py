"""The paper scheme's learned codec: network layers, registered codec models, and the one composition
encode → scramble → mix → quantize (and its inverse) shared by the scheme and by training."""

from ric.codec import hiding  # noqa: F401  (registers the ddh and hinet baselines)
from ric.codec.compose import encrypt_pixels, quantize, recover, scramble, srl_mix, srl_unmix, unscramble
from ric.codec.layers import MultiKernelBlock, SEResBlock, SqueezeExcite
from ric.codec.models import CODECS, IdentityCodec, PaperCodec, ResidualCodec, make_codec, register_codec

__all__ = ["CODECS", "IdentityCodec", "MultiKernelBlock", "PaperCodec", "ResidualCodec", "SEResBlock", "SqueezeExcite",
           "encrypt_pixels", "make_codec", "quantize", "recover", "register_codec", "scramble", "srl_mix", "srl_unmix",
           "unscramble"]
