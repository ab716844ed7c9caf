// What every browser driver of the e2e tier shares: start headless Chromium, open the
// ComfyUI frontend as a fresh user, record console messages and page errors by phase,
// and print one "LOTTS_BROWSER_JSON {...}" line for the Python test (which asserts).
// Needs playwright-core (resolved next to this file or through NODE_PATH).
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

export const readConfig = () => JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

export function newResult() {
  const result = { steps: [], console: [], pageerrors: [] };
  result.step = (s) => { result.steps.push(s); process.stderr.write(`[drive] ${s}\n`); };
  return result;
}

// Settings a fresh user would otherwise be greeted with (the first-run template browser
// covers the canvas; the minimap overlaps it), the node renderer each page starts with
// (the classic canvas, both frontends' default; a driver asks for the Vue one in `settings`)
// and no disabled extension. Settings live on the server, which a test session shares:
// every page states its own, whatever a driver before it left.
const FRESH_USER_SETTINGS = [["Comfy.TutorialCompleted", true], ["Comfy.Minimap.Visible", false],
                             ["Comfy.VueNodes.Enabled", false], ["Comfy.Extension.Disabled", []]];

export async function waitForApp(page) {
  await page.waitForFunction(() => {
    const app = window.comfyAPI?.app?.app;
    return app?.graph && app.extensions?.some?.((e) => e.name === "LoTTS.NodeViews")
      && window.LiteGraph?.registered_node_types?.LoTTSDefectLocalizer;
  }, null, { timeout: 120000, polling: 250 });
  // The frontend then opens its first workflow (the default one, or the last session's):
  // let that finish, or it replaces the one a driver loads next.
  await page.waitForFunction(() => window.comfyAPI.app.app.graph.nodes.length > 0, null,
                             { timeout: 15000 }).catch(() => {});
  await page.waitForTimeout(500);
}

// Load a UI workflow into the page the way opening a file does, under the tab name `name`.
export async function loadWorkflow(page, workflow, name) {
  await page.evaluate(async ({ workflow, name }) => {
    await window.comfyAPI.app.app.loadGraphData(workflow, true, true, name);
  }, { workflow, name });
}

// Store a user setting on the server (read by the frontend when the page loads).
export async function setSetting(page, url, key, value) {
  const r = await page.request.post(`${url}/api/settings/${key}`, {
    data: JSON.stringify(value), headers: { "Content-Type": "application/json" } });
  if (!r.ok()) throw new Error(`setting ${key} = ${JSON.stringify(value)}: HTTP ${r.status()}`);
}

// A page on the frontend at cfg.url with the app and the pack's extension loaded.
export async function openComfy(browser, cfg, result, settings = []) {
  const page = await browser.newPage({ viewport: cfg.viewport ?? { width: 1600, height: 1000 } });
  page.setDefaultTimeout(120000);
  page.on("console", (m) => result.console.push({ phase: result.steps.at(-1), type: m.type(),
                                                  text: m.text(), url: m.location()?.url ?? "" }));
  page.on("pageerror", (e) => result.pageerrors.push({ phase: result.steps.at(-1),
                                                       text: String(e?.stack ?? e) }));
  for (const [k, v] of [...FRESH_USER_SETTINGS, ...settings]) await setSetting(page, cfg.url, k, v);
  await page.goto(cfg.url, { waitUntil: "domcontentloaded" });
  await waitForApp(page);
  result.frontendVersion = await page.evaluate(() => window.__COMFYUI_FRONTEND_VERSION__ ?? null);
  return page;
}

// Run body(browser) and print the result line; a thrown error becomes result.fatal.
export function runDriver(cfg, result, body) {
  const done = () => { delete result.step; console.log("LOTTS_BROWSER_JSON " + JSON.stringify(result)); };
  (async () => {
    const browser = await chromium.launch({
      executablePath: cfg.chromium,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--disable-dev-shm-usage"],
    });
    try {
      await body(browser);
    } finally {
      await browser.close();
    }
  })().then(done, (e) => {
    result.fatal = String(e?.stack ?? e);
    done();
    process.exitCode = 1;
  });
}
