// Unit tests of js/lotts_logic.js (node --test js/tests/). No browser needed.
// The .mjs extension keeps this file out of the browser: ComfyUI loads every **/*.js under
// the pack's WEB_DIRECTORY as a frontend extension.
import { test } from "node:test";
import assert from "node:assert/strict";

import * as L from "../lotts_logic.js";

const ref = (f) => ({ filename: f, subfolder: "", type: "temp" });

test("viewer payload: aligned per candidate", () => {
  const p = L.parseViewerPayload({
    lotts_candidates: [ref("c0.png"), ref("c1.png")],
    lotts_masks: [ref("m0.png"), ref("m1.png")],
    lotts_heatmaps: [ref("h0.png")],
    lotts_mask_ratio: [0.5],
    text: ["ignored"],
  });
  assert.equal(p.candidates.length, 2);
  assert.deepEqual(p.masks.map((m) => m.filename), ["m0.png", "m1.png"]);
  assert.equal(p.heatmaps[0].filename, "h0.png");
  assert.equal(p.heatmaps[1], null);
  assert.equal(p.maskRatio, 0.5);
});

test("viewer payload: missing, empty or malformed -> null (no widget)", () => {
  for (const m of [undefined, null, 3, "x", {}, { text: ["only text"] }, { lotts_candidates: [] },
                   { lotts_candidates: "nope" }, { lotts_candidates: [{ subfolder: "" }] },
                   { lotts_candidates: [ref("a.png"), null] }]) {
    assert.equal(L.parseViewerPayload(m), null, JSON.stringify(m));
  }
});

test("viewer payload: defaults for subfolder/type and absent ratio", () => {
  const p = L.parseViewerPayload({ lotts_candidates: [{ filename: "a.png" }] });
  assert.deepEqual(p.candidates[0], { filename: "a.png", subfolder: "", type: "temp" });
  assert.equal(p.maskRatio, null);
  assert.deepEqual(p.masks, [null]);
});

test("scores payload: ranks, picked, labels, images", () => {
  const s = L.parseScoresPayload({ lotts_scores: [{
    verifier: "ImageReward", scores: [1.5, 0.25, -2], labels: ["a", "b"], picked: 1,
    images: [ref("r0.png"), ref("r1.png"), ref("r2.png")],
  }] });
  assert.equal(s.verifier, "ImageReward");
  assert.deepEqual(s.items.map((i) => i.rank), [1, 2, 3]);
  assert.deepEqual(s.items.map((i) => i.picked), [true, false, false]);
  assert.deepEqual(s.items.map((i) => i.label), ["a", "b", ""]);
  assert.equal(s.items[2].image.filename, "r2.png");
});

test("scores payload: picked clamped, default 1; absent -> null", () => {
  const mk = (picked) => L.parseScoresPayload({ lotts_scores: [{ scores: [1, 2], picked }] });
  assert.equal(mk(5).picked, 2);
  assert.equal(mk(-1).picked, 0);
  assert.equal(mk(undefined).picked, 1);
  assert.equal(mk(undefined).verifier, "verifier");
  for (const m of [undefined, {}, { lotts_scores: [] }, { lotts_scores: [{}] },
                   { lotts_scores: [{ scores: [] }] }, { lotts_scores: "x" }]) {
    assert.equal(L.parseScoresPayload(m), null);
  }
});

test("saved keys keep only the view's payload", () => {
  const msg = { text: ["r"], lotts_candidates: [ref("c")], lotts_mask_ratio: [0.3], lotts_scores: [{}] };
  assert.deepEqual(Object.keys(L.viewerKeys(msg)), ["lotts_candidates", "lotts_mask_ratio"]);
  assert.deepEqual(Object.keys(L.scoreKeys(msg)), ["lotts_scores"]);
  assert.deepEqual(L.viewerKeys(undefined), {});
  assert.deepEqual(L.scoreKeys(null), {});
});

test("view path is URL-encoded", () => {
  assert.equal(L.viewPath({ filename: "a b&c.png", subfolder: "x/y", type: "temp" }),
               "/view?filename=a+b%26c.png&subfolder=x%2Fy&type=temp");
  assert.equal(L.viewPath({ filename: "a.png" }), "/view?filename=a.png&subfolder=&type=temp");
});

test("candidate index wraps both ways", () => {
  assert.equal(L.wrapIndex(0, 3), 0);
  assert.equal(L.wrapIndex(3, 3), 0);
  assert.equal(L.wrapIndex(-1, 3), 2);
  assert.equal(L.wrapIndex(-7, 3), 2);
  assert.equal(L.wrapIndex(5, 0), 0);
});

test("slider to opacity clamps", () => {
  assert.equal(L.sliderToOpacity(50), 0.5);
  assert.equal(L.sliderToOpacity("100"), 1);
  assert.equal(L.sliderToOpacity(150), 1);
  assert.equal(L.sliderToOpacity(-5), 0);
  assert.equal(L.sliderToOpacity("x"), 0.5);
});

test("blend is base*(1-a)+over*a, rounded and clamped", () => {
  assert.equal(L.blend(0, 255, 0.5), 128);
  assert.equal(L.blend(100, 200, 0), 100);
  assert.equal(L.blend(100, 200, 1), 200);
  assert.equal(L.blend(100, 200, 2), 200);
  assert.equal(L.blend(10, 20, 0.25), 13);  // 12.5 -> 13
});

test("mask composite tints white mask pixels by opacity, leaves black ones", () => {
  const base = [100, 100, 100, 255, 100, 100, 100, 255, 0, 0, 0, 7];
  const mask = [255, 255, 255, 255, 0, 0, 0, 255, 128, 128, 128, 255];
  const out = L.compositeOverlay(base, mask, "mask", 0.5, [255, 0, 0]);
  assert.deepEqual([...out.slice(0, 4)], [178, 50, 50, 255]);   // 100*.5+255*.5 = 177.5
  assert.deepEqual([...out.slice(4, 8)], [100, 100, 100, 255]); // outside the mask: unchanged
  const a = 0.5 * (128 / 255);                                  // grey: partial alpha
  assert.deepEqual([...out.slice(8, 12)], [Math.round(255 * a), 0, 0, 255]);
});

test("heatmap composite blends colours by opacity; 0 and 1 are the endpoints", () => {
  const base = [10, 20, 30, 255];
  const heat = [250, 0, 100, 255];
  assert.deepEqual([...L.compositeOverlay(base, heat, "heatmap", 0)], [10, 20, 30, 255]);
  assert.deepEqual([...L.compositeOverlay(base, heat, "heatmap", 1)], [250, 0, 100, 255]);
  assert.deepEqual([...L.compositeOverlay(base, heat, "heatmap", 0.25)], [70, 15, 48, 255]);
});

test("composite rejects mismatched sizes", () => {
  assert.throws(() => L.compositeOverlay([0, 0, 0, 0], [0, 0, 0], "mask", 0.5), /size/);
});

test("badge and caption text", () => {
  assert.equal(L.formatScore(0.12345), "0.123");
  assert.equal(L.formatScore(-1.5), "-1.500");
  assert.equal(L.formatScore(-0), "0.000");
  assert.equal(L.formatScore(NaN), "n/a");
  assert.equal(L.formatScore(undefined), "n/a");
  assert.equal(L.badgeText({ rank: 2, score: 0.5 }), "#2  0.500");
  assert.equal(L.viewerCaption(1, 4, 0.5), "candidate 2 / 4 · mask 50%");
  assert.equal(L.viewerCaption(-1, 4, null), "candidate 4 / 4");
});

test("gallery height grows with rows, 0 when empty", () => {
  assert.equal(L.galleryHeight(0, 300), 0);
  const one = L.galleryHeight(1, 300);
  assert.equal(L.galleryHeight(3, 300), one);        // 3 per row at 300 px
  assert.ok(L.galleryHeight(6, 300) > one);
  assert.ok(L.galleryHeight(6, 10) >= L.galleryHeight(6, 300)); // at least one per row
});

test("the viewer names the blocks read and what propagation did, per candidate", () => {
  const p = L.parseViewerPayload({
    lotts_candidates: [{ filename: "a.png" }, { filename: "b.png" }],
    lotts_localizer: [{ attention: "cross", blocks: ["input 7", "input 8"],
                        decisions: ["propagated (self-attention row entropy 0.520 of max)",
                                    "propagation skipped: ..."] }],
  });
  assert.equal(L.localizerNote(p.localizer, 0),
               "cross attention of input 7, input 8 · propagated (self-attention row entropy 0.520 of max)");
  assert.equal(L.localizerNote(p.localizer, 1), "cross attention of input 7, input 8 · propagation skipped: ...");
  assert.equal(L.localizerNote(null, 0), "");
  const bare = L.parseViewerPayload({ lotts_candidates: [{ filename: "a.png" }], lotts_localizer: ["x"] });
  assert.equal(bare.localizer, null);
  assert.deepEqual(Object.keys(L.viewerKeys({ lotts_localizer: [{}], other: 1 })), ["lotts_localizer"]);
});

test("search aliases: filled where the host sent none, the host's own kept", () => {
  const aliases = { LoTTSSampler: ["best of n", "refine"], LoTTSBestOfN: ["best of n"],
                    LoTTSHarmonize: ["refine"] };
  const defs = [
    { name: "LoTTSSampler" },                                   // 0.3.64: no field
    { name: "LoTTSBestOfN", search_aliases: ["from the host"] }, // 0.10: the schema's own
    { name: "LoTTSHarmonize", search_aliases: [] },               // empty: filled
    { name: "KSampler" },                                        // not ours: untouched
  ];
  assert.deepEqual(L.addSearchAliases(defs, aliases), ["LoTTSSampler", "LoTTSHarmonize"]);
  assert.deepEqual(defs[0].search_aliases, ["best of n", "refine"]);
  assert.deepEqual(defs[1].search_aliases, ["from the host"]);
  assert.deepEqual(defs[2].search_aliases, ["refine"]);
  assert.equal("search_aliases" in defs[3], false);
  // a copy: the frontend may edit its def without touching the shared list
  defs[0].search_aliases.push("x");
  assert.deepEqual(aliases.LoTTSSampler, ["best of n", "refine"]);
});

test("search aliases: {id: def} maps, and malformed input fills nothing", () => {
  const defs = { LoTTSSampler: { name: "LoTTSSampler" } };
  assert.deepEqual(L.addSearchAliases(defs, { LoTTSSampler: ["a"] }), ["LoTTSSampler"]);
  for (const [d, a] of [[null, {}], [[], null], [[{ name: "LoTTSSampler" }], { LoTTSSampler: "a" }],
                        [[null, 3, { name: "LoTTSSampler" }], { LoTTSSampler: [" ", 7] }]]) {
    assert.deepEqual(L.addSearchAliases(d, a), [], JSON.stringify([d, a]));
  }
});

test("search aliases: the shipped file names only LoTTS nodes, each with words", async () => {
  const fs = await import("node:fs");
  const url = new URL("../search_aliases.json", import.meta.url);
  const shipped = JSON.parse(fs.readFileSync(url, "utf8"));
  assert.ok(Object.keys(shipped).length >= 9);
  for (const [id, words] of Object.entries(shipped)) {
    assert.ok(id.startsWith("LoTTS"), id);
    assert.ok(Array.isArray(words) && words.length && words.every((w) => typeof w === "string" && w), id);
  }
});
