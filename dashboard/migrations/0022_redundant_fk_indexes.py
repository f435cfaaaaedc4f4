# The foreign keys' own indexes repeat the first column of wider ones (the
# items' unique key, sync_company_time, the states' unique key): every insert
# paid for an index no query needs.

import importlib

import django.db.models.deletion
from django.db import migrations, models

from dashboard.db import online

# SQLite remakes a table to change a column, and the rollup's triggers on the
# syncs table go with it.
restore_sqlite_triggers = importlib.import_module(
    "dashboard.migrations.0014_sync_platform"
).restore_sqlite_triggers


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('dashboard', '0021_company_outstanding_index'),
    ]

    operations = [
        online.DropFieldIndexConcurrently(
            model_name='pushitem',
            name='sync',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='items', to='dashboard.sync'),
        ),
        online.DropFieldIndexConcurrently(
            model_name='sync',
            name='company',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='syncs', to='dashboard.company'),
        ),
        online.DropFieldIndexConcurrently(
            model_name='transactionstate',
            name='company',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='dashboard.company'),
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
    ]

