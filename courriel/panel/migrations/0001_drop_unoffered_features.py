"""The panel offered "DNS domain", "Website", "SSL website" and "Log file rotation"
and only stored them: the platform does none of these. They are removed from every
domain rather than left as promises (issue 16); mail and spam filtering stay."""

from django.db import migrations

KEPT = ("mail", "spam")


def drop_unoffered(apps, schema_editor):
    Domain = apps.get_model("accounts", "Domain")
    for domain in Domain.objects.all().only("pk", "features"):
        features = list(domain.features or [])
        kept = [f for f in features if f in KEPT]
        if "mail" not in kept:
            kept.insert(0, "mail")
        if kept != features:
            domain.features = kept
            domain.save(update_fields=["features"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_dkim_key")]

    operations = [migrations.RunPython(drop_unoffered, migrations.RunPython.noop)]
