"""Who asked, when a front end many people share calls with one service token.

Open WebUI names its signed-in user in `X-OpenWebUI-User-*` headers (with
ENABLE_FORWARD_USER_INFO_HEADERS=true); OpenAI clients may send a `user`
field. MedServer cannot verify either: they are the front end's word, kept
beside the token that vouches for it in the audit trail and the answer's
provenance, so that an answer can be traced to the clinician who asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

_HEADERS = {
    "name": "X-OpenWebUI-User-Name",
    "id": "X-OpenWebUI-User-Id",
    "email": "X-OpenWebUI-User-Email",
    "role": "X-OpenWebUI-User-Role",
}
_LONGEST = 120


@dataclass(frozen=True)
class EndUser:
    """The person behind a front end's request, as the front end names them."""

    source: str  # "Open WebUI headers" or "user field"
    name: str = ""
    id: str = ""
    email: str = ""
    role: str = ""

    def label(self) -> str:
        """One line for the audit trail: 'Dr Ines Ruiz <ines@clinic> (id 7, Open WebUI headers)'."""
        who = self.name or self.email or self.id
        if self.email and self.name:
            who += f" <{self.email}>"
        extra = [f"id {self.id}"] if self.id and self.id != who else []
        extra += [f"role {self.role}"] if self.role else []
        return f"{who} ({', '.join([*extra, self.source])})"

    def as_dict(self) -> dict:
        fields = {"name": self.name, "id": self.id, "email": self.email, "role": self.role}
        return {"source": self.source, **{k: v for k, v in fields.items() if v}}


def end_user_of(request, user: str | None = None) -> EndUser | None:
    """The end user a request names: Open WebUI's headers first, else OpenAI's
    `user` field (checked to be a string by the body's model)."""
    # Open WebUI percent-encodes the name (HTTP headers are Latin-1): "Dr In%C3%A9s Ruiz".
    values = {
        field: _clean(unquote(request.headers.get(header, "")))
        for field, header in _HEADERS.items()
    }
    if any(values[field] for field in ("name", "id", "email")):
        return EndUser("Open WebUI headers", **values)
    cleaned = _clean(user or "")
    return EndUser("user field", id=cleaned) if cleaned else None


def _clean(value: str) -> str:
    """Printable text only, and short: it is shown in admin and written to the log."""
    return "".join(c for c in value if c.isprintable()).strip()[:_LONGEST]
