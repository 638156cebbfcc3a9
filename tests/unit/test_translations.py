"""Every text of the pages has its French translation (the catalogue is compiled at install)."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "gateway" / "web"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def test_every_page_text_is_translated_into_french():
    wanted = {msg for _file, _line, msg, _comments, _ctx in
              extract_from_dir(str(WEB), METHODS, keywords={"_": None, "gettext": None})}
    with open(WEB / "translations" / "fr" / "LC_MESSAGES" / "messages.po", "rb") as f:
        french = {m.id: m.string for m in read_po(f) if m.id and not m.fuzzy}
    assert len(wanted) > 100  # the extraction found the pages' texts
    missing = sorted(m for m in wanted if not french.get(m))
    assert not missing, f"untranslated (make translations, then fill fr/messages.po): {missing}"
