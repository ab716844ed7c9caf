// Drives the real ComfyUI frontend in headless Chromium for tests/e2e/test_browser.py.
//
//   node drive.mjs <config.json>
// config: {url, workflow (API prompt), chromium, timeout_s, screenshots: [paths]}
// Prints one line "LOTTS_BROWSER_JSON {...}" with what it saw (comfy_page.mjs); the Python
// test asserts.
import { loadWorkflow, newResult, openComfy, readConfig, runDriver, waitForApp } from "./comfy_page.mjs";

const cfg = readConfig();
const TIMEOUT = (cfg.timeout_s ?? 600) * 1000;
const result = newResult();
const step = result.step;

const VIEW_STATE = () => {
  const app = window.comfyAPI.app.app;
  const out = {};
  for (const node of app.graph.nodes) {
    const w = (name) => node.widgets?.find((x) => x.name === name);
    const v = w("lotts_viewer"), s = w("lotts_scores");
    if (!v && !s && !node.type.startsWith("LoTTS")) continue;
    out[node.id] = {
      type: node.type,
      viewer: v ? { count: +v.element.dataset.count, index: +v.element.dataset.index,
                    mode: v.element.dataset.mode, ready: v.element.dataset.ready === "1",
                    inDom: document.body.contains(v.element),
                    caption: v.element.querySelector(".lotts-caption")?.textContent } : null,
      scores: s ? { count: +s.element.dataset.count, inDom: document.body.contains(s.element),
                    badges: [...s.element.querySelectorAll(".lotts-badge")].map((b) => b.textContent),
                    values: [...s.element.querySelectorAll(".lotts-badge")].map((b) => +b.dataset.score),
                    picked: s.element.querySelectorAll(".lotts-picked").length } : null,
      saved: Object.keys(node.properties ?? {}).filter((k) => k.startsWith("lotts_")),
    };
  }
  return out;
};

runDriver(cfg, result, async (browser) => {
  step("load");
  const page = await openComfy(browser, cfg, result);

  step("workflow");
  await page.evaluate(async (wf) => {
    const { app } = window.comfyAPI.app;
    await app.loadApiJson(wf, "lotts_ui_e2e.json");
  }, cfg.workflow);
  result.beforeRun = await page.evaluate(VIEW_STATE);

  step("run");
  await page.evaluate(() => {
    const { api } = window.comfyAPI.api;
    window.__lotts = { done: false, error: null };
    api.addEventListener("execution_success", () => { window.__lotts.done = true; });
    api.addEventListener("execution_error", ({ detail }) => {
      window.__lotts.done = true;
      window.__lotts.error = `${detail.node_type}: ${detail.exception_message}`;
    });
    return window.comfyAPI.app.app.queuePrompt(0, 1);
  });
  await page.waitForFunction(() => window.__lotts.done, null, { timeout: TIMEOUT, polling: 500 });
  result.runError = await page.evaluate(() => window.__lotts.error);
  await page.waitForFunction(() => {
    const ws = window.comfyAPI.app.app.graph.nodes.flatMap((n) => n.widgets ?? [])
      .filter((w) => w.name === "lotts_viewer");
    return ws.length && ws.every((w) => w.element.dataset.ready === "1");
  }, null, { timeout: 60000 }).catch(() => {});
  result.afterRun = await page.evaluate(VIEW_STATE);

  step("controls");
  result.controls = await page.evaluate(async () => {
    const app = window.comfyAPI.app.app;
    const node = app.graph.nodes.find((n) => n.type === "LoTTSDefectLocalizer");
    const v = node.widgets.find((w) => w.name === "lotts_viewer").element;
    const [prev, toggle, next] = v.querySelectorAll("button");
    const slider = v.querySelector("input[type=range]");
    const canvas = v.querySelector("canvas");
    const settle = async () => { for (let i = 0; i < 100 && v.dataset.ready !== "1"; i++) await new Promise((r) => setTimeout(r, 50)); await new Promise((r) => setTimeout(r, 300)); };
    const px = () => [...canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data];
    const diff = (a, b) => a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0);
    const out = { start: +v.dataset.index };
    next.click(); await settle(); out.afterNext = +v.dataset.index;
    next.click(); await settle(); out.afterNext2 = +v.dataset.index;
    prev.click(); await settle(); out.afterPrev = +v.dataset.index;
    slider.value = "0"; slider.dispatchEvent(new Event("input")); const p0 = px();
    slider.value = "100"; slider.dispatchEvent(new Event("input")); const p100 = px();
    out.opacityChangesPixels = diff(p0, p100) > 0;
    toggle.click(); await settle(); out.modeAfterToggle = v.dataset.mode;
    out.heatmapDiffersFromMask = diff(px(), p100) > 0;
    slider.value = "60"; slider.dispatchEvent(new Event("input"));
    out.canvas = [canvas.width, canvas.height];
    return out;
  });

  step("screenshot");
  await page.evaluate(() => {
    // Lay the nodes with views out side by side, at scale 1, for the screenshot.
    const app = window.comfyAPI.app.app;
    const order = ["LoTTSDefectLocalizer", "LoTTSVerifierPick", "LoTTSSampler"];
    let x = 20;
    for (const t of order) {
      const n = app.graph.nodes.find((m) => m.type === t);
      if (!n) continue;
      n.pos = [x, 20];
      x += n.size[0] + 40;
    }
    let y = 40;
    for (const n of app.graph.nodes) {
      if (order.includes(n.type)) continue;
      n.pos = [x + 40, y];  // the rest: a column to the right (mostly off screen)
      y += n.size[1] + 40;
    }
    app.canvas.ds.scale = 0.8;  // above the frontend's low-quality threshold (0.6)
    app.canvas.ds.offset = [30, 70];
    app.graph.setDirtyCanvas(true, true);
  });
  await page.waitForTimeout(1500);
  for (const p of cfg.screenshots ?? []) await page.screenshot({ path: p });

  step("reload");
  // A real click: the frontend's change tracker (on mouseup) sees the new node properties
  // and persists the workflow, which it restores on reload.
  await page.mouse.click(800, 950);
  await page.waitForTimeout(500);
  const saved = await page.evaluate(() => window.comfyAPI.app.app.graph.serialize());
  await page.reload({ waitUntil: "domcontentloaded" });
  await waitForApp(page);
  await page.waitForFunction(() => {
    const ws = window.comfyAPI.app.app.graph.nodes.flatMap((n) => n.widgets ?? [])
      .filter((w) => w.name === "lotts_viewer");
    return ws.length && ws.every((w) => w.element.dataset.ready === "1");
  }, null, { timeout: 30000 }).catch(() => {});
  result.afterReloadRestored = await page.evaluate(VIEW_STATE);  // the frontend's own restore

  step("reload-workflow");
  await loadWorkflow(page, saved, "lotts_ui_e2e_reloaded.json");
  await page.waitForFunction(() => {
    const ws = window.comfyAPI.app.app.graph.nodes.flatMap((n) => n.widgets ?? [])
      .filter((w) => w.name === "lotts_viewer");
    return ws.length && ws.every((w) => w.element.dataset.ready === "1");
  }, null, { timeout: 60000 }).catch(() => {});
  result.afterReload = await page.evaluate(VIEW_STATE);

  step("no-payload");
  // A node that never ran (older workflow): the saved payload stripped -> no widget, no error.
  const stripped = JSON.parse(JSON.stringify(saved));
  for (const n of stripped.nodes) {
    for (const k of Object.keys(n.properties ?? {})) if (k.startsWith("lotts_")) delete n.properties[k];
  }
  await loadWorkflow(page, stripped, "lotts_ui_e2e_stripped.json");
  await page.waitForTimeout(1000);
  result.noPayload = await page.evaluate(VIEW_STATE);
  result.emptyExecuted = await page.evaluate(() => {
    // An executed message without LoTTS keys (older Python side): no widget, no throw.
    const app = window.comfyAPI.app.app;
    const errs = [];
    for (const n of app.graph.nodes.filter((m) => m.type.startsWith("LoTTS"))) {
      for (const msg of [{}, { text: ["x"] }, { lotts_scores: [] }, { lotts_candidates: [] }]) {
        try { n.onExecuted?.(msg); } catch (e) { errs.push(`${n.type}: ${e}`); }
      }
    }
    return { errs, widgets: app.graph.nodes.flatMap((n) => n.widgets ?? [])
      .filter((w) => w.name.startsWith("lotts_")).length };
  });
  step("done");
});
