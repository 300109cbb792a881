"""The README's configuration table against the code: each documented default is the default the service uses."""

import re
from pathlib import Path

from imagegen.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
# | `NAME` | `default` | meaning |  (rows whose default is "(empty)", "(unset)" or "(off)" have no backticks)
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*`([^`]*)`\s*\|", flags=re.MULTILINE)


def documented_defaults() -> dict[str, str]:
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return dict(ROW.findall(section))


def test_the_configuration_table_documents_defaults():
    defaults = documented_defaults()
    assert len(defaults) >= 40, f"the configuration table was not found or lost its rows: {sorted(defaults)}"


def test_setting_a_variable_to_its_documented_default_changes_nothing():
    baseline = Settings.from_env({})
    wrong = {}
    for name, default in documented_defaults().items():
        value = default.replace("$HTTP_PORT", str(baseline.http_port))
        if Settings.from_env({name: value}) != baseline:
            wrong[name] = default
    assert not wrong, f"README.md documents defaults the code does not use: {wrong}"


def test_a_wrong_documented_default_would_be_caught():
    baseline = Settings.from_env({})
    assert Settings.from_env({"PORT": "8000"}) != baseline
    assert Settings.from_env({"GEMINI_MODEL": "gemini-nano-banana-2.1"}) != baseline
