"""The API's Blueprint: flask-smorest's, with argument schemas built once."""

from __future__ import annotations

import flask_smorest


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema, *args, **kwargs):
        # webargs builds a schema given as a class anew on every request (and its nested
        # schemas with it); an instance is reused, and loading keeps no state in it.
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
