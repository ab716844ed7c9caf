// Drives the real ComfyUI frontend in headless Chromium for tests/e2e/test_browser.py.
//
//   node drive.mjs <config.json>
// config: {url, workflow (API prompt), chromium, timeout_s, screenshots: [paths],
//          vueScreenshots: [paths] (the views with the Vue node renderer on)}
// The run happens with the classic canvas renderer; then the Vue renderer ("Nodes 2.0") is
// switched on, the page reloaded with it on, and switched off again.
// Prints one line "LOTTS_BROWSER_JSON {...}" with what it saw (comfy_page.mjs); the Python
// test asserts.
import { loadWorkflow, newResult, openComfy, readConfig, runDriver, waitForApp } from "./comfy_page.mjs";
import { VIEW_STATE, persistByClick, queueAndWait, setVueNodes, vueNodesOn, waitViewersReady } from "./lotts_views.mjs";

const cfg = readConfig();
const TIMEOUT = (cfg.timeout_s ?? 600) * 1000;
const result = newResult();
const step = result.step;

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
  const run = await queueAndWait(page, TIMEOUT);
  result.runError = run.error;
  await waitViewersReady(page);
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
  await layOut(page);
  for (const p of cfg.screenshots ?? []) await page.screenshot({ path: p });

  step("vue-on");
  // The same views with the Vue node renderer: switched on live, then after a page reload
  // with it on (the frontend restores the workflow, properties included).
  await setVueNodes(page, true);
  await waitViewersReady(page);
  result.vueOn = { on: await vueNodesOn(page), state: await page.evaluate(VIEW_STATE) };
  await persistByClick(page);
  await page.reload({ waitUntil: "domcontentloaded" });
  await waitForApp(page);
  await waitViewersReady(page, 30000);
  await page.waitForTimeout(1000);
  result.vueReloaded = { on: await vueNodesOn(page), state: await page.evaluate(VIEW_STATE) };

  step("vue-controls");
  // Real mouse clicks on the viewer's controls (the Vue renderer handles pointer events
  // on its nodes itself), where the viewer is mounted.
  const viewer = page.locator(".lotts-root[data-lotts=viewer]").first();
  if (await viewer.count() && await viewer.isVisible()) {
    await layOut(page);
    const index0 = await viewer.getAttribute("data-index");
    await viewer.locator("button").nth(2).click();
    await page.waitForFunction((i) => document.querySelector(".lotts-root[data-lotts=viewer]")
      .dataset.index !== i, index0, { timeout: 10000 }).catch(() => {});
    const index1 = await viewer.getAttribute("data-index");
    await viewer.locator("button").nth(1).click();
    result.vueControls = { index0, index1, mode: await viewer.getAttribute("data-mode") };
    await viewer.locator("button").nth(1).click();  // back to the mask, for the picture
    await page.waitForTimeout(1500);
    for (const p of cfg.vueScreenshots ?? []) await page.screenshot({ path: p });
  }
  await setVueNodes(page, false);
  await waitViewersReady(page, 30000);
  result.vueOff = { on: await vueNodesOn(page), state: await page.evaluate(VIEW_STATE) };

  step("reload");
  await persistByClick(page);
  const saved = await page.evaluate(() => window.comfyAPI.app.app.graph.serialize());
  await page.reload({ waitUntil: "domcontentloaded" });
  await waitForApp(page);
  await waitViewersReady(page, 30000);
  result.afterReloadRestored = await page.evaluate(VIEW_STATE);  // the frontend's own restore

  step("reload-workflow");
  await loadWorkflow(page, saved, "lotts_ui_e2e_reloaded.json");
  await waitViewersReady(page);
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

// Lay the nodes with views out side by side, at a scale that shows them, for a picture.
async function layOut(page) {
  await page.evaluate(() => {
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
    app.canvas.setDirty(true, true);
  });
  await page.waitForTimeout(1500);
}
