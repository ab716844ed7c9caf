// Loads UI workflows into the real frontend at their saved view and reports where the
// frontend put everything, for tests/e2e/test_workflow_layout.py.
//
//   node workflow_layout.mjs <config.json>
// config: {url, chromium, workflows: {name: UI workflow JSON}, screenshot_dir?,
//          missing_models?: [names of workflows whose models the server lacks]}
// Result per workflow (result.workflows[name]):
//   nodes   [{id, type, title, rect: [x, y, w, h] with the title bar, widgets: [{name,
//           type, y, height, hidden}]}] in canvas units, after the frontend sized them
//   groups  [{title, rect}]
//   view    {scale, offset, canvas: [w, h]}  the view the workflow opened with
//   notes   [{id, shown, content, box}] each note's rendered text, looked at at scale 1:
//           how far the text reaches and the height of its box (px)
// result.missingModels[name]: the page's text after loading it with the frontend's missing
// model warning on.
// With screenshot_dir, PNGs of the canvas at that view (<name>.png) and of the whole graph
// (<name>_all.png).
import path from "node:path";
import { loadWorkflow, newResult, openComfy, readConfig, runDriver } from "./comfy_page.mjs";

const cfg = readConfig();
const result = newResult();
result.workflows = {};

runDriver(cfg, result, async (browser) => {
  result.step("open");
  const page = await openComfy(browser, cfg, result,
                               [["Comfy.Workflow.ShowMissingModelsWarning", false],
                                ["Comfy.EnableWorkflowViewRestore", true]]);
  for (const [name, wf] of Object.entries(cfg.workflows)) {
    result.step(`load ${name}`);
    await loadWorkflow(page, wf, name);
    await page.waitForTimeout(800);  // DOM widgets and the first draw settle
    result.workflows[name] = await page.evaluate(() => {
      const app = window.comfyAPI.app.app;
      const LG = window.LiteGraph;
      const title = LG.NODE_TITLE_HEIGHT;
      // Widgets are laid out when a node is drawn; nodes off screen still hold the layout
      // of an earlier draw (before links were made): lay every node out now.
      for (const n of app.graph.nodes) n.arrange?.();
      const nodes = app.graph.nodes.map((n) => ({
        id: n.id, type: n.type, title: n.title,
        rect: [n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title],
        collapsed: !!n.flags?.collapsed,
        min: [...n.computeSize()],
        slots: [(n.inputs ?? []).length, (n.outputs ?? []).length],
        widgets: (n.widgets ?? []).map((w) => ({
          name: w.name, type: w.type, y: w.y ?? w.last_y ?? null,
          height: w.computedHeight ?? (w.computeSize ? w.computeSize(n.size[0])[1] : LG.NODE_WIDGET_HEIGHT),
          hidden: !!(w.hidden || w.options?.hidden || w.type === "hidden" || w.computedDisabled),
        })),
      }));
      const groups = (app.graph.groups ?? []).map((g) => ({ title: g.title, rect: [...g._bounding ?? g.bounding] }));
      const ds = app.canvas.ds;
      return { nodes, groups, view: { scale: ds.scale, offset: [...ds.offset],
                                      canvas: [app.canvas.canvas.width, app.canvas.canvas.height] } };
    });
    const shot = (suffix) => cfg.screenshot_dir && page.screenshot({
      path: path.join(cfg.screenshot_dir, name.replaceAll("/", "_") + suffix + ".png") });
    await shot("");
    // Each note's text must fit its box: look at each at scale 1 (DOM widgets are hidden
    // off screen and when zoomed out).
    result.workflows[name].notes = [];
    for (const id of result.workflows[name].nodes.filter((n) => n.type === "MarkdownNote").map((n) => n.id)) {
      await page.evaluate((id) => {
        const app = window.comfyAPI.app.app;
        const n = app.graph.getNodeById(id);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [80 - n.pos[0], 120 - n.pos[1]];
        app.graph.setDirtyCanvas(true, true);
      }, id);
      await page.waitForTimeout(400);
      result.workflows[name].notes.push(await page.evaluate((id) => {
        const n = window.comfyAPI.app.app.graph.getNodeById(id);
        const el = n.widgets?.[0]?.element;
        // The rendered markdown (both frontends: .tiptap inside .comfy-markdown): how far
        // its content reaches below the box's top, against the box's height.
        const box = el?.querySelector(".tiptap") ?? el;
        if (!box || box.offsetParent === null) return { id, shown: false };
        const top = box.getBoundingClientRect().top;
        const bottom = Math.max(...[...box.children].map((c) => c.getBoundingClientRect().bottom), top);
        return { id, shown: true, content: Math.ceil(bottom - top), box: box.clientHeight,
                 text: n.widgets[0].value?.length ?? 0 };
      }, id));
    }
    // The whole graph at once, for people to look at (zoomed out: widgets are not drawn).
    await page.evaluate(() => {
      const app = window.comfyAPI.app.app;
      const ns = app.graph.nodes;
      const x0 = Math.min(...ns.map((n) => n.pos[0])), y0 = Math.min(...ns.map((n) => n.pos[1] - 30));
      const x1 = Math.max(...ns.map((n) => n.pos[0] + n.size[0])), y1 = Math.max(...ns.map((n) => n.pos[1] + n.size[1]));
      const [w, h] = [app.canvas.canvas.width, app.canvas.canvas.height];
      const scale = Math.min((w - 80) / (x1 - x0), (h - 120) / (y1 - y0), 1);
      app.canvas.ds.scale = scale;
      app.canvas.ds.offset = [40 / scale - x0, 80 / scale - y0];
      app.graph.setDirtyCanvas(true, true);
    });
    await page.waitForTimeout(400);
    await shot("_all");
  }
  // What the frontend offers for a missing model (properties.models): with its warning on,
  // the page text after loading (1.27.10: a dialog; 1.58.1: a panel behind "View details").
  result.missingModels = {};
  if (cfg.missing_models?.length) {
    result.step("missing-models");
    // Switched on in the running page (a reload would reopen the last workflows and their
    // warnings would stand in front of the one under test).
    await page.evaluate(() => window.comfyAPI.app.app.extensionManager.setting
      .set("Comfy.Workflow.ShowMissingModelsWarning", true));
    for (const name of cfg.missing_models) {
      for (let i = 0; i < 2; i++) { await page.keyboard.press("Escape"); await page.waitForTimeout(200); }
      // A new tab name: loading under the name of an open workflow would switch to its tab.
      await loadWorkflow(page, cfg.workflows[name], `${name} (missing models)`);
      await page.waitForTimeout(1500);
      const details = page.getByText("View details");
      if (await details.count()) { await details.first().click(); await page.waitForTimeout(800); }
      result.missingModels[name] = await page.evaluate(() => document.body.innerText);
      if (cfg.screenshot_dir) {
        await page.screenshot({ path: path.join(cfg.screenshot_dir, name.replaceAll("/", "_") + "_missing_models.png") });
      }
      await page.keyboard.press("Escape");
      await page.waitForTimeout(300);
    }
  }
  result.step("done");
});
