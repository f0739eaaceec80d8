from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.core.exceptions import ValidationError

from chat import sign_in_lockout


class LockoutMixin:
    """Refuses a locked account's sign-in before its password is checked."""

    locked = False  # the page says why, rather than "wrong password"

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and sign_in_lockout.is_locked(username):
            self.locked = True
            raise ValidationError(sign_in_lockout.LOCKED, code="locked")
        return super().clean()


class SignInForm(LockoutMixin, AuthenticationForm):
    """The sign-in page's form."""


class AdminSignInForm(LockoutMixin, AdminAuthenticationForm):
    """Admin's own sign-in form."""


class FirstAdminForm(BaseUserCreationForm):
    """The first account: a superuser who then adds the clinic's users in admin."""

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.is_staff = True
        user.is_superuser = True
        if commit:
            user.save()
        return user


class SessionSettingsForm(forms.Form):
    """Reads the settings dialog's fields; the bounds are checked by
    services.session_configure. An empty number means the server's default."""

    preset = forms.IntegerField(required=False)
    system_prompt = forms.CharField(required=False, strip=True)
    temperature = forms.FloatField(required=False)
    top_p = forms.FloatField(required=False)
    max_new_tokens = forms.IntegerField(required=False)

    def first_error(self) -> str:
        field, errors = next(iter(self.errors.items()))
        label = {"max_new_tokens": "Max tokens", "top_p": "Top-p"}.get(field, field.capitalize())
        return f"{label}: {errors[0]}"


class PresetForm(forms.Form):
    """A user's own preset; services.preset_save checks names and lengths."""

    name = forms.CharField(required=False)
    system_prompt = forms.CharField(required=False)
