"""The page where a clinician makes and revokes their own API tokens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from audit import trail


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's API tokens; a POST creates one and shows its key once."""
    created_key = None
    if request.method == "POST":
        token, created_key = tokens.api_token_create(
            owner=request.user, name=request.POST.get("name", "")
        )
        trail.record(trail.Action.API_TOKEN_CREATE, request=request, target=token)
        if request.htmx:
            context = {"token": token, "created_key": created_key}
            return render(request, "chat/api_tokens.html#token-created", context)
    owned = tokens.api_tokens_for(request.user)
    return render(request, "chat/api_tokens.html", {"tokens": owned, "created_key": created_key})


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if tokens.api_token_revoke(owner=request.user, token_id=token_id):
        trail.record(trail.Action.API_TOKEN_REVOKE, request=request, target=f"apitoken:{token_id}")
    token = get_object_or_404(tokens.api_tokens_for(request.user), pk=token_id)
    if request.htmx:
        return render(request, "chat/api_tokens.html#token-row", {"token": token})
    return redirect("api:api-tokens")
