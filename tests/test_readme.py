"""The README's register table is the one generated from hw/regmap.py."""
from pathlib import Path

from hw.params import ArrayConfig
from hw.regmap import readme_with_regmap

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_register_table_is_generated_from_the_regmap():
    text = README.read_text()
    assert text == readme_with_regmap(text, ArrayConfig()), \
        "README.md's register table is stale: run `python -m hw.regmap --readme README.md`"
