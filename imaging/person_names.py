"""Does a text mention a person? Matching the parts of known names, in any script.

Used to drop a DICOM series description that names the patient (or a doctor,
an institution, an ID). It errs on the side of dropping: a description is
worth little, a name in the model's prompt or a chart export is a leak.

Both sides are normalised the same way: compatibility-decomposed (NFKD),
accents and other combining marks removed, case folded ("Wiesława" and
"WIESLAWA" match, so do "Παπαδόπουλος" and "ΠΑΠΑΔΟΠΟΥΛΟΣ"). A name is cut
into its components at DICOM's separators (^ between family and given names,
= between alphabetic, ideographic and phonetic forms) and at anything that is
not a letter or digit. The text mentions the name when:

- a component is a whole word of the text (two-letter names such as "Li" or
  "Wu" included; single letters, initials, are not names);
- a component of three or more characters, or of any length in a script
  written without spaces (Chinese, Japanese, Korean, Thai...), appears
  anywhere in the text with its spaces and punctuation removed ("王小明胸部CT",
  "LIWU"): names run into other words there;
- the components written together ("liwu", "王小明") appear so.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\W_]+")
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR")
# Letters NFKD leaves whole, as a description in plain ASCII spells them.
_PLAIN = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t", "þ": "th", "æ": "ae"}
    | {"œ": "oe"}
)


def normalise(text: str) -> str:
    """Casefolded, without accents or other combining marks (NFKD), Ł as L."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.casefold().translate(_PLAIN)


def components(name: str) -> list[str]:
    """The normalised parts of a name: "Kowalczyk^Wiesława" -> ["kowalczyk", "wieslawa"]."""
    return [part for part in _SEPARATORS.split(normalise(name)) if part]


def _unspaced(part: str) -> bool:
    return any(unicodedata.name(c, "").startswith(_UNSPACED_SCRIPTS) for c in part)


def mentions_any(text: str, names: Iterable[str]) -> bool:
    """Whether `text` mentions any of `names` (see the module's rules)."""
    words = components(text)
    word_set, joined = set(words), "".join(words)
    for name in names:
        parts = components(name)
        for part in parts:
            if len(part) >= 2 and part in word_set:
                return True
            if (len(part) >= 3 or _unspaced(part)) and part in joined:
                return True
        together = "".join(parts)
        if len(parts) > 1 and len(together) >= 3 and together in joined:
            return True
    return False
