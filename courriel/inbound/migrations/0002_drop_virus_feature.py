"""The platform has no virus scanner: the "virus" feature, offered and stored before
but never acted on, is removed from every domain rather than left as a promise."""

from django.db import migrations


def drop_virus(apps, schema_editor):
    Domain = apps.get_model("accounts", "Domain")
    for domain in Domain.objects.all().only("pk", "features"):
        if "virus" in (domain.features or []):
            domain.features = [f for f in domain.features if f != "virus"]
            domain.save(update_fields=["features"])


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0001_initial"),
        ("accounts", "0002_dkim_key"),
    ]

    operations = [migrations.RunPython(drop_virus, migrations.RunPython.noop)]
