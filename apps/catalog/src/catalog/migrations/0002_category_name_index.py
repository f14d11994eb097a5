from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('catalog', '0001_initial')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Product',
            name=None,
            fields=['category_id', 'id'],
        ),
        ops.AddIndex(
            model_name='Product',
            index=Index(fields=['category_id', 'name', 'id']),
        ),
    ]
