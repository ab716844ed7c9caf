// Loads UI workflows into the real frontend and records what it makes of them, for
// tests/e2e/test_saved_workflows.py.
//
//   node load_workflows.mjs <config.json>
// config: {url, chromium, workflows: {name: UI workflow JSON}}
// Result per workflow (result.workflows[name]):
//   missing   node types the frontend reported missing (its afterConfigureGraph hook)
//   errored   ids of nodes the frontend flagged (has_errors) after loading
//   widgets   {node id: {type, widgets: [[name, value], ...]}} as the loaded nodes show them
//   prompt    app.graphToPrompt().output: the API prompt the frontend would queue
//   loadError the exception loadGraphData raised, if any
import { newResult, openComfy, readConfig, runDriver } from "./comfy_page.mjs";

const cfg = readConfig();
const result = newResult();
result.workflows = {};

runDriver(cfg, result, async (browser) => {
  result.step("open");
  const page = await openComfy(browser, cfg, result,
                               [["Comfy.Workflow.ShowMissingModelsWarning", false]]);
  await page.evaluate(() => {
    window.__lotts_missing = null;
    window.comfyAPI.app.app.registerExtension({
      name: "LoTTS.Test.SavedWorkflows",
      afterConfigureGraph(missing) { window.__lotts_missing = [...(missing ?? [])]; },
    });
  });
  for (const [name, wf] of Object.entries(cfg.workflows)) {
    result.step(`load ${name}`);
    result.workflows[name] = await page.evaluate(async ({ name, wf }) => {
      const app = window.comfyAPI.app.app;
      const out = { loadError: null };
      window.__lotts_missing = null;
      try {
        await app.loadGraphData(structuredClone(wf), true, true, name);
      } catch (e) {
        out.loadError = String(e?.stack ?? e);
      }
      await new Promise((r) => setTimeout(r, 300));
      out.missing = (window.__lotts_missing ?? []).map((t) => (typeof t === "object" ? t.type : t));
      out.errored = app.graph.nodes.filter((n) => n.has_errors).map((n) => n.id);
      out.widgets = {};
      for (const n of app.graph.nodes) {
        out.widgets[n.id] = { type: n.type,
                              widgets: (n.widgets ?? []).map((w) => [w.name, w.value ?? null]) };
      }
      out.prompt = (await app.graphToPrompt()).output;
      return out;
    }, { name, wf });
  }
  result.step("done");
});
