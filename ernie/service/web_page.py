"""The page of ``python -m ernie.service.web``: one Jinja2 template (autoescaped) with inline CSS
and JS, no external assets (the demo must work offline).

It lives in a Python module rather than an .html file so that it is packaged with the code
without package-data configuration. The JS writes every string that comes from the model or
the user with ``textContent``, never as markup; the server sends a per-response nonce that the
Content-Security-Policy requires of the inline script and style.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style nonce="{{ nonce }}">
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 760px; margin: 0 auto; padding: 18px 22px 28px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .info { color: #5b6475; font-size: 13px; margin-bottom: 14px; }
  .info code { background: #e8ebf0; padding: 0 4px; border-radius: 3px; }
  label { display: block; font-weight: 600; margin: 10px 0 4px; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: 8px; border: 1px solid #c4cad4;
             border-radius: 6px; resize: vertical; }
  .row { display: flex; align-items: center; gap: 14px; margin-top: 10px; }
  button { font: inherit; padding: 7px 18px; border: 0; border-radius: 6px; background: #2f6fd6; color: #fff;
           cursor: pointer; }
  button:disabled { background: #8aa8dc; cursor: wait; }
  #latency { color: #5b6475; font-size: 13px; }
  #error { color: #a3161b; background: #fdecec; border: 1px solid #f3b9bb; border-radius: 6px; padding: 8px 10px;
           margin-top: 12px; }
  #result { margin-top: 16px; }
  /* one grid for all rows, so that every bar starts at the same x */
  .bars { display: grid; grid-template-columns: minmax(60px, max-content) 1fr 64px; gap: 8px 10px;
          align-items: center; }
  .bar-row { display: contents; }
  .bar-label { font-weight: 600; overflow-wrap: anywhere; }
  .bar-track { background: #e3e7ee; border-radius: 4px; height: 18px; overflow: hidden; }
  .bar { background: #2f6fd6; height: 100%; }
  .bar-row.top .bar { background: #1f9d55; }
  .bar-value { text-align: right; font-variant-numeric: tabular-nums; }
  .ner-text { background: #fff; border: 1px solid #d8dde5; border-radius: 6px; padding: 10px; line-height: 2;
              white-space: pre-wrap; overflow-wrap: anywhere; }
  .ent { border-radius: 4px; padding: 1px 3px; margin: 0 1px; background: #ffe7a3; }
  .ent-type { font-size: 11px; font-weight: 700; margin-left: 3px; color: #6b4e00; }
  .ent[data-type="PER"] { background: #cfe3ff; }
  .ent[data-type="ORG"] { background: #d7f2d0; }
  .ent[data-type="LOC"] { background: #ffd9c7; }
  .neighbours { margin: 0; padding-left: 22px; }
  .neighbours li { margin: 4px 0; }
  .score { color: #5b6475; font-variant-numeric: tabular-nums; margin-right: 8px; }
  .note { color: #5b6475; font-size: 13px; margin-top: 8px; }
  [hidden] { display: none !important; }
</style>
</head>
<body data-kind="{{ kind }}" data-max-chars="{{ max_chars }}">
<main>
  <h1>{{ title }}</h1>
  <div class="info">
    {{ kind_doc }} · model <code>{{ model_name }}</code>
    {%- if labels %} · labels:
      {%- for name in labels %} <code>{{ name }}</code>{% endfor %}
    {%- endif %}
    {%- if index_size %} · {{ index_size }} indexed sentences{% endif %}
  </div>
  <label for="text">{{ text_label }}</label>
  <textarea id="text" rows="3" maxlength="{{ max_chars }}" placeholder="{{ placeholder }}"></textarea>
  {% if pairs %}
  <label for="text_b">Second text (optional, for sentence-pair models)</label>
  <textarea id="text_b" rows="1" maxlength="{{ max_chars }}"></textarea>
  {% endif %}
  <div class="row">
    <button id="predict" type="button">{{ button }}</button>
    <span id="latency" aria-live="polite"></span>
  </div>
  <div id="error" role="alert" hidden></div>
  <section id="result" aria-live="polite"></section>
</main>
<script nonce="{{ nonce }}">
"use strict";
(function () {
  const kind = document.body.dataset.kind;
  const $ = (id) => document.getElementById(id);
  // every model or user string goes through textContent: it is shown, never parsed as markup
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function showError(msg) {
    $("error").textContent = msg;
    $("error").hidden = false;
  }
  function renderBars(res, box) {
    let top = 0;
    res.labels.forEach((x, i) => { if (x.prob > res.labels[top].prob) top = i; });
    const grid = el("div", "bars");
    box.appendChild(grid);
    res.labels.forEach((x, i) => {
      const row = el("div", "bar-row" + (i === top ? " top" : ""));
      row.dataset.label = x.label;
      row.dataset.prob = String(x.prob);
      const track = el("div", "bar-track");
      const bar = el("div", "bar");
      bar.style.width = (100 * x.prob).toFixed(2) + "%";
      track.appendChild(bar);
      row.append(el("span", "bar-label", x.label), track, el("span", "bar-value", x.prob.toFixed(4)));
      grid.appendChild(row);
    });
  }
  function renderRegression(res, box) {
    box.appendChild(el("div", "bar-value score-value", "score " + res.score.toFixed(4)));
  }
  function renderEntities(res, box) {
    const p = el("div", "ner-text");
    res.segments.forEach((s) => {
      if (s.type === null) { p.appendChild(document.createTextNode(s.text)); return; }
      const span = el("mark", "ent", s.text);
      span.dataset.type = s.type;
      span.title = s.type + " " + s.score.toFixed(3);
      span.appendChild(el("span", "ent-type", s.type));
      p.appendChild(span);
    });
    box.appendChild(p);
    box.appendChild(el("div", "note", res.entities.length ? res.entities.length + " entities" : "no entities found"));
  }
  function renderNeighbours(res, box) {
    const ol = el("ol", "neighbours");
    res.neighbours.forEach((n) => {
      const li = el("li");
      li.dataset.score = String(n.score);
      li.append(el("span", "score", n.score.toFixed(4)), el("span", "neighbour", n.text));
      ol.appendChild(li);
    });
    box.appendChild(ol);
  }
  const renderers = {classification: renderBars, regression: renderRegression, ner: renderEntities,
                     encoder: renderNeighbours};
  async function predict() {
    const body = {text: $("text").value};
    if ($("text_b") && $("text_b").value.trim()) body.text_b = $("text_b").value;
    $("error").hidden = true;
    $("predict").disabled = true;
    const t0 = performance.now();
    try {
      const resp = await fetch("api/predict", {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify(body)});
      const ms = performance.now() - t0;
      let res;
      try { res = await resp.json(); } catch (e) { res = {error: "the server answered " + resp.status}; }
      if (!resp.ok) { showError(res.error || ("error " + resp.status)); return; }
      const box = $("result");
      box.replaceChildren();
      renderers[res.kind](res, box);
      if (res.truncated) {
        box.appendChild(el("div", "note", "the text was cut to the model's " + res.max_seqlen + " tokens"));
      }
      $("latency").textContent = "model " + res.latency_ms.toFixed(1) + " ms · round trip " + ms.toFixed(1) + " ms";
    } catch (e) {
      showError("no answer from the server (" + e.message + ")");
    } finally {
      $("predict").disabled = false;
    }
  }
  $("predict").addEventListener("click", predict);
  // Ctrl/Cmd+Enter in a text box predicts too
  document.querySelectorAll("textarea").forEach((t) => t.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); predict(); }
  }));
})();
</script>
</body>
</html>
"""
