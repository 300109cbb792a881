"""The shop's nine products, as the Online Boutique catalog lists them (descriptions are our own)."""

from __future__ import annotations

from genproto import imagegeneration_pb2 as pb
from imagegen.domain import Product

PICTURE_PREFIX = "/static/img/products/"

PRODUCTS: list[Product] = [
    Product(
        id="OLJCESPC7Z",
        name="Sunglasses",
        description="Glossy black frames with smoky gradient lenses for bright days and easy style.",
        picture=PICTURE_PREFIX + "sunglasses.jpg",
        categories=("accessories",),
        price_units=19,
        price_nanos=990_000_000,
    ),
    Product(
        id="66VCHSJNUP",
        name="Tank Top",
        description="A soft cotton tank with a scoop neck and ribbed trim, made for warm afternoons.",
        picture=PICTURE_PREFIX + "tank-top.jpg",
        categories=("clothing", "tops"),
        price_units=18,
        price_nanos=990_000_000,
    ),
    Product(
        id="1YMWWN1N4O",
        name="Watch",
        description="A steel watch with a deep blue dial and a stitched cognac leather strap.",
        picture=PICTURE_PREFIX + "watch.jpg",
        categories=("accessories",),
        price_units=109,
        price_nanos=990_000_000,
    ),
    Product(
        id="L9ECAV7KIM",
        name="Loafers",
        description="Polished brown leather penny loafers that slip on for the office or the weekend.",
        picture=PICTURE_PREFIX + "loafers.jpg",
        categories=("footwear",),
        price_units=89,
        price_nanos=990_000_000,
    ),
    Product(
        id="2ZYFJ3GM2N",
        name="Hairdryer",
        description="A light, quiet hairdryer with a slim nozzle and two heat settings.",
        picture=PICTURE_PREFIX + "hairdryer.jpg",
        categories=("hair", "beauty"),
        price_units=24,
        price_nanos=990_000_000,
    ),
    Product(
        id="0PUK6V6EV0",
        name="Candle Holder",
        description="A turned brass candlestick that brings a warm glow to any table.",
        picture=PICTURE_PREFIX + "candle-holder.jpg",
        categories=("decor", "home"),
        price_units=18,
        price_nanos=990_000_000,
    ),
    Product(
        id="LS4PSXUNUM",
        name="Salt & Pepper Shakers",
        description="A matching pair of glazed ceramic shakers with polished steel caps.",
        picture=PICTURE_PREFIX + "salt-and-pepper-shakers.jpg",
        categories=("kitchen",),
        price_units=18,
        price_nanos=490_000_000,
    ),
    Product(
        id="9SIQT8TOJO",
        name="Bamboo Glass Jar",
        description="A clear glass jar with an airtight bamboo lid that keeps coffee beans fresh.",
        picture=PICTURE_PREFIX + "bamboo-glass-jar.jpg",
        categories=("kitchen",),
        price_units=5,
        price_nanos=490_000_000,
    ),
    Product(
        id="6E92ZMYYFZ",
        name="Mug",
        description="A generous glazed ceramic mug for your morning coffee or evening tea.",
        picture=PICTURE_PREFIX + "mug.jpg",
        categories=("kitchen",),
        price_units=8,
        price_nanos=990_000_000,
    ),
]


def to_proto(product: Product) -> pb.Product:
    """Returns the product as the shop's wire message."""
    return pb.Product(
        id=product.id,
        name=product.name,
        description=product.description,
        picture=product.picture,
        price_usd=pb.Money(
            currency_code=product.currency_code,
            units=product.price_units,
            nanos=product.price_nanos,
        ),
        categories=list(product.categories),
    )


def products_as_proto() -> list[pb.Product]:
    """Returns every catalog product as a genproto Product message."""
    return [to_proto(product) for product in PRODUCTS]
