from django.contrib.auth.forms import BaseUserCreationForm


class FirstAdminForm(BaseUserCreationForm):
    """The first account: a superuser who then adds the clinic's users in admin."""

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.is_staff = True
        user.is_superuser = True
        if commit:
            user.save()
        return user
