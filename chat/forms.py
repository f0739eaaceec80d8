from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from chat import selectors, services, sign_in_lockout
from chat.errors import Rejected
from chat.models import ChatSession, Preset


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
    """The settings dialog of one chat. Like contrib.auth's forms, it validates
    everything in clean() (the bounds are the server's: services.session_settings_check)
    and saves in save(). An empty number means the server's default."""

    preset = forms.IntegerField(required=False)
    system_prompt = forms.CharField(required=False, strip=True)
    temperature = forms.FloatField(required=False)
    top_p = forms.FloatField(required=False)
    max_new_tokens = forms.IntegerField(required=False)

    def __init__(self, *args, session: ChatSession, **kwargs) -> None:
        self.session = session
        super().__init__(*args, **kwargs)

    def clean_preset(self) -> Preset | None:
        """The preset picked (None: no preset), among those the chat's owner may use."""
        preset_id = self.cleaned_data["preset"]
        if preset_id is None:
            return None
        try:
            return selectors.presets_for(self.session.owner).get(pk=preset_id)
        except Preset.DoesNotExist:
            raise ValidationError(
                "That preset is no longer available; choose another.", code="preset"
            ) from None

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                services.session_settings_check(session=self.session, **cleaned)
            except Rejected as rejected:
                raise ValidationError(str(rejected), code="bounds") from None
        return cleaned

    def save(self) -> ChatSession:
        return services.session_configure(session=self.session, **self.cleaned_data)

    def first_error(self) -> str:
        field, errors = next(iter(self.errors.items()))
        if field == NON_FIELD_ERRORS:
            return errors[0]
        label = {"max_new_tokens": "Max tokens", "top_p": "Top-p"}.get(field, field.capitalize())
        return f"{label}: {errors[0]}"


class PresetForm(forms.Form):
    """A user's own preset, new or changed. Validated in clean()
    (services.preset_check), saved in save() (services.preset_save)."""

    name = forms.CharField(required=False)
    system_prompt = forms.CharField(required=False)

    def __init__(self, *args, owner, preset: Preset | None, max_length: int, **kwargs) -> None:
        self.owner, self.preset, self.max_length = owner, preset, max_length
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        try:
            services.preset_check(cleaned["name"], cleaned["system_prompt"], self.max_length)
        except Rejected as rejected:
            raise ValidationError(str(rejected), code="preset") from None
        return cleaned

    def save(self) -> Preset:
        """Save it; raise Rejected when the owner has a preset of that name."""
        return services.preset_save(
            owner=self.owner, preset=self.preset, max_length=self.max_length, **self.cleaned_data
        )
