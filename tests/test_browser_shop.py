"""The shopper's side in a real browser: the demo shop's cart page (the frontend kit's handlers, partial
and script) on the dev stack and the real service, driven in headless Chromium by Playwright.

With a bucket, the service stores in gcp-storage-emulator (STORAGE_EMULATOR_HOST), in public and in signed
URL mode: the page shows the picture from the bucket's URL, and the download link is the shop's own.

Screenshots of every finished state go to out/screenshots/.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devstack.process import free_port
from devstack.shop import DemoShop, build_demoshop
from tests.fakes.gcs_emulator import GcsEmulator, service_account_key
from tests.fakes.queued_service import QueuedService
from tests.service import wait_for
from tests.test_gcs_store import verify_v4_signature

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "out" / "screenshots"
# Generous: the machine may be loaded; the page's own polling gives up after 3 minutes.
FINISHED_MS = 90_000


def chromium_path() -> str:
    """Debian's Chromium (the browser build Playwright would download cannot be fetched here)."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("Chromium is not installed: `make test` installs it with .ci/install-system-packages")


@pytest.fixture(scope="module")
def demoshop_binary(tmp_path_factory) -> Path:
    return build_demoshop(tmp_path_factory.mktemp("demoshop") / "demoshop")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory, demoshop_binary):
    """A demo shop whose product pictures answer slowly, so a generation's progress can be watched."""
    with DemoShop(tmp_path_factory.mktemp("shop"), binary=demoshop_binary, picture_latency=1.5) as running:
        yield running


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.locator("#cart-image").scroll_into_view_if_needed()
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_progress(page: Page) -> None:
    """Records every value the progress bar shows, in window.progressSeen."""
    page.evaluate("""() => {
        window.progressSeen = [];
        const bar = document.querySelector('[role=progressbar]');
        new MutationObserver(() => window.progressSeen.push(Number(bar.getAttribute('aria-valuenow'))))
            .observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
    }""")


def fill_cart(shop: DemoShop, page: Page, product_ids: tuple[str, ...]) -> str:
    """Puts these products in the page's session cart (instead of the sample) and reloads; returns the session.

    Each test that watches progress uses products no other test pictures: the service then fetches their
    (slowed-down) pictures, so the generation lasts seconds whatever order the tests run in.
    """
    session = next(c["value"] for c in page.context.cookies() if c["name"] == "shop_session-id")
    shop.stack.cart.empty(session)
    for product_id in product_ids:
        shop.stack.add_to_cart(session, product_id, 1)
    page.reload()
    return session


def status_requests(page: Page) -> int:
    """How many status requests the page has made (the browser's own resource timing, read live)."""
    return page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/cart/image/status/')).length")


def stored(shop: DemoShop, url: str) -> Path:
    """The file behind one of the local store's URLs (/cart/image/images/<kind>/<name>)."""
    assert shop.service is not None
    return Path(shop.service.env["IMAGE_STORE_DIR"]) / url.split("/cart/image/images/", 1)[1]


def test_generate_shows_progress_then_the_picture_with_a_download(shop: DemoShop, page: Page):
    page.goto(shop.url)
    fill_cart(shop, page, ("66VCHSJNUP", "LS4PSXUNUM"))  # tank top, salt & pepper shakers
    expect(page.get_by_role("heading", name="Picture your cart")).to_be_visible()
    page.get_by_text("Vintage", exact=True).click()
    expect(page.get_by_role("radio", name="Vintage")).to_be_checked()
    watch_progress(page)

    page.get_by_role("button", name="Generate image").click()
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.get_by_text("Drawing your picture…")).to_be_visible(timeout=FINISHED_MS)
    download = page.get_by_role("link", name="Download picture")
    expect(download).to_be_visible(timeout=FINISHED_MS)
    expect(page.get_by_role("progressbar")).to_be_hidden()
    screenshot(page, "1-generated-vintage")

    seen = page.evaluate("window.progressSeen")
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen) and seen[-1] == 100, seen
    image = page.get_by_role("img", name="A picture of the products in your cart")
    # On a desktop the 560 px panel needs more than the 512 px variant: the 768 px one is shown.
    assert image.evaluate("img => img.complete && img.currentSrc.endsWith('-w768.webp')")

    src = image.get_attribute("src")
    assert src.startswith("/cart/image/images/generated/")  # the local store, through the shop
    assert Image.open(stored(shop, src)).size == (1024, 1024)
    variant = image.get_attribute("srcset").split(",")[0].strip().split(" ")
    assert variant[1] == "512w" and Image.open(stored(shop, variant[0])).size == (512, 512)
    href = download.get_attribute("href")
    assert download.get_attribute("download") == "my-cart-vintage.jpg"  # COLLAGE_FORMAT's default, jpeg
    with page.expect_download() as started:
        download.click()
    assert started.value.suggested_filename == "my-cart-vintage.jpg"
    saved = Path(started.value.path()).read_bytes()
    assert saved == stored(shop, src).read_bytes()
    assert Image.open(io.BytesIO(saved)).format == "JPEG"
    answer = page.request.get(shop.shop.base_url + href)
    assert answer.headers["content-type"] == "image/jpeg"


def test_a_photo_uploaded_through_the_file_input_becomes_the_background(shop: DemoShop, page: Page, tmp_path):
    photo = tmp_path / "beach.jpg"
    Image.new("RGB", (900, 600), (20, 170, 60)).save(photo, "JPEG")
    page.goto(shop.url)
    page.get_by_text("Minimalist", exact=True).click()
    page.get_by_label("Background photo").set_input_files(str(photo))
    expect(page.get_by_text("Your photo will be the background.")).to_be_visible(timeout=FINISHED_MS)
    expect(page.get_by_role("img", name="Your background photo")).to_be_visible()
    # The file input still names the chosen photo (it must not read "No file chosen" next to its preview).
    chosen = page.get_by_label("Background photo").evaluate("input => Array.from(input.files, f => f.name)")
    assert chosen == ["beach.jpg"]

    page.get_by_role("button", name="Generate image").click()
    image = page.get_by_role("img", name="A picture of the products in your cart")
    expect(image).to_be_visible(timeout=FINISHED_MS)
    screenshot(page, "2-generated-with-background")

    src = image.get_attribute("src")
    picture = Image.open(stored(shop, src)).convert("RGB")
    backgrounds = list((stored(shop, src).parent.parent / "backgrounds").iterdir())
    assert len(backgrounds) == 1  # the upload, stored by the service
    # The uploaded green shows around the products; no style's own backdrop is green.
    r, g, b = picture.resize((16, 16)).getpixel((0, 15))
    assert g > r and g > b, (r, g, b)


def upload_a_text_file(shop: DemoShop, page: Page, tmp_path):
    """Opens the cart page and picks a text file as the background: the upload's state says it is refused."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    page.goto(shop.url)
    page.get_by_label("Background photo").set_input_files(str(notes))
    state = page.locator("#cart-image-upload-state")
    expect(state).to_have_text("This file is not a PNG, JPEG or WebP image.", timeout=FINISHED_MS)
    return state


def test_a_text_file_is_refused_with_a_readable_message(shop: DemoShop, page: Page, tmp_path):
    upload_a_text_file(shop, page, tmp_path)
    expect(page.get_by_role("img", name="Your background photo")).to_be_hidden()
    expect(page.get_by_role("button", name="Generate image")).to_be_enabled()
    screenshot(page, "3-text-file-refused")


def test_on_a_phone_with_the_keyboard_only(shop: DemoShop, browser: Browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(shop.url)
        page.get_by_role("radio", name="Modern").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("radio", name="Minimalist")).to_be_checked()
        page.keyboard.press("Tab")  # the file input
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Generate image")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("link", name="Download picture")).to_be_visible(timeout=FINISHED_MS)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        screenshot(page, "4-phone")
    finally:
        context.close()


def test_a_service_that_is_down_shows_an_error_not_a_spinner(tmp_path, demoshop_binary, page: Page):
    with DemoShop(tmp_path, binary=demoshop_binary, service_addr=f"127.0.0.1:{free_port()}") as down:
        page.goto(down.url)
        page.get_by_role("button", name="Generate image").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("unavailable right now", timeout=FINISHED_MS)
        expect(page.get_by_role("progressbar")).to_be_hidden()
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        expect(page.get_by_role("button", name="Generate image")).to_be_enabled()
        screenshot(page, "5-service-down")


def test_polling_stops_while_the_page_is_hidden_and_resumes_when_shown(shop: DemoShop, browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(shop.url)
        fill_cart(shop, page, ("1YMWWN1N4O", "L9ECAV7KIM", "2ZYFJ3GM2N"))  # watch, loafers, hairdryer
        page.evaluate("""() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.pageHidden === true});
            window.pageHidden = true;
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        with page.expect_response("**/cart/image/generate") as answer:
            page.get_by_role("button", name="Generate image").click()
        generation_id = answer.value.json()["id"]
        assert shop.service is not None
        finished, _ = shop.service.wait_finished(generation_id, timeout=FINISHED_MS / 1000)
        assert finished.status == "completed"
        assert status_requests(page) == 1  # the first look, made at once; none while hidden
        expect(page.get_by_role("progressbar")).to_be_visible()
        screenshot(page, "6-in-progress")

        page.evaluate("() => { window.pageHidden = false; document.dispatchEvent(new Event('visibilitychange')); }")
        expect(page.get_by_role("link", name="Download picture")).to_be_visible(timeout=FINISHED_MS)
        assert status_requests(page) == 2
    finally:
        context.close()


# With a bucket: the service on gcp-storage-emulator, the browser fetching the bucket's URLs.

SIGNER = "imagegen@shop-project.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def emulator():
    with GcsEmulator(bucket="shop-images") as running:
        yield running


@pytest.fixture(scope="module", params=["public", "signed"])
def bucket_shop(request, tmp_path_factory, demoshop_binary, emulator):
    """The demo shop whose service stores in the emulator's bucket, in one IMAGE_URL_MODE; yields
    (shop, mode, the signing key's public key or None)."""
    mode = request.param
    workdir = tmp_path_factory.mktemp(f"bucket-{mode}")
    env = {**emulator.env(), "IMAGE_URL_MODE": mode}
    public_key = None
    if mode == "signed":
        # Signed URLs need a key that signs; the emulator's uploads stay anonymous.
        info, public_key = service_account_key(SIGNER, project="shop-project")
        key_file = workdir / "signer-key.json"
        key_file.write_text(json.dumps(info))
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key_file)
    with DemoShop(workdir, service_env=env, binary=demoshop_binary) as running:
        yield running, mode, public_key


def test_with_a_bucket_the_picture_shows_from_its_url_and_downloads_through_the_shop(bucket_shop, emulator,
                                                                                     page: Page):
    shop, mode, public_key = bucket_shop
    style = {"public": "Luxury", "signed": "Rustic"}[mode]
    page.goto(shop.url)
    page.get_by_text(style, exact=True).click()
    page.get_by_role("button", name="Generate image").click()
    image = page.get_by_role("img", name="A picture of the products in your cart")
    expect(image).to_be_visible(timeout=FINISHED_MS)
    # A desktop's 560 px panel shows the 768 px variant, from the bucket like the picture.
    shown = image.evaluate("img => img.complete && img.currentSrc")
    assert shown and shown.split("?", 1)[0].endswith("-w768.webp"), shown
    screenshot(page, f"7-bucket-{mode}")

    # The page shows the picture straight from the bucket (here the emulator), no CORS involved.
    src = image.get_attribute("src")
    prefix = f"{emulator.endpoint}/{emulator.bucket}/generated/"
    assert src.startswith(prefix), src
    name = src[len(emulator.endpoint) + len(emulator.bucket) + 2:].split("?", 1)[0]
    if mode == "signed":
        params = verify_v4_signature(src, public_key)
        assert params["X-Goog-Credential"].startswith(SIGNER + "/")
    else:
        assert "?" not in src
    # The 512 px variant's URL comes from the bucket's store too: signed like the picture in signed mode.
    variant, width = image.get_attribute("srcset").split(",")[0].strip().split(" ")
    assert width == "512w" and variant.split("?", 1)[0].endswith("-w512.webp") and variant.startswith(prefix)
    if mode == "signed":
        assert verify_v4_signature(variant, public_key)["X-Goog-Credential"].startswith(SIGNER + "/")
    else:
        assert "?" not in variant
    assert ("GET", shown[len(emulator.endpoint):]) in emulator.requests  # the browser's own request
    stored = emulator.client().bucket(emulator.bucket).get_blob(name)
    assert stored.content_type == "image/jpeg"
    assert stored.cache_control == {"public": "public", "signed": "private"}[mode] + ", max-age=31536000, immutable"

    # The download link is the shop's (same origin), so following it saves the file.
    download = page.get_by_role("link", name="Download picture")
    href = download.get_attribute("href")
    assert href.startswith("/cart/image/download/"), href
    with page.expect_download() as started:
        download.click()
    filename = f"my-cart-{style.lower()}.jpg"
    assert started.value.suggested_filename == filename
    saved = Path(started.value.path()).read_bytes()
    assert saved == stored.download_as_bytes()
    assert Image.open(io.BytesIO(saved)).format == "JPEG"
    answer = page.request.get(shop.shop.base_url + href)
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["content-disposition"] == f"attachment; filename={filename}"


# The shopper's first look: the feature is seen without scrolling, errors go once the next action starts,
# and the picture comes in the size the screen needs.

@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
def test_the_feature_is_in_the_first_viewport_and_brings_the_panel_into_view(shop: DemoShop, browser: Browser,
                                                                             width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 600)
    page = context.new_page()
    try:
        page.goto(shop.url)
        fill_cart(shop, page, ("OLJCESPC7Z", "0PUK6V6EV0", "6E92ZMYYFZ"))  # sunglasses, candle holder, mug
        action = page.get_by_role("button", name="Picture your cart")
        expect(action).to_be_in_viewport(ratio=1.0)
        assert page.evaluate("window.scrollY") == 0
        assert action.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(206, 6, 49)"  # the shop's red
        assert action.evaluate("b => getComputedStyle(b).borderRadius") == "22px"  # a pill, like Place Order
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"8-first-view-{width}x{height}.png"))

        action.click()
        expect(page.get_by_role("button", name="Generate image")).to_be_in_viewport(ratio=1.0)
        expect(page.get_by_role("radio", name="Modern")).to_be_focused()
        page.screenshot(path=str(SCREENSHOTS / f"9-panel-in-view-{width}x{height}.png"))
    finally:
        context.close()


def test_a_refused_uploads_message_is_gone_once_the_next_picture_is_made(shop: DemoShop, page: Page, tmp_path):
    state = upload_a_text_file(shop, page, tmp_path)

    page.get_by_role("button", name="Generate image").click()
    expect(state).to_have_text("")  # gone as soon as the generation starts
    expect(page.get_by_role("link", name="Download picture")).to_be_visible(timeout=FINISHED_MS)
    expect(page.get_by_text("This file is not a PNG, JPEG or WebP image.")).to_have_count(0)
    screenshot(page, "10-error-cleared")


def test_a_generation_error_is_gone_once_a_new_photo_is_chosen(tmp_path, demoshop_binary, page: Page):
    photo = tmp_path / "beach.jpg"
    Image.new("RGB", (400, 300), (20, 170, 60)).save(photo, "JPEG")
    with DemoShop(tmp_path, binary=demoshop_binary, service_addr=f"127.0.0.1:{free_port()}") as down:
        page.goto(down.url)
        page.get_by_role("button", name="Generate image").click()
        expect(page.get_by_role("alert")).to_contain_text("unavailable right now", timeout=FINISHED_MS)

        page.get_by_label("Background photo").set_input_files(str(photo))
        expect(page.get_by_role("alert")).to_be_hidden()


def picture_bytes(page: Page) -> tuple[str, int]:
    """The cart picture's URL as the browser chose it and the bytes it transferred (resource timing)."""
    image = page.get_by_role("img", name="A picture of the products in your cart")
    expect(image).to_be_visible(timeout=FINISHED_MS)
    return image.evaluate("""img => {
        const entry = performance.getEntriesByType('resource').find(e => e.name === img.currentSrc);
        return [img.currentSrc, entry ? entry.transferSize : -1];
    }""")


def without_variants(route) -> None:
    """Passes the kit's answer on without its variants: the page as it was before them."""
    answer = route.fetch()
    body = answer.json()
    body.pop("variants", None)
    route.fulfill(response=answer, json=body)


@pytest.mark.parametrize(("ratio", "width"), [(1, 512), (2, 768), (3, 1024)])
def test_on_a_phone_the_page_loads_a_webp_sized_for_its_pixel_ratio_and_downloads_the_full_picture(
        shop: DemoShop, browser: Browser, ratio: int, width: int):
    # The panel is 326 CSS px wide on a 390 px phone: 326 device pixels at ratio 1, 652 at 2, 978 at 3.
    products = ("2ZYFJ3GM2N", "9SIQT8TOJO")  # hairdryer, bamboo glass jar
    measured = {}
    for case in ("before", "after"):
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      device_scale_factor=ratio)
        page = context.new_page()
        try:
            if case == "before":
                page.route("**/cart/image/generate", without_variants)
                page.route("**/cart/image/status/**", without_variants)
            page.goto(shop.url)
            fill_cart(shop, page, products)
            page.get_by_role("button", name="Generate image").click()
            url, transferred = picture_bytes(page)
            measured[case] = (url, transferred)
            if case == "after":
                image = page.get_by_role("img", name="A picture of the products in your cart")
                full = image.get_attribute("src")
                assert url.endswith(f"-w{width}.webp"), url  # srcset chose the variant the service stored
                assert Image.open(stored(shop, url)).size == (width, width)
                assert not any(e.endswith(full) for e in page.evaluate(
                    "performance.getEntriesByType('resource').map(e => e.name)")), "the full picture loaded too"
                href = page.get_by_role("link", name="Download picture").get_attribute("href")
                saved = page.request.get(shop.shop.base_url + href)
                assert saved.body() == stored(shop, full).read_bytes()  # the download is the full picture
                assert Image.open(io.BytesIO(saved.body())).size == (1024, 1024)
                screenshot(page, f"11-phone-variant-dpr{ratio}")
        finally:
            context.close()
    (before_url, before), (after_url, after) = measured["before"], measured["after"]
    assert before_url.endswith(".jpg") and before > 0 and after > 0, measured
    assert after < before
    print(f"\ncart picture on a 390x844 phone (DPR {ratio}), bytes transferred: full JPEG {before:,}, "
          f"{width} px WebP {after:,} ({after / before:.0%})")


# The wait: the place in the shop's queue, Cancel, and what is given up when the shopper leaves.

@pytest.fixture(scope="module")
def queued_shop(tmp_path_factory, demoshop_binary):
    """The demo shop in front of a fake service whose generations wait in a queue the test moves: yields
    (shop, service). The real service reports no place until the shop-wide queue is wired into it."""
    service = QueuedService()
    try:
        with DemoShop(tmp_path_factory.mktemp("queued"), binary=demoshop_binary, service_addr=service.addr) as shop:
            yield shop, service
    finally:
        service.close()


def test_the_place_in_line_and_the_estimate_are_shown_and_updated(queued_shop, page: Page):
    shop, service = queued_shop
    service.move_to(12, 40)
    page.goto(shop.url)
    text = page.locator(".cart-image-progress-text")
    page.get_by_role("button", name="Generate image").click()
    expect(text).to_have_text("You're 12th in line, about 40 s", timeout=FINISHED_MS)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    screenshot(page, "12-place-in-line")
    service.move_to(3, 75)
    expect(text).to_have_text("You're 3rd in line, about 2 min", timeout=FINISHED_MS)
    service.move_to(1, 4)
    expect(text).to_have_text("You're 1st in line, about 4 s", timeout=FINISHED_MS)


def test_cancel_calls_the_kit_which_cancels_the_sessions_generation(queued_shop, page: Page):
    shop, service = queued_shop
    service.move_to(5, 20)
    page.goto(shop.url)
    with page.expect_response("**/cart/image/generate") as started:
        page.get_by_role("button", name="Generate image").click()
    answer = started.value.json()
    expect(page.locator(".cart-image-progress-text")).to_have_text("You're 5th in line, about 20 s",
                                                                    timeout=FINISHED_MS)
    with page.expect_response("**/cart/image/cancel/**") as cancelled:
        page.get_by_role("button", name="Cancel").click()
    response = cancelled.value
    assert (response.request.method, response.status) == ("POST", 200)
    assert response.url.endswith(f"/cart/image/cancel/{answer['id']}?token={answer['cancel_token']}")
    # (Earlier tests' pages sent their own cancels as they closed: only this one's is looked at.)
    assert service.cancels()[-1] == answer["id"]
    expect(page.get_by_role("status")).to_have_text("Picture cancelled.")
    expect(page.get_by_role("progressbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Generate image")).to_be_enabled()
    screenshot(page, "14-cancelled")
    # Another session cannot cancel it with the same URL (no cookie: a new session).
    before = len(service.cancels())
    other = page.context.browser.new_context()
    try:
        assert other.request.post(response.url).status == 403
    finally:
        other.close()
    assert len(service.cancels()) == before


def test_leaving_the_page_while_waiting_sends_a_cancel_beacon(queued_shop, page: Page):
    shop, service = queued_shop
    service.move_to(2, 8)
    page.goto(shop.url)
    with page.expect_response("**/cart/image/generate") as started:
        page.get_by_role("button", name="Generate image").click()
    generation_id = started.value.json()["id"]
    expect(page.locator(".cart-image-progress-text")).to_have_text("You're 2nd in line, about 8 s",
                                                                    timeout=FINISHED_MS)
    page.goto("about:blank")
    # The beacon is sent as the page goes (Playwright does not report it): the service's record shows it.
    wait_for(lambda: generation_id in service.cancels(), timeout=15, what="the leaving page's cancel")


def test_against_the_real_service_cancel_reaches_it_through_the_sessions_token(shop: DemoShop, page: Page):
    # The page waits (status held at processing) until Cancel has had the kit's answer, however fast
    # the real picture is; the cancel itself goes to the real kit and service.
    hold = {"on": True}
    page.route("**/cart/image/status/**", lambda route: route.fulfill(
        status=200, json={"status": "processing", "progress": 0}) if hold["on"] else route.continue_())
    page.goto(shop.url)
    fill_cart(shop, page, ("1YMWWN1N4O", "0PUK6V6EV0"))  # watch, candle holder
    page.get_by_role("button", name="Generate image").click()
    cancel = page.get_by_role("button", name="Cancel")
    with page.expect_response("**/cart/image/cancel/**") as cancelled:
        cancel.click()
    response = cancelled.value
    hold["on"] = False
    # The kit took the token as this session's and asked the service (a 403 would mean it refused);
    # a service that cannot cancel yet answers 501 and the shopper is told the picture is still coming.
    assert response.status in (200, 501), (response.status, response.text())
    if response.status == 501:
        expect(page.locator(".cart-image-note")).to_have_text(
            "This picture cannot be cancelled; it will be ready in a moment.")
        expect(cancel).to_be_hidden()
        expect(page.get_by_role("link", name="Download picture")).to_be_visible(timeout=FINISHED_MS)
        screenshot(page, "13-cancel-real-service")
