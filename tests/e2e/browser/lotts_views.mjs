// What the browser drivers of the pack's views share (drive.mjs, subgraphs.mjs): read the
// state of every LoTTS view in the page -- subgraphs included -- queue the graph through
// the UI, switch the Vue node renderer ("Nodes 2.0") on or off.

// Every LoTTS node of the workflow and its views, keyed by execution id ("6", "12:5:3":
// the subgraph nodes' ids down to the node). Runs in the page.
export const VIEW_STATE = () => {
  const app = window.comfyAPI.app.app;
  const root = app.rootGraph ?? app.graph;
  const out = {};
  const visit = (graph, path) => {
    for (const node of graph.nodes) {
      const id = [...path, node.id].join(":");
      if (node.subgraph) visit(node.subgraph, [...path, node.id]);
      const w = (name) => node.widgets?.find((x) => x.name === name);
      const v = w("lotts_viewer"), s = w("lotts_scores");
      if (!v && !s && !String(node.type).startsWith("LoTTS")) continue;
      const mount = (el) => {
        const r = el.getBoundingClientRect();
        return { inDom: document.body.contains(el), shown: r.width > 0 && r.height > 0,
                 // the Vue renderer puts a widget inside its node's element
                 vueNode: !!el.closest("[data-node-id]"), height: r.height };
      };
      out[id] = {
        type: node.type,
        viewer: v ? { count: +v.element.dataset.count, index: +v.element.dataset.index,
                      mode: v.element.dataset.mode, ready: v.element.dataset.ready === "1",
                      ...mount(v.element),
                      stage: v.element.querySelector(".lotts-stage")?.offsetHeight,  // CSS px, unscaled
                      caption: v.element.querySelector(".lotts-caption")?.textContent } : null,
        scores: s ? { count: +s.element.dataset.count, ...mount(s.element),
                      badges: [...s.element.querySelectorAll(".lotts-badge")].map((b) => b.textContent),
                      values: [...s.element.querySelectorAll(".lotts-badge")].map((b) => +b.dataset.score),
                      picked: s.element.querySelectorAll(".lotts-picked").length } : null,
        saved: Object.keys(node.properties ?? {}).filter((k) => k.startsWith("lotts_")),
      };
    }
  };
  visit(root, []);
  return out;
};

// Wait until every viewer in the workflow (subgraphs included) drew its images.
export async function waitViewersReady(page, timeout = 60000) {
  await page.waitForFunction(() => {
    const app = window.comfyAPI.app.app;
    const ws = [];
    const visit = (g) => g.nodes.forEach((n) => {
      if (n.subgraph) visit(n.subgraph);
      ws.push(...(n.widgets ?? []).filter((w) => w.name === "lotts_viewer"));
    });
    visit(app.rootGraph ?? app.graph);
    return ws.length && ws.every((w) => w.element.dataset.ready === "1");
  }, null, { timeout, polling: 250 }).catch(() => {});
}

// Queue the open workflow through the UI; wait for the end of the run. Returns
// {error, executed: [{node, display_node, keys, text}]}: the executed messages the page got.
export async function queueAndWait(page, timeoutMs) {
  await page.evaluate(() => {
    const { api } = window.comfyAPI.api;
    window.__lotts = { done: false, error: null, executed: [] };
    api.addEventListener("executed", ({ detail }) => window.__lotts.executed.push({
      node: detail.node, display_node: detail.display_node,
      keys: Object.keys(detail.output ?? {}), text: detail.output?.text ?? null }));
    api.addEventListener("execution_success", () => { window.__lotts.done = true; });
    api.addEventListener("execution_error", ({ detail }) => {
      window.__lotts.done = true;
      window.__lotts.error = `${detail.node_type} (${detail.node_id}): ${detail.exception_message}`;
    });
    return window.comfyAPI.app.app.queuePrompt(0, 1);
  });
  await page.waitForFunction(() => window.__lotts.done, null, { timeout: timeoutMs, polling: 500 });
  return await page.evaluate(() => ({ error: window.__lotts.error, executed: window.__lotts.executed }));
}

// Switch the Vue node renderer on or off the way the settings dialog does.
export async function setVueNodes(page, on) {
  await page.evaluate(async (on) => {
    await window.comfyAPI.app.app.extensionManager.setting.set("Comfy.VueNodes.Enabled", on);
  }, on);
  await page.waitForTimeout(1500);  // the renderer swaps every node's element
}

// Is the Vue renderer on? (the frontend's own flag; false where it has none)
export const vueNodesOn = (page) => page.evaluate(() => !!window.LiteGraph?.vueNodesMode);

// Persist the open workflow the way a user's click does: the frontend's change tracker
// (on mouseup) stores it, and restores it on a page reload.
export async function persistByClick(page) {
  await page.mouse.click(800, 950);
  await page.waitForTimeout(500);
}
