"""The catalog: products, variants, images and attributes in a SQL database (SQLite or Postgres)."""
