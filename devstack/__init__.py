"""Local stand-ins for the shop's cart, catalog and product pictures, for the demo and the tests."""

from devstack.catalog import PRODUCTS, products_as_proto
from devstack.pictures import PICTURE_SLUGS, draw_product_picture
from devstack.servers import DevStack, start_devstack

__all__ = ["PICTURE_SLUGS", "PRODUCTS", "DevStack", "draw_product_picture", "products_as_proto", "start_devstack"]
