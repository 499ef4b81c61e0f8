"""Noise-like adversarial examples: one attack per file, all registered in :data:`ATTACKS`."""

from ric.nae.base import ATTACKS, Attack, make_attack, margin, register_attack
from ric.nae.cw_margin import CWMarginAttack
from ric.nae.digit_margin import DigitAttack
from ric.nae.rni import NoAttack

__all__ = ["ATTACKS", "Attack", "CWMarginAttack", "DigitAttack", "NoAttack", "make_attack", "margin", "register_attack"]
