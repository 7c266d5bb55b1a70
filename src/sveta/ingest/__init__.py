"""Every way a catalog gets in: Shopify stores, CSV / JSONL feeds, folders of photos."""
