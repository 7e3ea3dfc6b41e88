"""Automatic replies defaulted to "No minimum" between two replies to one sender (the
manual's nightmare case). Mailboxes whose reply is off and that never chose an
interval get the new default, one reply per sender per day (issue 16); a reply that is
on keeps what its owner set."""

from django.db import migrations

DAY = 24 * 3600


def default_interval(apps, schema_editor):
    Mailbox = apps.get_model("accounts", "Mailbox")
    Mailbox.objects.filter(autoreply_enabled=False, autoreply_interval__isnull=True).update(
        autoreply_interval=DAY
    )


class Migration(migrations.Migration):
    dependencies = [("panel", "0001_drop_unoffered_features")]

    operations = [migrations.RunPython(default_interval, migrations.RunPython.noop)]
