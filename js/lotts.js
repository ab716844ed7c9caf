// LoTTS for ComfyUI: on-canvas views of what LoTTS decided.
//
// * Defect viewer (LoTTS Defect Localizer, LoTTS Sampler): each candidate with its defect
//   heatmap or binary mask overlaid; opacity slider, heatmap/mask toggle, prev/next.
// * Score gallery (LoTTS Sampler, Verifier Pick, Best-of-N): each scored sample's thumbnail
//   with a "#rank score" badge, the picked one(s) highlighted.
// * Search words: the node library finds the nodes by "test-time scaling", "best of n",
//   "refine", "defect mask", ... (js/search_aliases.json, from nodes/search_aliases.py).
//
// Both views are DOM widgets fed by the nodes' UI outputs (nodes/ui_previews.py). The last
// payload is kept in node.properties, so the views come back when the workflow is reloaded
// (the preview files live in ComfyUI's temp folder until the server restarts). Nodes that
// never ran, or older workflows, have no payload and get no widget.
//
// What this file relies on -- the frontend's extension API only; it patches no shared
// object (app, LGraphCanvas, LGraphNode, the api, the stores):
// * app.registerExtension hooks:
//   - init: fetch js/search_aliases.json (before the node definitions are registered);
//   - setup: add the stylesheet;
//   - beforeRegisterVueAppNodeDefs(defs): give the pack's definitions their search words
//     where the host sent none (ComfyUI 0.3.64; 0.10 serves them from the schema). Both
//     the first load and "refresh node definitions" pass through it;
//   - beforeRegisterNodeDef(nodeType, nodeData): for the pack's own node types only, chain
//     (call the previous one, then ours) the node callbacks the extension docs name for it:
//     onNodeCreated, onConnectionsChange, onExecuted (a run's UI payload; the frontend
//     calls it on the node an execution id such as "12:5:3" names, so nodes inside
//     subgraphs get theirs), onConfigure (a loaded or restored workflow, subgraphs'
//     inner nodes included).
// * node.addDOMWidget: the views. The canvas (classic) renderer and the Vue node renderer
//   ("Nodes 2.0", frontend 1.58.1) both mount a DOM widget's element; nothing here depends
//   on which one runs. (Frontend 1.27.10's hidden, experimental Vue mode mounts no DOM
//   widget at all -- ComfyUI's own prompt box neither -- so there the views show when Vue
//   mode is off again; their payload stays in the workflow.)
// * api.apiURL (preview image URLs); the `search_aliases` field of node definitions, which
//   the node search of frontend 1.58.1 reads (1.27.10's search ignores it).
// * On the pack's own nodes' multiline text widgets (per node, not shared): their
//   options.getMinHeight/getMaxHeight, the sizing options addDOMWidget takes, wrapped so a
//   linked prompt box takes one row (compactLinkedText).
// * Reads only: app.configuringGraph, LiteGraph.INPUT.
// The viewer's stage has a CSS minimum height: the Vue renderer sizes a DOM widget by its
// content, not by getMinHeight (which the canvas renderer uses).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import * as L from "./lotts_logic.js";

const STYLE = `
.lotts-root { display:flex; flex-direction:column; gap:4px; width:100%; height:100%;
  box-sizing:border-box; font:12px sans-serif; color:var(--input-text, #ddd); overflow:hidden; }
.lotts-stage { flex:1 1 auto; min-height:160px; position:relative; background:#111;
  border-radius:4px; overflow:hidden; }
.lotts-stage canvas { position:absolute; inset:0; width:100%; height:100%; object-fit:contain; }
.lotts-bar { display:flex; align-items:center; gap:4px; flex:0 0 auto; }
.lotts-bar button { background:var(--comfy-input-bg, #222); color:inherit; cursor:pointer;
  border:1px solid var(--border-color, #444); border-radius:4px; padding:1px 7px; font:inherit; }
.lotts-bar input[type=range] { flex:1 1 auto; min-width:40px; }
.lotts-caption { flex:0 0 auto; opacity:.85; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.lotts-note { font-size:10px; opacity:.7; }
.lotts-grid { display:flex; flex-wrap:wrap; gap:6px; overflow-y:auto; }
.lotts-cell { width:72px; display:flex; flex-direction:column; align-items:center;
  border:2px solid transparent; border-radius:4px; padding:1px; box-sizing:content-box; }
.lotts-cell img { width:72px; height:72px; object-fit:contain; background:#111; border-radius:2px; }
.lotts-cell.lotts-picked { border-color:#4caf50; background:rgba(76,175,80,.15); }
.lotts-badge { font:11px monospace; padding:1px 4px; margin-top:2px; border-radius:3px;
  background:#333; white-space:nowrap; }
.lotts-picked .lotts-badge { background:#2e7d32; color:#fff; }
`;

function injectStyle() {
  if (document.getElementById("lotts-style")) return;
  const s = document.createElement("style");
  s.id = "lotts-style";
  s.textContent = STYLE;
  document.head.appendChild(s);
}

function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) e.append(c);
  return e;
}

const imageUrl = (ref) => api.apiURL(L.viewPath(ref));

function loadImage(ref) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${ref.filename}`));
    img.src = imageUrl(ref);
  });
}

function pixels(img, w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

/** Get or make node's DOM widget `name`; never serialized into widgets_values. */
function domWidget(node, name, minHeight) {
  let w = node.widgets?.find((x) => x.name === name);
  if (!w) {
    const root = el("div", { className: "lotts-root" });
    w = node.addDOMWidget(name, "lotts", root, { serialize: false, getMinHeight: () => w.lottsHeight });
    w.serialize = false;
  }
  w.lottsHeight = minHeight;
  return w;
}

function removeWidget(node, name) {
  const i = node.widgets?.findIndex((x) => x.name === name) ?? -1;
  if (i < 0) return;
  const [w] = node.widgets.splice(i, 1);
  w.onRemove?.();
  w.element?.remove();
}

function fitNode(node) {
  const [w, h] = node.computeSize();
  node.setSize([Math.max(node.size[0], w, 320), Math.max(node.size[1], h)]);
  node.setDirtyCanvas?.(true, true);
}

// ------------------------------------------------------------------ defect viewer
class DefectViewer {
  constructor(root) {
    this.index = 0;
    this.mode = "mask";
    this.opacity = 0.5;
    this.token = 0;
    this.root = root;
    root.replaceChildren();
    root.dataset.lotts = "viewer";
    this.canvas = el("canvas", { width: 1, height: 1 });
    this.caption = el("div", { className: "lotts-caption" });
    this.note = el("div", { className: "lotts-caption lotts-note" });
    const prev = el("button", { textContent: "◀", title: "previous candidate", onclick: () => this.step(-1) });
    const next = el("button", { textContent: "▶", title: "next candidate", onclick: () => this.step(1) });
    this.toggle = el("button", { title: "show the heatmap or the binary mask",
                                 onclick: () => this.setMode(this.mode === "mask" ? "heatmap" : "mask") });
    this.slider = el("input", { type: "range", min: 0, max: 100, value: 50, title: "overlay opacity",
                                oninput: () => { this.opacity = L.sliderToOpacity(this.slider.value); this.draw(); } });
    root.append(el("div", { className: "lotts-stage" }, [this.canvas]),
                el("div", { className: "lotts-bar" }, [prev, this.toggle, this.slider, next]),
                this.caption, this.note);
  }

  setPayload(p) {
    this.p = p;
    this.index = L.wrapIndex(this.index, p.candidates.length);
    this.root.dataset.count = String(p.candidates.length);
    this.show();
  }

  step(d) { this.index = L.wrapIndex(this.index + d, this.p.candidates.length); this.show(); }

  setMode(m) { this.mode = m; this.show(); }

  async show() {
    const p = this.p, i = this.index, mode = this.mode, token = ++this.token;
    const n = p.candidates.length;
    this.root.dataset.index = String(i);
    this.root.dataset.mode = mode;
    this.toggle.textContent = mode === "mask" ? "mask" : "heatmap";
    this.caption.textContent = L.viewerCaption(i, n, p.maskRatio);
    this.note.textContent = L.localizerNote(p.localizer, i);
    this.note.title = this.note.textContent;
    const overlayRef = mode === "mask" ? p.masks[i] : p.heatmaps[i];
    try {
      const [img, ov] = await Promise.all([loadImage(p.candidates[i]),
                                           overlayRef ? loadImage(overlayRef) : null]);
      if (token !== this.token) return;  // a newer request won
      const w = img.naturalWidth, h = img.naturalHeight;
      this.base = pixels(img, w, h);
      this.overlay = ov ? pixels(ov, w, h) : null;
      this.draw();
      this.root.dataset.ready = "1";
    } catch (e) {
      if (token !== this.token) return;
      this.base = null;
      this.caption.textContent = `${L.viewerCaption(i, n, p.maskRatio)} · previews unavailable ` +
                                 "(server restarted?): run the node again";
    }
  }

  draw() {
    if (!this.base) return;
    const { width: w, height: h } = this.base;
    this.canvas.width = w; this.canvas.height = h;
    const out = new ImageData(w, h);
    out.data.set(this.overlay ? L.compositeOverlay(this.base.data, this.overlay.data, this.mode, this.opacity)
                              : this.base.data);
    this.canvas.getContext("2d", { willReadFrequently: true }).putImageData(out, 0, 0);
  }
}

function showViewer(node, payload) {
  if (!payload) { removeWidget(node, "lotts_viewer"); return; }
  const w = domWidget(node, "lotts_viewer", 280);
  if (!w.lottsViewer) w.lottsViewer = new DefectViewer(w.element);
  w.lottsViewer.setPayload(payload);
  fitNode(node);
}

// ------------------------------------------------------------------ score gallery
function showScores(node, payload) {
  if (!payload) { removeWidget(node, "lotts_scores"); return; }
  const width = Math.max(node.size[0], 320) - 20;
  const w = domWidget(node, "lotts_scores", Math.min(L.galleryHeight(payload.items.length, width), 420));
  const root = w.element;
  root.dataset.lotts = "scores";
  root.dataset.count = String(payload.items.length);
  const cells = payload.items.map((it) => {
    const badge = el("span", { className: "lotts-badge", textContent: L.badgeText(it) });
    badge.dataset.rank = String(it.rank);
    badge.dataset.score = String(it.score);
    return el("div", {
      className: "lotts-cell" + (it.picked ? " lotts-picked" : ""),
      title: `#${it.rank} ${it.label}${it.picked ? " (picked)" : ""}`,
    }, [it.image ? el("img", { src: imageUrl(it.image), alt: it.label }) : el("div"), badge]);
  });
  root.replaceChildren(
    el("div", { className: "lotts-caption",
                textContent: `${payload.verifier}: ${payload.items.length} scored, best first` }),
    el("div", { className: "lotts-grid" }, cells));
  fitNode(node);
}

// ------------------------------------------------------------------ linked text boxes
// A multiline text input (the prompt) fed by a link hides its text box, but both frontends
// keep the box's height in the node: an empty gap between the sockets and the widgets.
// While linked, the box takes one widget row (where its socket sits); unlinked, its own.
function compactLinkedText(node) {
  for (const w of node.widgets ?? []) {
    if (!(w.element instanceof HTMLTextAreaElement) || w.lottsCompact) continue;
    w.lottsCompact = true;
    const { getMinHeight, getMaxHeight } = w.options;
    const linked = () => {
      const i = node.inputs?.findIndex((s) => s.widget?.name === w.name) ?? -1;
      return i >= 0 && node.isInputConnected(i);
    };
    w.options.getMinHeight = () => (linked() ? L.LINKED_TEXT_HEIGHT : getMinHeight?.());
    w.options.getMaxHeight = () => (linked() ? L.LINKED_TEXT_HEIGHT : getMaxHeight?.());
  }
}

// ------------------------------------------------------------------ wiring
function render(node) {
  try {
    if (L.VIEWER_NODES.includes(node.type ?? node.comfyClass)) {
      showViewer(node, L.parseViewerPayload(node.properties?.[L.VIEWER_PROP]));
    }
    if (L.SCORE_NODES.includes(node.type ?? node.comfyClass)) {
      showScores(node, L.parseScoresPayload(node.properties?.[L.SCORES_PROP]));
    }
  } catch (e) {
    console.warn("[LoTTS] could not show the node's previews:", e);
  }
}

// ------------------------------------------------------------------ search words
const ALIASES_URL = new URL("./search_aliases.json", import.meta.url);
let searchAliases = {};

async function loadSearchAliases() {
  try {
    const r = await fetch(ALIASES_URL);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    searchAliases = await r.json();
  } catch (e) {
    console.warn("[LoTTS] no search words for the node library:", e);
  }
}

app.registerExtension({
  name: "LoTTS.NodeViews",
  init: loadSearchAliases,
  setup() { injectStyle(); },
  beforeRegisterVueAppNodeDefs(defs) { L.addSearchAliases(defs, searchAliases); },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("LoTTS")) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      compactLinkedText(this);
      return r;
    };
    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (side, slot) {
      const r = onConnectionsChange?.apply(this, arguments);
      // The user (un)linked a widget's socket: fit the height to the box's new size. Not
      // while a workflow loads: its saved sizes stand.
      if (side === window.LiteGraph?.INPUT && this.inputs?.[slot]?.widget && !app.configuringGraph) {
        this.setSize([this.size[0], this.computeSize()[1]]);
      }
      return r;
    };

    const viewer = L.VIEWER_NODES.includes(nodeData.name);
    const scores = L.SCORE_NODES.includes(nodeData.name);
    if (!viewer && !scores) return;

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const r = onExecuted?.apply(this, arguments);
      this.properties ??= {};
      // Keep only what the views need; a run without the payload clears the view.
      if (viewer) {
        const v = L.viewerKeys(message);
        if (L.parseViewerPayload(v)) this.properties[L.VIEWER_PROP] = v;
        else delete this.properties[L.VIEWER_PROP];
      }
      if (scores) {
        const s = L.scoreKeys(message);
        if (L.parseScoresPayload(s)) this.properties[L.SCORES_PROP] = s;
        else delete this.properties[L.SCORES_PROP];
      }
      render(this);
      return r;
    };

    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = onConfigure?.apply(this, arguments);
      render(this);  // a reloaded workflow: show the saved payload, if any
      return r;
    };
  },
});
