# The metrics' shared store when there is no Redis (dashboard.metrics).

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0024_retention'),
    ]

    operations = [
        migrations.CreateModel(
            name='MetricSample',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('labels', models.CharField(help_text='The label values, as sorted JSON.', max_length=500)),
                ('value', models.FloatField(default=0)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('name', 'labels'), name='metric_sample_series')],
            },
        ),
    ]
