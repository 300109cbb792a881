from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateCartImageRequest(_message.Message):
    __slots__ = ("user_id", "style_preference", "background_image_url", "cart_items")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STYLE_PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    CART_ITEMS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    style_preference: str
    background_image_url: str
    cart_items: _containers.RepeatedCompositeFieldContainer[CartItem]
    def __init__(self, user_id: _Optional[str] = ..., style_preference: _Optional[str] = ..., background_image_url: _Optional[str] = ..., cart_items: _Optional[_Iterable[_Union[CartItem, _Mapping]]] = ...) -> None: ...

class GenerateCartImageResponse(_message.Message):
    __slots__ = ("image_url", "generation_id", "status", "error_message", "image_variants")
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    image_url: str
    generation_id: str
    status: str
    error_message: str
    image_variants: _containers.RepeatedCompositeFieldContainer[ImageVariant]
    def __init__(self, image_url: _Optional[str] = ..., generation_id: _Optional[str] = ..., status: _Optional[str] = ..., error_message: _Optional[str] = ..., image_variants: _Optional[_Iterable[_Union[ImageVariant, _Mapping]]] = ...) -> None: ...

class UploadBackgroundRequest(_message.Message):
    __slots__ = ("image_data",)
    IMAGE_DATA_FIELD_NUMBER: _ClassVar[int]
    image_data: str
    def __init__(self, image_data: _Optional[str] = ...) -> None: ...

class UploadBackgroundResponse(_message.Message):
    __slots__ = ("image_url", "status", "error_message")
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    image_url: str
    status: str
    error_message: str
    def __init__(self, image_url: _Optional[str] = ..., status: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("generation_id",)
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    def __init__(self, generation_id: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("status", "image_url", "progress", "error_message", "queue_position", "estimated_seconds", "image_variants")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    status: str
    image_url: str
    progress: int
    error_message: str
    queue_position: int
    estimated_seconds: int
    image_variants: _containers.RepeatedCompositeFieldContainer[ImageVariant]
    def __init__(self, status: _Optional[str] = ..., image_url: _Optional[str] = ..., progress: _Optional[int] = ..., error_message: _Optional[str] = ..., queue_position: _Optional[int] = ..., estimated_seconds: _Optional[int] = ..., image_variants: _Optional[_Iterable[_Union[ImageVariant, _Mapping]]] = ...) -> None: ...

class CancelImageGenerationRequest(_message.Message):
    __slots__ = ("generation_id",)
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    def __init__(self, generation_id: _Optional[str] = ...) -> None: ...

class ImageVariant(_message.Message):
    __slots__ = ("width", "url", "mime_type")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    width: int
    url: str
    mime_type: str
    def __init__(self, width: _Optional[int] = ..., url: _Optional[str] = ..., mime_type: _Optional[str] = ...) -> None: ...

class ListStylesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImageStyle(_message.Message):
    __slots__ = ("name", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class ListStylesResponse(_message.Message):
    __slots__ = ("styles",)
    STYLES_FIELD_NUMBER: _ClassVar[int]
    styles: _containers.RepeatedCompositeFieldContainer[ImageStyle]
    def __init__(self, styles: _Optional[_Iterable[_Union[ImageStyle, _Mapping]]] = ...) -> None: ...

class CartItem(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    quantity: int
    def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class AddItemRequest(_message.Message):
    __slots__ = ("user_id", "item")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item: CartItem
    def __init__(self, user_id: _Optional[str] = ..., item: _Optional[_Union[CartItem, _Mapping]] = ...) -> None: ...

class EmptyCartRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetCartRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class Cart(_message.Message):
    __slots__ = ("user_id", "items")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    items: _containers.RepeatedCompositeFieldContainer[CartItem]
    def __init__(self, user_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[CartItem, _Mapping]]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Money(_message.Message):
    __slots__ = ("currency_code", "units", "nanos")
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    NANOS_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    units: int
    nanos: int
    def __init__(self, currency_code: _Optional[str] = ..., units: _Optional[int] = ..., nanos: _Optional[int] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("id", "name", "description", "picture", "price_usd", "categories")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PICTURE_FIELD_NUMBER: _ClassVar[int]
    PRICE_USD_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    picture: str
    price_usd: Money
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., picture: _Optional[str] = ..., price_usd: _Optional[_Union[Money, _Mapping]] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SearchProductsRequest(_message.Message):
    __slots__ = ("query",)
    QUERY_FIELD_NUMBER: _ClassVar[int]
    query: str
    def __init__(self, query: _Optional[str] = ...) -> None: ...

class SearchProductsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, results: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...
