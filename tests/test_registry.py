"""The registries refuse a second object under a taken name, and keep the first one."""

import pytest

from ric.nae import ATTACKS, register_attack
from ric.registry import registrar
from ric.schemes import SCHEMES
from ric.schemes.base import register_scheme


def test_duplicate_name_is_refused_and_the_first_object_stays():
    table: dict = {}
    register = registrar(table, "name")

    @register("a")
    class First:
        pass

    with pytest.raises(ValueError, match="'a' is already registered"):
        @register("a")
        class Second:
            pass

    assert table == {"a": First} and First.name == "a"
    assert register("a")(First) is First  # the same object again is harmless


@pytest.mark.parametrize("register, table, name", [(register_scheme, SCHEMES, "exact"),
                                                   (register_attack, ATTACKS, "cw-margin")])
def test_shipped_registries_refuse_duplicates(register, table, name):
    before = table[name]
    with pytest.raises(ValueError, match="already registered"):
        register(name)(type("Impostor", (), {}))
    assert table[name] is before
