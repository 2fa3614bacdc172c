from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("versioned_items", "0003_grant"),
    ]

    operations = [
        migrations.AddField(
            model_name="version",
            name="comment",
            field=models.TextField(
                blank=True,
                db_default="",
                default="",
                help_text="Why this version was written: an edit summary, a commit message.",
                verbose_name="comment",
            ),
        ),
    ]
