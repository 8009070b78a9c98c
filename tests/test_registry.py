import pytest

from benchmark.registry import Registry, RegistryError


@pytest.fixture
def registry() -> Registry[str]:
    reg: Registry[str] = Registry("method")
    for name in ("teacher", "student", "vanilla_kd", "kd_a", "kd_b"):
        reg.register(name)(name.upper())
    return reg


def test_get_returns_registered_item(registry: Registry[str]) -> None:
    assert registry.get("vanilla_kd") == "VANILLA_KD"


def test_unknown_name_suggests_the_closest(registry: Registry[str]) -> None:
    with pytest.raises(RegistryError) as err:
        registry.get("vanila_kd")
    assert str(err.value) == "unknown method 'vanila_kd'; did you mean 'vanilla_kd'?"


def test_unknown_name_without_close_match_lists_choices(registry: Registry[str]) -> None:
    with pytest.raises(RegistryError, match="choose from teacher, student"):
        registry.get("zzzzzz")


def test_duplicate_registration_is_an_error(registry: Registry[str]) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("student")("again")


@pytest.mark.parametrize(("spec", "expected"), [
    ("all", ["teacher", "student", "vanilla_kd", "kd_a", "kd_b"]),
    ("kd_b,teacher", ["kd_b", "teacher"]),
    ("kd_*", ["kd_a", "kd_b"]),
    ("kd_*,kd_a,student", ["kd_a", "kd_b", "student"]),
])
def test_select(registry: Registry[str], spec: str, expected: list[str]) -> None:
    assert registry.select(spec) == expected


@pytest.mark.parametrize("spec", ["", "nope_*", "teacher,vanila_kd"])
def test_select_rejects_bad_specs(registry: Registry[str], spec: str) -> None:
    with pytest.raises(RegistryError):
        registry.select(spec)
