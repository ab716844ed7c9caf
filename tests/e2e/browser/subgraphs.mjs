// LoTTS nodes inside subgraphs, in the real frontend, for tests/e2e/test_browser_subgraphs.py.
//
//   node subgraphs.mjs <config.json>
// config: {url, workflow (API prompt), chromium, timeout_s, vue (bool: the Vue node
//          renderer), screenshots: {staged, nested} (paths)}
// The workflow is loaded, then converted in the UI the way a user does it (select, "Convert
// Selection to Subgraph"): the staged pipeline (ids in cfg.staged) into one subgraph; the
// LoTTS Sampler (cfg.sampler) into a subgraph, which goes with the Best-of-N that reads its
// report (cfg.bestOfN) into a second one: a subgraph nested in another. Then it is queued,
// each subgraph opened, the page reloaded, each opened again (and, with cfg.vue, the Vue
// renderer switched off once more). Prints "LOTTS_BROWSER_JSON {...}".
import { newResult, openComfy, readConfig, runDriver, waitForApp } from "./comfy_page.mjs";
import { VIEW_STATE, persistByClick, queueAndWait, setVueNodes, vueNodesOn, waitViewersReady } from "./lotts_views.mjs";

const cfg = readConfig();
const TIMEOUT = (cfg.timeout_s ?? 600) * 1000;
const result = newResult();
const step = result.step;

// Open the subgraph at `path` (subgraph node ids from the root) in the canvas, lay its
// LoTTS nodes with views out at a readable scale, and return VIEW_STATE there plus which
// graph the canvas shows.
async function openPath(page, path) {
  const shown = await page.evaluate(async (path) => {
    const app = window.comfyAPI.app.app;
    const root = app.rootGraph ?? app.graph;
    if (app.canvas.graph !== root) app.canvas.setGraph(root);
    let graph = root;
    for (const id of path) {
      const node = graph.getNodeById(id);
      app.canvas.openSubgraph(node.subgraph, node);
      graph = node.subgraph;
    }
    await new Promise((r) => setTimeout(r, 1000));
    let x = 40;
    for (const n of graph.nodes) {
      if (!(n.widgets ?? []).some((w) => w.name.startsWith("lotts_"))) continue;
      n.pos = [x, 40];
      x += n.size[0] + 40;
    }
    let y = 40;
    for (const n of graph.nodes) {
      if ((n.widgets ?? []).some((w) => w.name.startsWith("lotts_"))) continue;
      n.pos = [x + 40, y];
      y += (n.size?.[1] ?? 100) + 40;
    }
    app.canvas.ds.scale = 0.8;
    app.canvas.ds.offset = [60, 60];
    app.canvas.setDirty(true, true);
    return app.canvas.graph === graph;
  }, path);
  await waitViewersReady(page, 30000);
  await page.waitForTimeout(1500);
  return { open: shown, state: await page.evaluate(VIEW_STATE) };
}

runDriver(cfg, result, async (browser) => {
  step("load");
  const page = await openComfy(browser, cfg, result, [["Comfy.VueNodes.Enabled", !!cfg.vue]]);
  result.vue = await vueNodesOn(page);

  step("convert");
  await page.evaluate(async (wf) => {
    await window.comfyAPI.app.app.loadApiJson(wf, "lotts_ui_e2e_subgraphs.json");
  }, cfg.workflow);
  result.ids = await page.evaluate(async ({ staged, sampler, bestOfN }) => {
    const app = window.comfyAPI.app.app;
    const graph = app.rootGraph ?? app.graph;
    const convert = async (nodes) => {
      app.canvas.deselectAll();
      for (const n of nodes) app.canvas.select(n);
      await app.extensionManager.command.execute("Comfy.Graph.ConvertToSubgraph");
      const made = [...app.canvas.selectedItems];
      if (made.length !== 1 || !made[0].subgraph) throw new Error("no subgraph was made");
      return made[0];
    };
    const byId = (id) => graph.getNodeById(id);
    const S = await convert(staged.map(byId));
    const A = await convert([byId(sampler)]);
    const B = await convert([A, byId(bestOfN)]);
    return { staged: String(S.id), inner: String(A.id), outer: String(B.id) };
  }, { staged: cfg.staged, sampler: cfg.sampler, bestOfN: cfg.bestOfN });
  result.beforeRun = await page.evaluate(VIEW_STATE);

  step("run");
  const run = await queueAndWait(page, TIMEOUT);
  result.runError = run.error;
  result.executed = run.executed;
  await waitViewersReady(page);
  result.afterRun = await page.evaluate(VIEW_STATE);

  step("open-after-run");
  const { staged, inner, outer } = result.ids;
  result.openAfterRun = { staged: await openPath(page, [staged]) };
  if (cfg.screenshots?.staged) await page.screenshot({ path: cfg.screenshots.staged });
  result.openAfterRun.nested = await openPath(page, [outer, inner]);
  if (cfg.screenshots?.nested) await page.screenshot({ path: cfg.screenshots.nested });
  result.openAfterRun.outer = await openPath(page, [outer]);

  step("reload");
  await persistByClick(page);
  await page.reload({ waitUntil: "domcontentloaded" });
  await waitForApp(page);
  await waitViewersReady(page, 30000);
  result.vueAfterReload = await vueNodesOn(page);
  result.afterReload = await page.evaluate(VIEW_STATE);
  result.openAfterReload = { staged: await openPath(page, [staged]),
                             nested: await openPath(page, [outer, inner]) };

  if (cfg.vue) {
    step("vue-off");
    await setVueNodes(page, false);
    result.openVueOff = { on: await vueNodesOn(page), staged: await openPath(page, [staged]),
                          nested: await openPath(page, [outer, inner]) };
  }
  step("done");
});
