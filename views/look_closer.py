"""The large comparison view: reference | distorted | LPIPS map with one zoom and pan, a swipe
divider, flicker, and a click (or Shift+drag) that picks a region of the map. Every action has a
key too (``KEYS``, shown in the view's own "Keyboard" help): a view reached with Tab shows a region
cursor that the arrows move and Enter picks.

Our own small component (Streamlit's components v2: HTML, CSS and JavaScript in the page, no
iframe, nothing loaded from the internet). Why not a package: streamlit-image-comparison 0.0.4
(the one on PyPI) shows a swipe only, without zoom, and loads JuxtaposeJS from a CDN at run time,
so it breaks on a classroom network without internet; a Plotly figure with linked axes zooms the
three views together but offers no swipe or flicker and cannot ask for an exact 1:1 or 4× pixel
zoom (it does not know its own width on the server). Here the browser knows the view's width, so
1:1 and 4× are exact, and images are drawn with nearest-neighbour pixels (``image-rendering:
pixelated``) at any zoom and for any aspect ratio.

The images are the page's own JPEGs, served as Streamlit media files: the distorted image and the
map are the bytes ``st.image`` already shows above (the browser reuses them), and the reference
does not change between moves, so opening this view adds almost nothing to a move's bytes.
"""

from __future__ import annotations

import base64

import streamlit as st

from views import browser_input

HTML = '<div class="lc-root" data-testid="look-closer"></div>'

CSS = """
.lc-root {font-family: inherit; font-size: 0.9rem; color: inherit; user-select: none;}
.lc-bar {display: flex; flex-wrap: wrap; gap: 0.4rem 0.9rem; align-items: center; margin-bottom: 0.5rem;}
.lc-group {display: inline-flex; border: 1px solid rgba(128,128,128,0.9); border-radius: 0.5rem; overflow: hidden;}
.lc-group button {border: 0; background: transparent; color: inherit; padding: 0.25rem 0.7rem; cursor: pointer;
  font: inherit; border-right: 1px solid rgba(128,128,128,0.3);}
.lc-group button:last-child {border-right: 0;}
.lc-group button[aria-pressed="true"] {background: #b02a37; color: white;}
.lc-rate {display: inline-flex; gap: 0.4rem; align-items: center;}
.lc-hint {color: inherit; opacity: 0.85; font-size: 0.8rem;}
.lc-keys {font-size: 0.8rem; margin: -0.2rem 0 0.4rem 0;}
.lc-keys summary {cursor: pointer; width: max-content;}
.lc-keys ul {margin: 0.2rem 0 0 0; padding-left: 1.2rem;}
.lc-view:focus-visible {outline: 3px solid #2f6fe0; outline-offset: 2px;}
.lc-cursor {position: absolute; border: 2px dashed #fff; box-shadow: 0 0 0 1px #000; pointer-events: none; display: none;}
.lc-side {display: flex; gap: 8px;}
.lc-pane {flex: 1 1 0; min-width: 0;}
.lc-cap {font-size: 0.8rem; text-align: center; margin-bottom: 2px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis;}
.lc-view {position: relative; overflow: hidden; width: 100%; background: #222; touch-action: none; cursor: grab;}
.lc-view img {position: absolute; left: 0; top: 0; transform-origin: 0 0; max-width: none; max-height: none;
  image-rendering: pixelated; pointer-events: none;}
.lc-box {position: absolute; border: 2px solid #00e5ff; box-shadow: 0 0 0 1px #000; pointer-events: none; display: none;}
.lc-draw {position: absolute; border: 1px dashed #fff; pointer-events: none; display: none;}
.lc-divider {position: absolute; top: 0; bottom: 0; width: 0; margin-left: -1px; border-left: 2px solid #fff;
  box-shadow: 0 0 3px #000; pointer-events: none;}
.lc-handle {position: absolute; top: 50%; width: 28px; height: 28px; margin: -14px 0 0 -15px; border-radius: 50%;
  background: #fff; color: #333; font-size: 14px; line-height: 28px; text-align: center; box-shadow: 0 0 4px #000;
  cursor: ew-resize; pointer-events: auto;}
.lc-tag {position: absolute; top: 6px; padding: 1px 6px; background: rgba(0,0,0,0.6); color: #fff; border-radius: 4px;
  font-size: 0.8rem; pointer-events: none;}
.lc-single {display: none;}
"""

JS = r"""
const ZOOMS = [["fit", "Fit"], ["1", "1:1"], ["2", "2×"], ["4", "4×"]];
const MODES = [["side", "Side by side"], ["swipe", "Swipe"], ["flicker", "Flicker"]];
// The keys of a view (reached with Tab); the same list is the view's "Keyboard" help.
const KEYS = [
  ["Arrow keys", "move the region cursor (the dashed square); Shift moves it a whole region; a zoomed view pans with it"],
  ["Enter or Space", "pick the region under the cursor: its LPIPS, layers and channels appear below"],
  ["+ and -", "zoom in and out around the cursor; 0: the whole image"],
  ["[ and ]", "move the swipe divider (opens the swipe view)"],
  ["F", "start or stop flicker; the rate is the slider beside it"],
  ["Tab", "the buttons above: view, zoom; the swipe divider also moves with ← and →"],
];

function el(tag, cls, parent, attrs) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function build(root) {
  // On a phone three views side by side are thumbnails: start with the large swipe view there.
  const narrow = window.innerWidth < 640;  // the window, not the view: it may not be laid out yet
  const st = {mode: narrow ? "swipe" : "side", zoom: "fit", scale: null, cx: null, cy: null, swipe: 0.5, rate: 2,
              shown: "dist"};
  root.lc = st;
  const bar = el("div", "lc-bar", root);
  const modes = el("span", "lc-group", bar, {role: "group", "aria-label": "Comparison view"});
  for (const [m, label] of MODES) {
    const b = el("button", "", modes, {"data-mode": m, type: "button"});
    b.textContent = label;
    b.onclick = () => { st.mode = m; apply(root); };
  }
  const zooms = el("span", "lc-group", bar, {role: "group", "aria-label": "Zoom"});
  for (const [z, label] of ZOOMS) {
    const b = el("button", "", zooms, {"data-zoom": z, type: "button"});
    b.textContent = label;
    b.title = z === "fit" ? "Whole image" : (z === "1" ? "One image pixel per screen pixel" : z + " screen pixels per image pixel");
    b.onclick = () => {
      // Zoom in on what is in view now: the region picked, else the view's centre.
      if (st.box && (st.zoom === "fit" || st.cx === null)) {
        st.cx = (st.box[0] + st.box[2]) / 2; st.cy = (st.box[1] + st.box[3]) / 2;
      } else if (st.zoom === "fit" || st.cx === null) { st.cx = st.W / 2; st.cy = st.H / 2; }
      st.zoom = z; st.scale = null; apply(root);
    };
  }
  const rate = el("label", "lc-rate", bar);
  rate.append("Flicker rate");
  // At most 6 changes a second, i.e. 3 flashes (WCAG 2.3.1, three flashes or below): a strongly
  // distorted image can differ from the reference over the whole view.
  const input = el("input", "", rate, {type: "range", min: "1", max: "6", step: "1", value: "2", "aria-label": "Flicker rate (Hz)"});
  const rateText = el("span", "", rate);
  input.oninput = () => { st.rate = +input.value; apply(root); };
  st.rateInput = input; st.rateText = rateText; st.rateLabel = rate;
  st.hint = el("span", "lc-hint", bar);
  const keys = el("details", "lc-keys", root);
  el("summary", "", keys).textContent = "Keyboard";
  const list = el("ul", "", keys);
  for (const [k, what] of KEYS) { const li = el("li", "", list); el("strong", "", li).textContent = k; li.append(": " + what); }

  const side = el("div", "lc-side", root);
  st.views = [];
  for (const [name, cap] of [["ref", "Reference"], ["dist", "Distorted"], ["map", "LPIPS map (bright = more different)"]]) {
    const pane = el("div", "lc-pane", side, {"data-pane": name});
    el("div", "lc-cap", pane).textContent = cap;
    const view = el("div", "lc-view", pane, {"data-view": name, tabindex: "0", role: "group",
                                              "aria-label": cap + ": arrows move the region cursor, Enter picks (Keyboard help above)"});
    const img = el("img", "", view, {alt: cap, draggable: "false", "data-img": name});
    view.lcImgs = [img];
    view.lcBox = el("div", "lc-box", view);
    view.lcDraw = el("div", "lc-draw", view);
    view.lcCursor = el("div", "lc-cursor", view);
    st.views.push(view);
  }
  st.side = side;

  const single = el("div", "lc-single", root);
  const view = el("div", "lc-view", single, {"data-view": "single", tabindex: "0", role: "group",
                                              "aria-label": "Reference and distorted: arrows move the region cursor, Enter picks"});
  const under = el("img", "", view, {alt: "Reference", draggable: "false", "data-layer": "ref"});
  const over = el("img", "", view, {alt: "Distorted", draggable: "false", "data-layer": "dist"});
  view.lcImgs = [under, over];
  view.lcBox = el("div", "lc-box", view);
  view.lcDraw = el("div", "lc-draw", view);
  view.lcCursor = el("div", "lc-cursor", view);
  const divider = el("div", "lc-divider", view);
  const handle = el("div", "lc-handle", divider, {role: "slider", "aria-label": "Swipe divider", tabindex: "0",
                                                  "aria-valuemin": "0", "aria-valuemax": "100"});
  handle.textContent = "⇔";
  st.tagLeft = el("div", "lc-tag", view);
  st.tagRight = el("div", "lc-tag", view);
  st.single = single; st.singleView = view; st.divider = divider; st.handle = handle;
  handle.onkeydown = (e) => {
    const to = {ArrowLeft: st.swipe - 0.02, ArrowDown: st.swipe - 0.02, ArrowRight: st.swipe + 0.02,
                ArrowUp: st.swipe + 0.02, PageDown: st.swipe - 0.1, PageUp: st.swipe + 0.1, Home: 0, End: 1}[e.key];
    if (to !== undefined) { st.swipe = Math.min(1, Math.max(0, to)); apply(root); e.preventDefault(); e.stopPropagation(); }
  };
  for (const v of [...st.views, view]) wire(root, v);
  window.addEventListener("resize", () => apply(root));
}

function fitScale(st, view) {
  return Math.min(view.clientWidth / st.W, view.clientHeight / st.H);
}

function scaleFor(st, view) {
  if (st.scale !== null) return st.scale;
  return st.zoom === "fit" ? fitScale(st, view) : +st.zoom;
}

function transformOf(st, view) {
  const s = scaleFor(st, view);
  const vw = view.clientWidth, vh = view.clientHeight;
  const centred = (st.zoom === "fit" && st.scale === null) || st.cx === null;
  const cx = centred ? st.W / 2 : st.cx, cy = centred ? st.H / 2 : st.cy;
  let tx = vw / 2 - cx * s, ty = vh / 2 - cy * s;
  // Keep the image over the view where it is larger than the view; centred where smaller.
  if (st.W * s <= vw) tx = (vw - st.W * s) / 2; else tx = Math.min(0, Math.max(vw - st.W * s, tx));
  if (st.H * s <= vh) ty = (vh - st.H * s) / 2; else ty = Math.min(0, Math.max(vh - st.H * s, ty));
  return {s, tx, ty};
}

function toImage(st, view, clientX, clientY) {
  const r = view.getBoundingClientRect();
  const {s, tx, ty} = transformOf(st, view);
  return [(clientX - r.left - tx) / s, (clientY - r.top - ty) / s];
}

function setCenterKeeping(st, view, imgX, imgY, clientX, clientY, s) {
  // The image point (imgX, imgY) stays under the pointer at the new scale s.
  const r = view.getBoundingClientRect();
  const vw = view.clientWidth, vh = view.clientHeight;
  const tx = clientX - r.left - imgX * s, ty = clientY - r.top - imgY * s;
  st.cx = (vw / 2 - tx) / s; st.cy = (vh / 2 - ty) / s;
}

function keyAction(root, view, e) {
  // One key press on a focused view; true when it was one of KEYS.
  const st = root.lc;
  if (e.ctrlKey || e.metaKey || e.altKey) return false;
  if (st.kx === undefined || st.kx === null) { st.kx = st.W / 2; st.ky = st.H / 2; }
  const side = st.regionSide, step = e.shiftKey ? side : Math.max(1, Math.round(side / 4));
  const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
  const zoomTo = (s) => {
    st.scale = Math.min(16, Math.max(fitScale(st, view) * 0.5, s)); st.zoom = "custom";
    st.cx = st.kx; st.cy = st.ky;
  };
  st.focused = view;
  if (moves[e.key]) {
    const [dx, dy] = moves[e.key];
    st.kx = Math.min(st.W, Math.max(0, st.kx + dx)); st.ky = Math.min(st.H, Math.max(0, st.ky + dy));
    follow(st, view);
  } else if (e.key === "Enter" || e.key === " ") {
    pick(root, 0, 0, 0, 0, st.kx, st.ky);
  } else if (e.key === "+" || e.key === "=") {
    zoomTo(scaleFor(st, view) * 1.5);
  } else if (e.key === "-" || e.key === "_" || e.key === "−") {
    zoomTo(scaleFor(st, view) / 1.5);
  } else if (e.key === "0") {
    st.zoom = "fit"; st.scale = null;
  } else if (e.key === "[" || e.key === "]") {
    st.swipe = Math.min(1, Math.max(0, st.swipe + (e.key === "]" ? 0.05 : -0.05)));
    if (st.mode !== "swipe") { st.mode = "swipe"; refocus(root); }
  } else if (e.key === "f" || e.key === "F") {
    if (st.mode === "flicker") st.mode = st.before || (window.innerWidth < 640 ? "swipe" : "side");
    else { st.before = st.mode; st.mode = "flicker"; }
    refocus(root);
  } else return false;
  apply(root);
  return true;
}

function follow(st, view) {
  // A zoomed view pans so that the cursor stays in sight.
  if (st.zoom === "fit" && st.scale === null) return;
  const {s, tx, ty} = transformOf(st, view);
  const x = tx + st.kx * s, y = ty + st.ky * s, m = 0.1;
  if (x < view.clientWidth * m || x > view.clientWidth * (1 - m) || y < view.clientHeight * m ||
      y > view.clientHeight * (1 - m)) {
    st.scale = s; st.zoom = st.zoom === "fit" ? "custom" : st.zoom; st.cx = st.kx; st.cy = st.ky;
  }
}

function refocus(root) {
  // After a key changed the view, keep the keyboard on the view now shown.
  const st = root.lc;
  requestAnimationFrame(() => {
    const target = st.mode === "side" ? st.views[2] : st.singleView;
    if (document.activeElement !== target) target.focus();
  });
}

function wire(root, view) {
  const st = root.lc;
  view.addEventListener("keydown", (e) => { if (keyAction(root, view, e)) e.preventDefault(); });
  // The cursor shows for the keyboard only (a mouse click focuses the view too).
  view.addEventListener("focus", () => { if (view.matches(":focus-visible")) { st.focused = view; apply(root); } });
  view.addEventListener("blur", () => { if (st.focused === view) st.focused = null; apply(root); });
  view.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [ix, iy] = toImage(st, view, e.clientX, e.clientY);
    const s0 = scaleFor(st, view);
    const s = Math.min(16, Math.max(fitScale(st, view) * 0.5, s0 * Math.exp(-e.deltaY * 0.0015)));
    setCenterKeeping(st, view, ix, iy, e.clientX, e.clientY, s);
    st.scale = s; st.zoom = "custom";
    apply(root);
  }, {passive: false});
  let drag = null;
  view.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    try { view.setPointerCapture(e.pointerId); } catch (err) { /* the drag still works inside the view */ }
    const [ix, iy] = toImage(st, view, e.clientX, e.clientY);
    const swipe = st.mode === "swipe" && view === st.singleView;
    drag = {x: e.clientX, y: e.clientY, ix, iy, moved: false, box: e.shiftKey && !swipe, swipe};
    if (swipe) moveSwipe(root, e.clientX);
  });
  view.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) drag.moved = true;
    if (drag.swipe) { moveSwipe(root, e.clientX); return; }
    if (drag.box) {
      const [ix, iy] = toImage(st, view, e.clientX, e.clientY);
      drawBox(st, view, drag.ix, drag.iy, ix, iy);
      return;
    }
    if (!drag.moved) return;
    const t = transformOf(st, view);  // from the clamped position, so a pan never lags behind
    if (st.zoom === "fit") { st.scale = t.s; st.zoom = "custom"; }
    st.cx = (view.clientWidth / 2 - t.tx) / t.s - (e.clientX - drag.x) / t.s;
    st.cy = (view.clientHeight / 2 - t.ty) / t.s - (e.clientY - drag.y) / t.s;
    drag.x = e.clientX; drag.y = e.clientY;
    apply(root);
  });
  view.addEventListener("pointerup", (e) => {
    if (!drag) return;
    const d = drag; drag = null;
    view.lcDraw.style.display = "none";
    if (d.swipe) return;
    const [ix, iy] = toImage(st, view, e.clientX, e.clientY);
    if (d.box && d.moved) {
      pick(root, Math.min(d.ix, ix), Math.min(d.iy, iy), Math.max(d.ix, ix), Math.max(d.iy, iy));
    } else if (!d.moved) {
      const half = st.regionSide / 2;
      pick(root, ix - half, iy - half, ix + half, iy + half, ix, iy);
    }
  });
}

function pick(root, x0, y0, x1, y1, cx, cy) {
  const st = root.lc;
  if (cx !== undefined && (cx < 0 || cy < 0 || cx > st.W || cy > st.H)) return;  // a click beside the image
  const clip = (v, hi) => Math.round(Math.min(hi, Math.max(0, v)));
  let box = [clip(x0, st.W), clip(y0, st.H), clip(x1, st.W), clip(y1, st.H)];
  if (cx !== undefined) {  // a click: a square of the chosen side, moved (not shrunk) to fit
    const w = Math.min(st.regionSide, st.W), h = Math.min(st.regionSide, st.H);
    const bx = Math.round(Math.min(Math.max(cx - w / 2, 0), st.W - w));
    const by = Math.round(Math.min(Math.max(cy - h / 2, 0), st.H - h));
    box = [bx, by, bx + w, by + h];
  }
  if (box[2] - box[0] < 2 || box[3] - box[1] < 2) return;
  st.box = box;
  apply(root);
  st.setTrigger("region", {x0: box[0], y0: box[1], x1: box[2], y1: box[3]});
}

function drawBox(st, view, ax, ay, bx, by) {
  const {s, tx, ty} = transformOf(st, view);
  const d = view.lcDraw;
  d.style.display = "block";
  d.style.left = (tx + Math.min(ax, bx) * s) + "px"; d.style.top = (ty + Math.min(ay, by) * s) + "px";
  d.style.width = (Math.abs(bx - ax) * s) + "px"; d.style.height = (Math.abs(by - ay) * s) + "px";
}

function moveSwipe(root, clientX) {
  const st = root.lc, view = st.singleView;
  const r = view.getBoundingClientRect();
  st.swipe = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
  apply(root);
}

function sizeView(st, view, maxFrac) {
  const w = view.clientWidth || view.parentElement.clientWidth;
  const h = Math.max(120, Math.min(w * st.H / st.W, window.innerHeight * maxFrac));
  view.style.height = h + "px";
}

function place(st, view) {
  const {s, tx, ty} = transformOf(st, view);
  for (const img of view.lcImgs) {
    img.style.width = st.W + "px"; img.style.height = st.H + "px";
    img.style.transform = `translate(${tx}px, ${ty}px) scale(${s})`;
  }
  const b = view.lcBox;
  if (st.box) {
    b.style.display = "block";
    b.style.left = (tx + st.box[0] * s) + "px"; b.style.top = (ty + st.box[1] * s) + "px";
    b.style.width = ((st.box[2] - st.box[0]) * s) + "px"; b.style.height = ((st.box[3] - st.box[1]) * s) + "px";
  } else b.style.display = "none";
  const c = view.lcCursor;
  if (st.focused === view && st.kx !== undefined && st.kx !== null) {
    const w = Math.min(st.regionSide, st.W), h = Math.min(st.regionSide, st.H);
    const bx = Math.min(Math.max(st.kx - w / 2, 0), st.W - w), by = Math.min(Math.max(st.ky - h / 2, 0), st.H - h);
    c.style.display = "block";
    c.style.left = (tx + bx * s) + "px"; c.style.top = (ty + by * s) + "px";
    c.style.width = (w * s) + "px"; c.style.height = (h * s) + "px";
  } else if (c) c.style.display = "none";
  // The region of the image in view, in image pixels (read by the tests and the hint).
  const x0 = Math.max(0, -tx / s), y0 = Math.max(0, -ty / s);
  const x1 = Math.min(st.W, (view.clientWidth - tx) / s), y1 = Math.min(st.H, (view.clientHeight - ty) / s);
  view.dataset.region = [x0, y0, x1, y1].map((v) => v.toFixed(1)).join(",");
  view.dataset.scale = s.toFixed(4);
  return s;
}

function apply(root) {
  const st = root.lc;
  if (!st.W) return;
  for (const b of root.querySelectorAll("[data-mode]")) b.setAttribute("aria-pressed", String(b.dataset.mode === st.mode));
  for (const b of root.querySelectorAll("[data-zoom]")) b.setAttribute("aria-pressed", String(b.dataset.zoom === st.zoom));
  st.rateLabel.style.display = st.mode === "flicker" ? "inline-flex" : "none";
  st.rateText.textContent = st.rate + " Hz";
  const sideMode = st.mode === "side";
  st.side.style.display = sideMode ? "flex" : "none";
  st.single.style.display = sideMode ? "none" : "block";
  root.dataset.mode = st.mode;
  let s;
  if (sideMode) {
    for (const v of st.views) sizeView(st, v, 0.6);
    for (const v of st.views) s = place(st, v);
  } else {
    const v = st.singleView;
    sizeView(st, v, 0.72);
    s = place(st, v);
    const [under, over] = v.lcImgs;
    if (st.mode === "swipe") {
      over.style.visibility = "visible";
      // the clip is in the image's own box: convert the divider's view position to image fraction
      const {s: sc, tx} = transformOf(st, v);
      const xImg = (st.swipe * v.clientWidth - tx) / (st.W * sc);
      over.style.clipPath = `inset(0 0 0 ${(Math.min(1, Math.max(0, xImg)) * 100).toFixed(3)}%)`;
      st.divider.style.display = "block";
      st.divider.style.left = (st.swipe * 100) + "%";
      st.handle.setAttribute("aria-valuenow", Math.round(st.swipe * 100));
      st.handle.setAttribute("aria-valuetext", `${Math.round(st.swipe * 100)}% reference on the left`);
      root.dataset.swipe = st.swipe.toFixed(3);
      st.tagLeft.textContent = "Reference"; st.tagLeft.style.left = "6px"; st.tagLeft.style.right = "";
      st.tagRight.textContent = "Distorted"; st.tagRight.style.right = "6px"; st.tagRight.style.left = ""; st.tagRight.style.display = "block";
    } else {
      over.style.clipPath = "none";
      over.style.visibility = st.shown === "dist" ? "visible" : "hidden";
      st.divider.style.display = "none";
      st.tagLeft.textContent = st.shown === "dist" ? "Distorted" : "Reference";
      st.tagLeft.style.left = "6px";
      st.tagRight.style.display = "none";
      root.dataset.shown = st.shown;
    }
  }
  for (const b of root.querySelectorAll("[data-zoom]")) b.disabled = false;
  const pct = Math.round(s * 100);
  st.hint.textContent = `${st.W}×${st.H} px at ${pct}% · wheel: zoom · drag: ${st.mode === "swipe" ? "swipe" : "pan"} · ` +
    `click: pick a ${st.regionSide}×${st.regionSide} region · Shift+drag: draw one · keys: see Keyboard`;
  if (st.timer) { clearInterval(st.timer); st.timer = null; }
  if (st.mode === "flicker") {
    st.timer = setInterval(() => { st.shown = st.shown === "dist" ? "ref" : "dist"; apply(root); }, 1000 / st.rate);
  }
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const root = parentElement.querySelector(".lc-root");
  if (!root.lc) build(root);
  const st = root.lc;
  st.setTrigger = setTriggerValue;
  const [ref, dist, map] = [st.views[0].lcImgs[0], st.views[1].lcImgs[0], st.views[2].lcImgs[0]];
  // Set a source only when it changed: an unchanged picture is neither fetched nor redrawn.
  if (ref.getAttribute("src") !== data.ref) { ref.src = data.ref; st.singleView.lcImgs[0].src = data.ref; }
  if (dist.getAttribute("src") !== data.dist) { dist.src = data.dist; st.singleView.lcImgs[1].src = data.dist; }
  if (map.getAttribute("src") !== data.map) map.src = data.map;
  if (data.alts) {  // words that change with the pictures (views/look_closer.py: look_closer(alts=…))
    if (data.alts.dist) { dist.alt = data.alts.dist; st.singleView.lcImgs[1].alt = data.alts.dist; }
    if (data.alts.map) map.alt = data.alts.map;
  }
  if (st.W !== data.width || st.H !== data.height) { st.zoom = "fit"; st.scale = null; st.kx = null; st.ky = null; }
  st.W = data.width; st.H = data.height; st.regionSide = data.side;
  st.box = data.box;
  requestAnimationFrame(() => apply(root));
  apply(root);
  return () => { if (st.timer) { clearInterval(st.timer); st.timer = null; } };
}
"""

_COMPONENT = st.components.v2.component("lpips_explorer.look_closer", html=HTML, css=CSS, js=JS, isolate_styles=False)


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def image_url(jpeg: bytes, name: str) -> str:
    """Where the browser can fetch ``jpeg``: Streamlit's media URL (the one ``st.image`` gives the
    same bytes, so a picture already on the page is not sent again, and the reference, unchanged
    between moves, is fetched once), or a data URL where no server runs."""
    from streamlit import runtime

    if not runtime.exists():
        return data_url(jpeg)
    url = runtime.get_instance().media_file_mgr.add(jpeg, "image/jpeg", f"look_closer.{name}")
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base and url.startswith("/") else url


def look_closer(ref_jpeg: bytes, dist_jpeg: bytes, map_jpeg: bytes, size: tuple[int, int],
                box: tuple[int, int, int, int] | None, side: int, key: str = "closer",
                alts: dict[str, str] | None = None) -> dict | None:
    """Mount the view; returns the region just picked, ``(x0, y0, x1, y1)`` in image pixels, or None.

    The event comes from the browser: anything but whole coordinates inside the image (a string,
    NaN, a list, a region outside or too small) is ignored, as if nothing had been picked.
    ``alts``: the distorted image's and the map's text alternatives (``{"dist": …, "map": …}``)."""
    height, width = size
    result = _COMPONENT(data={"ref": image_url(ref_jpeg, "ref"), "dist": image_url(dist_jpeg, "dist"),
                              "map": image_url(map_jpeg, "map"),
                              "width": int(width), "height": int(height), "side": int(side),
                              "box": list(box) if box else None, "alts": dict(alts or {})},
                        key=key, on_region_change=lambda: None, width="stretch")
    event = getattr(result, "region", None)
    if event is None:
        return None
    try:
        return browser_input.region(event, int(width), int(height))
    except browser_input.BAD_INPUT:
        return None
