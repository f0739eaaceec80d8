"""The chat pages, one module per page (sessions, messages, account); shared lookups in base."""
