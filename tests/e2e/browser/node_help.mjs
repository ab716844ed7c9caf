// The pack's node help pages and translations in the real frontend, for
// tests/e2e/test_node_help.py.
//
//   node node_help.mjs <config.json>
// config: {url, chromium, nodes: [node ids], language: "zh", screenshot_dir?}
// result.help[id]:    {shown, text, images: [{src, width}]}: the Node Info panel after
//                     selecting a lone node and pressing the toolbox's info button
// result.docRequests: [{status, url}] every /docs/ request the frontend made
// result.translated[id]: {title, inputs: {name: label}, widgets: {name: label}} with the
//                     frontend switched to cfg.language (then switched back to English)
import path from "node:path";
import { loadWorkflow, newResult, openComfy, readConfig, runDriver, setSetting, waitForApp } from "./comfy_page.mjs";

const cfg = readConfig();
const result = newResult();
result.help = {};
result.translated = {};
result.docRequests = [];

// A workflow with one node of this type, selected, at scale 1.
async function showLone(page, type) {
  await loadWorkflow(page, { last_node_id: 0, last_link_id: 0, nodes: [], links: [], groups: [],
                             config: {}, extra: {}, version: 0.4 }, `help ${type}`);
  await page.evaluate((type) => {
    const app = window.comfyAPI.app.app;
    const n = window.LiteGraph.createNode(type);
    n.pos = [420, 320];
    app.graph.add(n);
    app.canvas.ds.scale = 1;
    app.canvas.ds.offset = [0, 0];
    app.canvas.selectNode(n);
    app.graph.setDirtyCanvas(true, true);
  }, type);
  await page.waitForTimeout(600);
}

runDriver(cfg, result, async (browser) => {
  result.step("open");
  const page = await openComfy(browser, cfg, result, [["Comfy.Locale", "en"]]);
  page.on("response", (r) => {
    if (r.url().includes("/docs/")) result.docRequests.push({ status: r.status(), url: r.url() });
  });
  for (const id of cfg.nodes) {
    result.step(`help ${id}`);
    await showLone(page, id);
    // The selection toolbox's info button (1.27.10: opens the node library's help;
    // 1.58.1: the properties panel's Info tab).
    const clicked = await page.evaluate(() => {
      const b = document.querySelector("[data-testid=info-button]") ??
        [...document.querySelectorAll("button")].find((x) => x.getAttribute("aria-label") === "Node Info");
      b?.click();
      return !!b;
    });
    const marker = `${id} · category`;
    const shown = clicked && await page.waitForFunction((m) => document.body.innerText.includes(m),
                                                        marker, { timeout: 15000 }).then(() => true, () => false);
    await page.waitForTimeout(800);  // pictures load
    result.help[id] = await page.evaluate(({ shown, marker }) => {
      const holder = [...document.querySelectorAll("div")].filter((d) => d.innerText?.includes(marker))
        .sort((a, b) => a.innerText.length - b.innerText.length)[0];
      return { shown, clicked: true, text: holder?.innerText ?? "",
               images: [...(holder?.querySelectorAll("img") ?? [])].map((i) => ({ src: i.src, width: i.naturalWidth })) };
    }, { shown, marker });
    result.help[id].clicked = clicked;
    if (cfg.screenshot_dir && id === cfg.nodes[0]) {
      await page.screenshot({ path: path.join(cfg.screenshot_dir, `node_info_${id}.png`) });
    }
  }

  result.step("language");
  await setSetting(page, cfg.url, "Comfy.Locale", cfg.language);
  try {
    await page.reload({ waitUntil: "domcontentloaded" });
    await waitForApp(page);
    for (const id of cfg.nodes) {
      await showLone(page, id);
      result.translated[id] = await page.evaluate(() => {
        const n = window.comfyAPI.app.app.graph.nodes[0];
        return { title: n.title,
                 inputs: Object.fromEntries((n.inputs ?? []).map((i) => [i.name, i.label ?? i.localized_name ?? null])),
                 outputs: Object.fromEntries((n.outputs ?? []).map((o, k) => [k, o.label ?? o.localized_name ?? null])),
                 widgets: Object.fromEntries((n.widgets ?? []).map((w) => [w.name, w.label ?? null])) };
      });
    }
    if (cfg.screenshot_dir) {
      await showLone(page, cfg.nodes[0]);
      await page.screenshot({ path: path.join(cfg.screenshot_dir, `${cfg.language}_${cfg.nodes[0]}.png`) });
    }
  } finally {
    await setSetting(page, cfg.url, "Comfy.Locale", "en");
  }
  result.step("done");
});
