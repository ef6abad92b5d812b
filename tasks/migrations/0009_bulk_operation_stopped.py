from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0008_attempt_run_as"),
    ]

    operations = [
        migrations.AlterField(
            model_name="bulkoperation",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("running", "Running"),
                    ("done", "Done"),
                    ("failed", "Failed"),
                    ("stopped", "Stopped"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
    ]
