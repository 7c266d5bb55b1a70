"""`/api/products`: the catalog, filtered and paged; one product in full; a product photo."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from sveta.api.deps import Offset, RowId, get_catalog, product_or_404, require_read
from sveta.api.errors import API, ApiError, documented
from sveta.api.schemas import ProductDetail, ProductPage
from sveta.catalog.browse import ProductQuery, image_path, list_products, product_detail
from sveta.catalog.queries import product_image_ids
from sveta.catalog.store import CatalogStore

router = APIRouter(prefix="/api", tags=["products"], dependencies=[Depends(require_read)], responses=documented(*API))
CACHED = {"Cache-Control": "max-age=3600"}  # a product's photos seldom change; an hour of reuse for the web page


def product_query(
    category: list[str] | None = Query(None, description="Category (e.g. Shirt, or the seller's 'Shirts')."),
    colour: list[str] | None = Query(None, description="Colour, e.g. 'Navy Blue'; repeatable."),
    gender: list[str] | None = Query(None, description="Men, Women, Boys, Girls, Unisex; repeatable."),
    brand: list[str] | None = Query(None, description="Brand; repeatable."),
    source: list[str] | None = Query(None, description="Source name (see /api/sources); repeatable."),
    min_price: float | None = Query(None, ge=0, description="Lowest price."),
    max_price: float | None = Query(None, ge=0, description="Highest price."),
    in_stock: bool = Query(False, description="Only available products."),
) -> ProductQuery:
    return ProductQuery(category, colour, gender, brand, source, min_price, max_price, in_stock)


@router.get("/products", summary="List products, filtered and paged")
def products(
    query: ProductQuery = Depends(product_query),
    limit: int = Query(50, ge=1, le=500, description="Products per page."),
    offset: Offset = 0,
    catalog: CatalogStore = Depends(get_catalog),
) -> ProductPage:
    return ProductPage.model_validate(list_products(catalog, query, limit, offset).as_dict())


@router.get(
    "/products/{ref}",
    summary="One product: variants, images, attributes with their origins",
    responses=documented(404),
)
def product(ref: str, catalog: CatalogStore = Depends(get_catalog)) -> ProductDetail:
    detail = product_detail(catalog, product_or_404(catalog, ref))
    if detail is None:  # removed between the two queries
        raise ApiError(404, f"no product {ref!r} in the catalog")
    for image in detail["images"]:
        image["href"] = f"/api/images/{image['id']}" if image["status"] == "cached" else None
    return ProductDetail.model_validate(detail)


@router.get(
    "/products/{ref}/image",
    summary="A product's first cached photo (for cards)",
    response_class=FileResponse,
    responses=documented(404),
)
def product_image(ref: str, catalog: CatalogStore = Depends(get_catalog)) -> FileResponse:
    for image_id in product_image_ids(catalog, product_or_404(catalog, ref)):
        path = image_path(catalog, image_id)
        if path is not None and Path(path).is_file():
            return FileResponse(path, headers=CACHED)
    raise ApiError(404, f"product {ref!r} has no photo in the image cache", "run `sveta images fetch`")


@router.get(
    "/images/{image_id}",
    summary="A product photo from the image cache",
    response_class=FileResponse,
    responses=documented(404),
)
def image(image_id: RowId, catalog: CatalogStore = Depends(get_catalog)) -> FileResponse:
    path = image_path(catalog, image_id)
    if path is None or not Path(path).is_file():
        raise ApiError(404, f"image {image_id} is not in the image cache", "run `sveta images fetch`")
    return FileResponse(path, headers=CACHED)
