"""`field__any=values`: membership in a list, sent to PostgreSQL as one array parameter.

Django spells `__in` with a placeholder per value, and psycopg's client-side binding parses
the query and converts each one: at the few hundred values of a dispatcher's claim and
re-checks, that was a tenth of a dispatching worker's time (issue 17.2). Other databases
(SQLite, the embedded default) get `__in`'s SQL.
"""

from django.db.models import Field
from django.db.models.lookups import In


@Field.register_lookup
class AnyOf(In):
    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [value for value in self.rhs if value is not None]
        array_type = self.lhs.output_field.db_type(connection)
        return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, values]
