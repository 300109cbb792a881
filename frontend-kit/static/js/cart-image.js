// "Generate image" on the cart page: background upload with preview, generation with a progress bar,
// the place in the shop's queue and a Cancel (also sent when the shopper leaves), the finished picture
// with a download link, errors a shopper can read, and a retry. No framework.
(function () {
  "use strict";

  var root = document.getElementById("cart-image");
  if (!root) {
    return;
  }

  var POLL_INTERVAL_MS = 1000; // how often the status is asked for
  var POLL_TIMEOUT_MS = 180000; // after this long (page visible), give up waiting
  var REQUEST_TIMEOUT_MS = 20000; // one request to the shop
  var UPLOAD_TIMEOUT_MS = 60000; // one background upload
  var MAX_POLL_FAILURES = 3; // consecutive failed status requests before giving up
  var FULL_WIDTH = 1024; // the full picture's width for srcset (the service's default IMAGE_SIZE)

  var prefix = root.dataset.prefix;
  var maxUpload = Number(root.dataset.maxUpload) || 10485760;

  var el = {
    file: root.querySelector(".cart-image-file"),
    preview: root.querySelector(".cart-image-preview"),
    previewImg: root.querySelector(".cart-image-preview img"),
    remove: root.querySelector(".cart-image-remove"),
    uploadState: root.querySelector(".cart-image-upload-state"),
    generate: root.querySelector(".cart-image-generate"),
    progress: root.querySelector(".cart-image-progress"),
    bar: root.querySelector(".cart-image-bar"),
    barFill: root.querySelector(".cart-image-bar span"),
    progressText: root.querySelector(".cart-image-progress-text"),
    error: root.querySelector(".cart-image-error"),
    errorText: root.querySelector(".cart-image-error p"),
    retry: root.querySelector(".cart-image-retry"),
    result: root.querySelector(".cart-image-result"),
    resultImg: root.querySelector(".cart-image-result img"),
    download: root.querySelector(".cart-image-download"),
    cancel: root.querySelector(".cart-image-cancel"),
    note: root.querySelector(".cart-image-note")
  };

  var background = { url: "", pending: null, previewURL: "" };

  // The panel sits under the cart's total, below the fold on a laptop or a phone: an action beside the
  // cart's heading (the first heading of the panel's column) brings it into view.
  function addAction() {
    var column = root.parentElement;
    var heading = column && column.querySelector("h1, h2, h3");
    if (!heading || document.querySelector(".cart-image-action")) {
      return;
    }
    var action = document.createElement("button");
    action.type = "button";
    action.className = "cart-image-button cart-image-action";
    action.textContent = "Picture your cart";
    action.setAttribute("aria-controls", "cart-image");
    action.addEventListener("click", function () {
      var smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      root.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
      var style = root.querySelector("input[name='cart-image-style']:checked") || el.generate;
      style.focus({ preventScroll: true });
    });
    heading.insertAdjacentElement("afterend", action);
  }
  addAction();
  var run = 0; // the current generation; a newer one makes older polls stop
  var active = null; // {run, id, token} of the generation being waited for, which Cancel stops
  var cancelAsked = 0; // the run whose Cancel was pressed: its failure is the cancel, not an error

  // request sends one request and resolves to {status, body}; rejects with a readable Error.
  function request(method, path, body, timeoutMs) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeoutMs);
    var init = { method: method, signal: controller.signal, credentials: "same-origin", headers: {} };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    return fetch(prefix + path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, body: data };
      });
    }, function () {
      throw new Error("The shop could not be reached; check your connection and try again.");
    }).finally(function () { clearTimeout(timer); });
  }

  function failure(answer, fallback) {
    return new Error((answer.body && answer.body.error) || fallback);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setProgress(percent, text) {
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    el.barFill.style.width = Math.max(value, 3) + "%";
    el.bar.setAttribute("aria-valuenow", String(value));
    el.progressText.textContent = text;
  }

  function showError(message) {
    waitEnded();
    show(el.progress, false);
    el.errorText.textContent = message;
    show(el.error, true);
    el.generate.disabled = false;
    el.generate.textContent = "Generate image";
  }

  function selectedStyle() {
    var checked = root.querySelector("input[name='cart-image-style']:checked");
    return checked ? checked.value : "";
  }

  // --- background upload: starts as soon as a file is chosen -------------------------------------

  function clearBackground(keepChosenFile) {
    if (background.previewURL) {
      URL.revokeObjectURL(background.previewURL);
    }
    background = { url: "", pending: null, previewURL: "" };
    if (!keepChosenFile) {
      el.file.value = ""; // else the file input would say "No file chosen" next to the chosen photo
    }
    el.previewImg.removeAttribute("src");
    show(el.preview, false);
    el.uploadState.textContent = "";
    el.uploadState.classList.remove("cart-image-upload-failed");
  }

  function uploadBackground(file) {
    clearBackground(true);
    if (file.size > maxUpload) {
      uploadFailed("The picture is larger than " + Math.round(maxUpload / 1048576) + " MB; choose a smaller one.");
      return;
    }
    background.previewURL = URL.createObjectURL(file);
    el.previewImg.src = background.previewURL;
    show(el.preview, true);
    el.uploadState.textContent = "Uploading your photo…";
    var form = new FormData();
    form.append("background", file, file.name);
    var mine = background;
    mine.pending = request("POST", "/background", form, UPLOAD_TIMEOUT_MS).then(function (answer) {
      if (answer.status !== 200 || !answer.body.image_url) {
        throw failure(answer, "The photo could not be uploaded; please try again.");
      }
      if (background === mine) {
        mine.url = answer.body.image_url;
        el.uploadState.textContent = "Your photo will be the background.";
      }
      return mine.url;
    }).catch(function (error) {
      if (background === mine) {
        uploadFailed(error.message);
      }
      throw error;
    });
    mine.pending.catch(function () {}); // reported above; generate() looks at it again
  }

  function uploadFailed(message) {
    if (background.previewURL) {
      URL.revokeObjectURL(background.previewURL);
    }
    background = { url: "", pending: null, previewURL: "" };
    el.previewImg.removeAttribute("src");
    show(el.preview, false);
    el.file.value = "";
    el.uploadState.textContent = message;
    el.uploadState.classList.add("cart-image-upload-failed");
  }

  el.file.addEventListener("change", function () {
    if (el.file.files && el.file.files[0]) {
      if (!el.generate.disabled) {
        show(el.error, false); // a new photo is the next action: the last generation's error is over
      }
      uploadBackground(el.file.files[0]);
    }
  });
  el.remove.addEventListener("click", function () {
    clearBackground();
    el.file.focus();
  });

  // --- generation ------------------------------------------------------------------------------------

  // clearUploadFailure takes away a refused upload's message: the shopper has moved on.
  function clearUploadFailure() {
    if (el.uploadState.classList.contains("cart-image-upload-failed")) {
      el.uploadState.textContent = "";
      el.uploadState.classList.remove("cart-image-upload-failed");
    }
  }

  // waitEnded forgets the generation Cancel would stop.
  function waitEnded() {
    active = null;
    show(el.cancel, false);
  }

  // ordinal says a place in line: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st.
  function ordinal(n) {
    var tens = n % 100, ones = n % 10;
    var suffix = tens >= 11 && tens <= 13 ? "th" : ones === 1 ? "st" : ones === 2 ? "nd" : ones === 3 ? "rd" : "th";
    return n + suffix;
  }

  // about says an estimate in words: "about 40 s", "about 2 min" (rounded up).
  function about(seconds) {
    return seconds < 60 ? "about " + Math.ceil(seconds) + " s" : "about " + Math.ceil(seconds / 60) + " min";
  }

  // waitingText is what a status says to a shopper: their place in line while queued, else the progress.
  function waitingText(st) {
    var position = Number(st.queue_position) || 0;
    var estimate = Number(st.estimated_seconds) || 0;
    if (position > 0) {
      return "You're " + ordinal(position) + " in line" + (estimate > 0 ? ", " + about(estimate) : "");
    }
    var text = "Drawing your picture… " + (st.progress || 0) + "%";
    return estimate > 0 ? text + ", " + about(estimate) + " left" : text;
  }

  function cancelPath(generation) {
    return "/cancel/" + encodeURIComponent(generation.id) + "?token=" + encodeURIComponent(generation.token);
  }

  function cancelled() {
    run += 1; // stops the poll
    waitEnded();
    show(el.progress, false);
    el.note.textContent = "Picture cancelled.";
    el.generate.disabled = false;
    el.generate.textContent = "Generate image";
  }

  // cancel asks the shop to stop the awaited generation; one already being drawn finishes as usual.
  function cancel() {
    var generation = active;
    if (!generation) {
      return;
    }
    cancelAsked = generation.run;
    el.cancel.disabled = true;
    request("POST", cancelPath(generation), undefined, REQUEST_TIMEOUT_MS).then(function (answer) {
      if (generation.run !== run) {
        return;
      }
      if (answer.status === 200 && answer.body.status === "failed") {
        cancelled();
      } else if (answer.status === 200 && answer.body.status === "processing") {
        cancelAsked = 0;
        show(el.cancel, false);
        el.note.textContent = "Your picture is already being drawn; it will be ready in a moment.";
      } else if (answer.status !== 200) {
        cancelAsked = 0;
        el.cancel.disabled = false;
        show(el.cancel, answer.status !== 501); // 501: this service cannot cancel at all
        el.note.textContent = failure(answer, "The picture could not be cancelled.").message;
      }
    }, function (error) {
      cancelAsked = 0;
      el.cancel.disabled = false;
      el.note.textContent = error.message;
    });
  }

  function generate() {
    var mine = ++run;
    var style = selectedStyle();
    waitEnded();
    el.note.textContent = "";
    clearUploadFailure();
    show(el.error, false);
    show(el.result, false);
    el.generate.disabled = true;
    el.generate.textContent = "Generating…";
    show(el.progress, true);
    setProgress(0, background.pending && !background.url ? "Uploading your photo…" : "Starting…");

    var ready = background.pending ? background.pending : Promise.resolve("");
    ready.catch(function () {
      throw new Error("The background photo could not be uploaded; remove it or choose another.");
    }).then(function (backgroundURL) {
      setProgress(0, "Starting…");
      return request("POST", "/generate", { style: style, background_url: backgroundURL || "" }, REQUEST_TIMEOUT_MS);
    }).then(function (answer) {
      if (answer.status !== 200 && answer.status !== 202) {
        throw failure(answer, "The picture could not be started; please try again.");
      }
      var id = answer.body.id;
      if (answer.body.cancel_token && answer.body.status !== "completed") {
        active = { run: mine, id: id, token: answer.body.cancel_token };
        el.cancel.disabled = false;
        show(el.cancel, true);
      }
      if (answer.body.status === "completed" && answer.body.image_url) {
        return { id: id, imageURL: answer.body.image_url, variants: answer.body.variants };
      }
      return poll(mine, id).then(function (st) { return { id: id, imageURL: st.image_url, variants: st.variants }; });
    }).then(function (picture) {
      if (mine === run) {
        finished(picture.id, picture.imageURL, style, picture.variants);
      }
    }).catch(function (error) {
      if (mine === run && cancelAsked === mine) {
        cancelled(); // the poll saw the cancel before the cancel's own answer came
      } else if (mine === run) {
        showError(error.message);
      }
    });
  }

  // poll asks for the status every POLL_INTERVAL_MS while the page is visible, until the generation
  // ends, POLL_TIMEOUT_MS of visible time have passed, or MAX_POLL_FAILURES requests in a row failed.
  function poll(mine, id) {
    return new Promise(function (resolve, reject) {
      var waited = 0;
      var failures = 0;
      var timer = null;

      function stop() {
        clearTimeout(timer);
        document.removeEventListener("visibilitychange", onVisibility);
      }
      function onVisibility() {
        if (!document.hidden && timer === null) {
          tick();
        }
      }
      function later() {
        timer = null;
        if (document.hidden) {
          return; // resumes on visibilitychange
        }
        timer = setTimeout(function () { timer = null; waited += POLL_INTERVAL_MS; tick(); }, POLL_INTERVAL_MS);
      }
      function tick() {
        if (mine !== run) {
          stop();
          return;
        }
        if (waited >= POLL_TIMEOUT_MS) {
          stop();
          reject(new Error("The picture is taking longer than expected; please try again."));
          return;
        }
        request("GET", "/status/" + encodeURIComponent(id), undefined, REQUEST_TIMEOUT_MS).then(function (answer) {
          if (answer.status !== 200) {
            var error = failure(answer, "The picture's progress could not be read; please try again.");
            error.final = answer.status === 404; // expired or unknown: asking again will not help
            throw error;
          }
          failures = 0;
          var st = answer.body;
          if (st.status === "completed") {
            stop();
            resolve(st);
          } else if (st.status === "failed") {
            stop();
            reject(new Error(st.error || "The picture could not be made; please try again."));
          } else {
            setProgress(st.progress || 0, waitingText(st));
            later();
          }
        }).catch(function (error) {
          failures += 1;
          if (failures >= MAX_POLL_FAILURES || error.final) {
            stop();
            reject(error);
          } else {
            later();
          }
        });
      }

      document.addEventListener("visibilitychange", onVisibility);
      tick();
    });
  }

  // finished shows the picture from its URL (the shop's image route or a bucket's public or signed URL)
  // and links the download to the shop's own route: a browser ignores the download attribute of a link
  // to another origin, so the kit relays the picture as an attachment.
  function finished(id, imageURL, style, variants) {
    waitEnded();
    setProgress(100, "Done!");
    el.resultImg.onload = function () {
      show(el.progress, false);
      show(el.result, true);
      el.generate.disabled = false;
      el.generate.textContent = "Generate again";
      el.result.focus();
    };
    el.resultImg.onerror = function () {
      showError("The picture was made but cannot be shown; please try again.");
    };
    setSources(imageURL, variants);
    var extension = (imageURL.split("?")[0].match(/\.(png|jpg|webp)$/) || [null, "png"])[1];
    el.download.href = prefix + "/download/" + encodeURIComponent(id) + "?style=" + encodeURIComponent(style || "");
    el.download.setAttribute("download", "my-cart-" + (style || "picture") + "." + extension);
  }

  // setSources lets the browser pick the smallest picture that fills the panel: the status's variants
  // ({width, url, mime_type}, smaller copies) and the full picture at its own width, when it knows it.
  function setSources(imageURL, variants) {
    var candidates = (Array.isArray(variants) ? variants : []).filter(function (v) {
      return v && v.url && v.width > 0 && (!v.mime_type || v.mime_type === "image/webp" || v.mime_type === "image/jpeg");
    });
    if (candidates.length) {
      var list = candidates.map(function (v) { return srcsetURL(v.url) + " " + v.width + "w"; });
      // A variant as wide as the picture (its WebP copy) takes the full picture's place in the list.
      if (!candidates.some(function (v) { return v.width >= FULL_WIDTH; })) {
        list.push(srcsetURL(imageURL) + " " + FULL_WIDTH + "w");
      }
      el.resultImg.sizes = "(max-width: 575px) calc(100vw - 64px), 560px";
      el.resultImg.srcset = list.join(", ");
    } else {
      el.resultImg.removeAttribute("srcset");
      el.resultImg.removeAttribute("sizes");
    }
    el.resultImg.src = imageURL;
  }

  // srcsetURL escapes what would split a srcset entry; the URL is otherwise used as given (signed URLs).
  function srcsetURL(url) {
    return url.replace(/ /g, "%20").replace(/,/g, "%2C");
  }

  el.generate.addEventListener("click", generate);
  el.cancel.addEventListener("click", cancel);
  // A shopper who leaves does not wait for the picture: work the shop has not started is given up.
  // sendBeacon outlives the page; the token in the URL is what ties the generation to this session.
  window.addEventListener("pagehide", function () {
    if (active && navigator.sendBeacon) {
      navigator.sendBeacon(prefix + cancelPath(active));
      waitEnded();
    }
  });
  el.retry.addEventListener("click", function () {
    generate();
    el.generate.focus();
  });
})();
