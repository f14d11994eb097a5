"""Demo data for `make run`: a few categories and ~50 products, loaded once into an empty database."""

from __future__ import annotations

from catalog.categories.models import Category
from catalog.categories.schemas import CategoryIn
from catalog.categories.service import create_category
from catalog.products.models import ProductStatus
from catalog.products.schemas import ProductIn
from catalog.products.service import create_product

CATEGORIES = {
    "desk-lamps": ("Desk lamps", ["Arc", "Clamp", "Swing-arm", "Banker", "Mushroom", "Tube", "Pixel", "Dome"]),
    "chairs": ("Chairs", ["Task", "Stool", "Lounge", "Kneeling", "Drafting", "Saddle", "Mesh", "Rocking"]),
    "desks": ("Desks", ["Standing", "Corner", "Writing", "Folding", "Trestle", "Secretary"]),
    "storage": ("Storage", ["Drawer", "Shelf", "Crate", "Cabinet", "Locker", "Pegboard", "Bin", "Rack"]),
    "cables": ("Cables", ["USB-C", "HDMI", "DisplayPort", "Ethernet", "Extension", "Braided", "Magnetic"]),
    "stationery": (
        "Stationery",
        [
            "Notebook",
            "Fountain pen",
            "Pencil",
            "Ruler",
            "Stapler",
            "Marker",
            "Sticky notes",
            "Eraser",
            "Clipboard",
            "Ink",
        ],
    ),
}
CURRENCIES = ("EUR", "USD", "GBP", "JPY")


async def load_demo_data(actor: str = "demo-seed") -> int:
    """Create the demo catalog unless categories already exist; returns the products created."""
    if await Category.exists():
        return 0
    created = 0
    for slug, (title, names) in CATEGORIES.items():
        await create_category(CategoryIn(slug=slug, name=title, description=f"Demo {title.lower()}"))
        for n, name in enumerate(names):
            currency = CURRENCIES[created % len(CURRENCIES)]
            price = str(1200 + 150 * n) if currency == "JPY" else f"{9 + 7 * n}.{(created * 37) % 100:02d}"
            await create_product(
                ProductIn(
                    sku=f"{slug.upper()}-{n + 1:03d}",
                    name=f"{name} {title.lower().rstrip('s')}",
                    description=f"A demo {name.lower()} from the {title.lower()} range.",
                    category=slug,
                    currency=currency,
                    price=price,
                    stock=(created * 7) % 40,
                    status=ProductStatus.ACTIVE if n % 5 else ProductStatus.DRAFT,
                ),
                actor,
            )
            created += 1
    return created
