// Pure logic of the LoTTS node UI (js/lotts.js): payload parsing, view URLs, overlay
// compositing, badge text. No DOM, no ComfyUI imports, so node's test runner can load it
// (js/tests/). The ComfyUI frontend also loads this file as an extension module; it only
// exports functions.

/** Node types that show the per-candidate defect viewer / the score gallery. */
export const VIEWER_NODES = ["LoTTSDefectLocalizer", "LoTTSSampler"];
export const SCORE_NODES = ["LoTTSSampler", "LoTTSVerifierPick", "LoTTSBestOfN"];

/** Where the last payload is kept (node.properties is saved with the workflow). */
export const VIEWER_PROP = "lotts_viewer";
export const SCORES_PROP = "lotts_scores";

/** Height (px) of a multiline text widget whose input is linked: one widget row. */
export const LINKED_TEXT_HEIGHT = 24;

/** Mask overlay colour (RGB): white mask pixels = re-sampled = tinted with this. */
export const MASK_COLOR = [255, 48, 48];

/** A ComfyUI image reference ({filename, subfolder, type}) or null if malformed. */
export function parseImageRef(ref) {
  if (!ref || typeof ref !== "object" || typeof ref.filename !== "string" || !ref.filename) {
    return null;
  }
  return {
    filename: ref.filename,
    subfolder: typeof ref.subfolder === "string" ? ref.subfolder : "",
    type: typeof ref.type === "string" && ref.type ? ref.type : "temp",
  };
}

function refList(value) {
  return Array.isArray(value) ? value.map(parseImageRef) : [];
}

/**
 * The localizer viewer payload from an executed message (or a saved copy of it):
 * {candidates, masks, heatmaps, maskRatio} with one entry per candidate (masks[i] /
 * heatmaps[i] may be null), or null when there is nothing to show.
 */
export function parseViewerPayload(msg) {
  if (!msg || typeof msg !== "object") return null;
  const candidates = refList(msg.lotts_candidates);
  if (!candidates.length || candidates.some((c) => c === null)) return null;
  const masks = refList(msg.lotts_masks);
  const heatmaps = refList(msg.lotts_heatmaps);
  const ratio = Array.isArray(msg.lotts_mask_ratio) ? Number(msg.lotts_mask_ratio[0]) : NaN;
  return {
    candidates,
    masks: candidates.map((_, i) => masks[i] ?? null),
    heatmaps: candidates.map((_, i) => heatmaps[i] ?? null),
    maskRatio: Number.isFinite(ratio) ? ratio : null,
    localizer: localizerInfo(msg.lotts_localizer),
  };
}

/** What the localizer read and decided ({blocks, attention, decisions}), or null. */
function localizerInfo(list) {
  const info = Array.isArray(list) ? list[0] : null;
  if (!info || typeof info !== "object") return null;
  const strings = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
  return {
    attention: typeof info.attention === "string" ? info.attention : "",
    blocks: strings(info.blocks),
    decisions: strings(info.decisions),
  };
}

/** The viewer's second line for candidate `index`: the blocks read and what stage 2 did,
 *  e.g. "cross attention of input 7, input 8 · propagated (...)"; "" without the info. */
export function localizerNote(localizer, index) {
  if (!localizer) return "";
  const parts = [];
  if (localizer.blocks.length) {
    parts.push(`${localizer.attention ? `${localizer.attention} attention of ` : ""}${localizer.blocks.join(", ")}`);
  }
  const d = localizer.decisions[index];
  if (d) parts.push(d);
  return parts.join(" · ");
}

/**
 * The score payload: {verifier, picked, items: [{rank, score, label, image, picked}]} best
 * first, or null when absent/empty. Scores that are not finite numbers stay NaN (shown "n/a").
 */
export function parseScoresPayload(msg) {
  if (!msg || typeof msg !== "object" || !Array.isArray(msg.lotts_scores)) return null;
  const p = msg.lotts_scores[0];
  if (!p || typeof p !== "object" || !Array.isArray(p.scores) || !p.scores.length) return null;
  const labels = Array.isArray(p.labels) ? p.labels : [];
  const images = refList(p.images);
  const pickedRaw = Number.parseInt(p.picked, 10);
  const picked = Number.isFinite(pickedRaw) ? Math.max(0, Math.min(pickedRaw, p.scores.length)) : 1;
  const items = p.scores.map((s, i) => ({
    rank: i + 1,
    score: typeof s === "number" ? s : Number(s),
    label: typeof labels[i] === "string" ? labels[i] : "",
    image: images[i] ?? null,
    picked: i < picked,
  }));
  return { verifier: typeof p.verifier === "string" ? p.verifier : "verifier", picked, items };
}

/** The keys of an executed message worth saving for the viewer / the gallery. */
export function viewerKeys(msg) {
  const out = {};
  for (const k of ["lotts_candidates", "lotts_masks", "lotts_heatmaps", "lotts_mask_ratio",
                   "lotts_localizer"]) {
    if (msg && msg[k] !== undefined) out[k] = msg[k];
  }
  return out;
}

export function scoreKeys(msg) {
  return msg && msg.lotts_scores !== undefined ? { lotts_scores: msg.lotts_scores } : {};
}

/** The /view path of an image reference; pass it through api.apiURL in the browser. */
export function viewPath(ref) {
  const q = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder ?? "",
                                  type: ref.type ?? "temp" });
  return `/view?${q.toString()}`;
}

/** i wrapped into [0, n) (previous of the first is the last); 0 when n <= 0. */
export function wrapIndex(i, n) {
  if (!(n > 0)) return 0;
  return ((Math.trunc(i) % n) + n) % n;
}

/** Opacity from a slider value (0..100, or anything) to [0, 1]. */
export function sliderToOpacity(v) {
  const x = Number(v);
  if (!Number.isFinite(x)) return 0.5;
  return Math.max(0, Math.min(1, x / 100));
}

/** One channel: base*(1-a) + over*a, rounded, clamped to 0..255. */
export function blend(base, over, alpha) {
  const a = Math.max(0, Math.min(1, alpha));
  return Math.max(0, Math.min(255, Math.round(base * (1 - a) + over * a)));
}

/**
 * Composite an overlay over RGBA pixels (ImageData.data layout, same size).
 * mode "heatmap": each pixel = blend(base, heatmap rgb, opacity).
 * mode "mask": alpha = opacity * mask luminance (white = re-sample), colour = `color`.
 * Returns a new Uint8ClampedArray; alpha channel is opaque.
 */
export function compositeOverlay(base, overlay, mode, opacity, color = MASK_COLOR) {
  if (base.length !== overlay.length || base.length % 4 !== 0) {
    throw new Error(`overlay size ${overlay.length} != image size ${base.length}`);
  }
  const out = new Uint8ClampedArray(base.length);
  const op = Math.max(0, Math.min(1, Number(opacity) || 0));
  for (let p = 0; p < base.length; p += 4) {
    let a, r, g, b;
    if (mode === "mask") {
      const lum = (overlay[p] + overlay[p + 1] + overlay[p + 2]) / (3 * 255);
      a = op * lum;
      [r, g, b] = color;
    } else {
      a = op;
      r = overlay[p]; g = overlay[p + 1]; b = overlay[p + 2];
    }
    out[p] = blend(base[p], r, a);
    out[p + 1] = blend(base[p + 1], g, a);
    out[p + 2] = blend(base[p + 2], b, a);
    out[p + 3] = 255;
  }
  return out;
}

/** Score text for a badge: 3 significant decimals, "n/a" when not a finite number. */
export function formatScore(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return "n/a";
  return (Object.is(score, -0) ? 0 : score).toFixed(3);
}

/** Badge text: "#rank  score". */
export function badgeText(item) {
  return `#${item.rank}  ${formatScore(item.score)}`;
}

/** Viewer caption: "candidate 2 / 4 · mask 50%" */
export function viewerCaption(index, n, maskRatio) {
  const base = `candidate ${wrapIndex(index, n) + 1} / ${n}`;
  return maskRatio == null ? base : `${base} · mask ${Math.round(maskRatio * 100)}%`;
}

/** Height (px) the score gallery wants for `count` cells of `thumb` px (+ a 20 px badge) in
 *  `width` px, with a `header` px title line. */
export function galleryHeight(count, width, thumb = 72, gap = 6, header = 22) {
  if (!(count > 0)) return 0;
  const perRow = Math.max(1, Math.floor((width - gap) / (thumb + gap)));
  const rows = Math.ceil(count / perRow);
  return header + rows * (thumb + 20 + gap) + gap;
}

/**
 * Add the pack's search aliases ({node id: [words]}, js/search_aliases.json) to node
 * definitions (an array of them, or {id: def}) that have none: a host whose schema has
 * the `search_aliases` field (ComfyUI 0.10+) already sent its own, which are kept.
 * Returns the ids it filled. Malformed input fills nothing.
 */
export function addSearchAliases(defs, aliases) {
  const filled = [];
  if (!defs || typeof defs !== "object" || !aliases || typeof aliases !== "object") return filled;
  for (const def of Array.isArray(defs) ? defs : Object.values(defs)) {
    const words = def && typeof def === "object" ? aliases[def.name] : undefined;
    if (!Array.isArray(words)) continue;
    if (Array.isArray(def.search_aliases) && def.search_aliases.length) continue;
    const clean = words.filter((w) => typeof w === "string" && w.trim());
    if (!clean.length) continue;
    def.search_aliases = clean;
    filled.push(def.name);
  }
  return filled;
}
