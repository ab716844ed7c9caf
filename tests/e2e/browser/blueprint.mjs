// The pack's subgraph blueprint (subgraphs/*.json) opened and run in the real frontend,
// for tests/e2e/test_browser_subgraphs.py.
//
//   node blueprint.mjs <config.json>
// config: {url, chromium, timeout_s, vue, blueprint (its JSON), name, ckpt, weights, prompt,
//          inner: {node type: {widget: value}} (small settings for a quick run),
//          screenshot (path)}
// Opens the blueprint as a user opens a workflow file, adds what a user adds around it
// (checkpoint, two text encoders, an empty latent, a verifier loader, a preview), links
// them to the blueprint's sockets, types the prompt into its prompt box, queues it and opens
// the subgraph. Prints "LOTTS_BROWSER_JSON {...}".
import { loadWorkflow, newResult, openComfy, readConfig, runDriver } from "./comfy_page.mjs";
import { VIEW_STATE, queueAndWait, waitViewersReady } from "./lotts_views.mjs";

const cfg = readConfig();
const result = newResult();
const step = result.step;

runDriver(cfg, result, async (browser) => {
  step("open");
  const page = await openComfy(browser, cfg, result, [["Comfy.VueNodes.Enabled", !!cfg.vue]]);
  await loadWorkflow(page, cfg.blueprint, cfg.name);

  step("wire");
  result.wired = await page.evaluate(async (cfg) => {
    const app = window.comfyAPI.app.app;
    const graph = app.rootGraph ?? app.graph;
    if (graph.nodes.length !== 1 || !graph.nodes[0].subgraph) {
      throw new Error(`the blueprint did not open as one subgraph node: ${graph.nodes.map((n) => n.type)}`);
    }
    const sub = graph.nodes[0];
    const add = (type, widgets = {}, pos = [0, 0]) => {
      const n = window.LiteGraph.createNode(type);
      n.pos = pos;
      graph.add(n);
      for (const [k, v] of Object.entries(widgets)) n.widgets.find((w) => w.name === k).value = v;
      return n;
    };
    const ckpt = add("CheckpointLoaderSimple", { ckpt_name: cfg.ckpt }, [-700, 0]);
    const pos = add("CLIPTextEncode", { text: cfg.prompt }, [-400, 0]);
    const neg = add("CLIPTextEncode", { text: "blurry" }, [-400, 250]);
    const latent = add("EmptyLatentImage", { width: 64, height: 64, batch_size: 1 }, [-700, 200]);
    const ver = add("LoTTSVerifierLoader", { verifier: "ImageReward", weights: cfg.weights,
                                             precision: "fp32" }, [-700, 400]);
    const preview = add("PreviewImage", {}, [500, 0]);
    const slot = (name) => sub.inputs.findIndex((i) => i.name === name);
    ckpt.connect(1, pos, 0);
    ckpt.connect(1, neg, 0);
    ckpt.connect(0, sub, slot("model"));
    ckpt.connect(1, sub, slot("clip"));
    ckpt.connect(2, sub, slot("vae"));
    pos.connect(0, sub, slot("positive"));
    neg.connect(0, sub, slot("negative"));
    latent.connect(0, sub, slot("latent_image"));
    ver.connect(0, sub, slot("verifier"));
    sub.connect(sub.outputs.findIndex((o) => o.name === "best"), preview, 0);
    // The prompt is a text box on the blueprint node itself (its STRING input).
    const promptBox = sub.widgets?.find((w) => w.name === "prompt");
    if (promptBox) promptBox.value = cfg.prompt;
    // Quick settings inside (a user opens the subgraph for these).
    for (const n of sub.subgraph.nodes) {
      for (const [k, v] of Object.entries(cfg.inner[n.type] ?? {})) {
        n.widgets.find((w) => w.name === k).value = v;
      }
    }
    return { title: sub.title, id: String(sub.id), promptBox: !!promptBox,
             inputs: sub.inputs.map((i) => [i.name, i.type]),
             outputs: sub.outputs.map((o) => [o.name, o.type]),
             inner: Object.fromEntries(sub.subgraph.nodes.map((n) => [String(n.id), n.type])) };
  }, cfg);

  step("run");
  const run = await queueAndWait(page, (cfg.timeout_s ?? 600) * 1000);
  result.runError = run.error;
  result.executed = run.executed;

  step("open-subgraph");
  await page.evaluate(() => {
    const app = window.comfyAPI.app.app;
    const sub = (app.rootGraph ?? app.graph).nodes.find((n) => n.subgraph);
    app.canvas.openSubgraph(sub.subgraph, sub);
    const views = sub.subgraph.nodes.filter((n) => (n.widgets ?? []).some((w) => w.name.startsWith("lotts_")));
    let x = 40;
    for (const n of views) { n.pos = [x, 40]; x += n.size[0] + 40; }
    app.canvas.ds.scale = 0.8;
    app.canvas.ds.offset = [60, 60];
    app.canvas.setDirty(true, true);
  });
  await waitViewersReady(page);
  await page.waitForTimeout(1500);
  result.inside = await page.evaluate(VIEW_STATE);
  if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot });
  step("done");
});
