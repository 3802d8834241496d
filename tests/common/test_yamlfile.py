import pytest
import yaml

from common.errors import UserError
from common.yamlfile import load_yaml_text, read_yaml


@pytest.mark.parametrize("text", [
    "a: 1\nb: {c: [1, 2], d: null}\nlist:\n  - {x: 1}\n  - {x: 2}\n",
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",  # a merge key, one merged key overridden
])
def test_reads_what_safe_load_reads(text):
    assert load_yaml_text(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text,key,line", [
    ("train: {epochs: 3}\nmodel: {}\ntrain: {epochs: 5}\n", "train", 3),  # PyYAML alone keeps epochs 5
    ("model:\n  depth: 8\n  width: 3\n  depth: 14\n", "depth", 4),
    ("a: {b: 1, b: 2}\n", "b", 1),
])
def test_a_repeated_key_is_an_error_naming_key_and_line(tmp_path, text, key, line):
    assert yaml.safe_load(text)  # what this module guards against: PyYAML accepts it
    f = tmp_path / "cfg.yaml"
    f.write_text(text)
    with pytest.raises(UserError) as e:
        read_yaml(f)
    msg = str(e.value)
    assert f"key '{key}' appears twice" in msg and f"(line {line})" in msg and "\n" not in msg


def test_equal_keys_in_different_mappings_are_fine():
    assert load_yaml_text("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_bad_syntax_is_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model: {depth: [8\n")
    with pytest.raises(UserError, match="bad.yaml is not valid YAML") as e:
        read_yaml(f)
    assert "\n" not in str(e.value)


def test_a_python_tag_is_refused_before_it_runs(tmp_path, capsys):
    """yaml.unsafe_load would call os.system here; the project's loader is SafeLoader's."""
    from wrn1bit.cli import main

    marker = tmp_path / "pwned"
    f = tmp_path / "evil.yaml"
    f.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(UserError, match=r"evil\.yaml is not valid YAML: could not determine a constructor") as e:
        read_yaml(f)
    assert "\n" not in str(e.value)
    assert main(["train", "--config", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {f} is not valid YAML")
    assert not marker.exists()
    yaml.unsafe_load(f.read_text())  # the file does carry a payload
    assert marker.exists()
