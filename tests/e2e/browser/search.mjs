// The node library's search in the real frontend, for tests/e2e/test_browser_search.py.
//
//   node search.mjs <config.json>
// config: {url, chromium, queries: [strings], names: {node id: display name}}
// Types each query where a user would -- the Node Library sidebar's search field and the
// search box a double click on the canvas opens -- and records which of `names` each
// lists. Then again with the pack's extension disabled (the frontend's own
// Comfy.Extension.Disabled setting), for comparison. Prints "LOTTS_BROWSER_JSON {...}".
import { newResult, openComfy, readConfig, runDriver, setSetting } from "./comfy_page.mjs";

const cfg = readConfig();
const result = newResult();
const step = result.step;

const found = (text) => Object.entries(cfg.names).filter(([, name]) => text.includes(name))
  .map(([id]) => id).sort();

async function library(page, query) {
  const input = page.locator('input[placeholder^="Search Nodes"]').first();
  if (!(await input.isVisible().catch(() => false))) {
    await page.evaluate(() => window.comfyAPI.app.app.extensionManager.command
      .execute("Workspace.ToggleSidebarTab.node-library"));
    await input.waitFor({ state: "visible", timeout: 15000 });
  }
  await input.fill(query);
  await page.waitForTimeout(1200);  // the search is debounced
  const text = await input.evaluate((el) => {
    // the sidebar panel: the widest ancestor that is still a side panel
    let panel = el;
    while (panel.parentElement && panel.parentElement.getBoundingClientRect().width < 700) {
      panel = panel.parentElement;
    }
    return panel.innerText;
  });
  return found(text);
}

async function searchBox(page, query) {
  const input = page.locator('[role=dialog] input[type=text], .comfy-vue-node-search-container input').first();
  for (let i = 0; ; i++) {  // a double click the canvas takes before it is ready is lost
    await page.keyboard.press("Escape");
    await page.mouse.dblclick(900, 520);  // an empty spot of the (cleared) canvas
    try {
      await input.waitFor({ state: "visible", timeout: 5000 });
      break;
    } catch (e) {
      if (i >= 3) throw e;
    }
  }
  await input.fill(query);
  await page.waitForTimeout(1200);
  const texts = await page.locator("[role=option]").allInnerTexts();
  await page.keyboard.press("Escape");
  await page.waitForTimeout(300);
  return found(texts.join("\n"));
}

async function searchAll(page) {
  // an empty canvas, so the double click lands on nothing
  await page.evaluate(() => (window.comfyAPI.app.app.rootGraph ?? window.comfyAPI.app.app.graph).clear());
  await page.waitForTimeout(500);
  const out = { library: {}, searchBox: {} };
  for (const q of cfg.queries) out.searchBox[q] = await searchBox(page, q);
  for (const q of cfg.queries) out.library[q] = await library(page, q);
  return out;
}

runDriver(cfg, result, async (browser) => {
  step("open");
  const page = await openComfy(browser, cfg, result);
  result.withPack = await searchAll(page);

  step("extension-disabled");
  await setSetting(page, cfg.url, "Comfy.Extension.Disabled", ["LoTTS.NodeViews"]);
  await page.reload({ waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.LiteGraph?.registered_node_types?.LoTTSDefectLocalizer
    && window.comfyAPI?.app?.app?.graph, null, { timeout: 120000 });
  await page.waitForTimeout(1500);
  // a disabled extension stays listed, but its hooks do not run: its setup() adds the style
  result.extensionRan = await page.evaluate(() => !!document.getElementById("lotts-style"));
  result.withoutExtension = await searchAll(page);
  await setSetting(page, cfg.url, "Comfy.Extension.Disabled", []);
  step("done");
});
