"""Every table, for Alembic: importing the model modules registers them on the metadata."""

from __future__ import annotations

import adapters.models  # noqa: F401
import gateway.orders.models  # noqa: F401
import gateway.web.models  # noqa: F401
import gateway.webhooks.models  # noqa: F401
import tenants.models  # noqa: F401
from tenants.db import Base

metadata = Base.metadata
