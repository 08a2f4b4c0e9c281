// jmle-eval report: sortable tables, the filtered question table and the question view.
// Everything that came from a model or a data set is inserted as text (textContent), never as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const RUNS = DATA.runs;
  const QS = DATA.questions;
  const LANG = DATA.lang || "ja";
  const PAGE = 200;
  const GRADED = new Set(["C", "W", "P", "E"]);
  const WRONG = new Set(["W", "P", "E"]);
  const SYMBOL = { C: "✓", W: "✗", P: "?", E: "E", M: "M", "-": "" };
  const VERDICT = { C: "correct", W: "wrong", P: "parse failure", E: "request error", M: "no answer file", "-": "not in run" };

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }
  const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const fold = (text) => text.normalize("NFKC").toLowerCase(); // ＭＲＩ and mri find MRI
  const goldText = (q) => q.gold.map((a) => a.join(",")).join(" or ");

  // ---- static tables (leaderboard): sort by clicking a header -------------------------------
  function cellKey(td) {
    const raw = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim();
    const num = Number(raw);
    return raw !== "" && !Number.isNaN(num) ? num : raw.toLowerCase();
  }
  function compareKeys(a, b) {
    const emptyA = a === "" || a === "–", emptyB = b === "" || b === "–";
    if (emptyA || emptyB) return emptyA === emptyB ? 0 : emptyA ? 1 : -1; // blanks last
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), "en", { numeric: true });
  }
  function makeSortable(table) {
    const heads = [...table.tHead.rows[table.tHead.rows.length - 1].cells];
    heads.forEach((th, col) => {
      th.tabIndex = 0;
      const sort = () => {
        const first = table.tBodies[0].rows[0];
        const numeric = first && typeof cellKey(first.cells[col]) === "number";
        const current = th.getAttribute("aria-sort");
        // first click: largest number first, or text A→Z; the next click reverses
        const dir = current ? (current === "descending" ? 1 : -1) : numeric ? -1 : 1;
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = [...body.rows];
        rows.sort((r1, r2) => {
          const k1 = cellKey(r1.cells[col]), k2 = cellKey(r2.cells[col]);
          const c = compareKeys(k1, k2);
          return c === 0 ? Number(r1.dataset.rank) - Number(r2.dataset.rank) : dir * c;
        });
        body.append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);

  // ---- question table --------------------------------------------------------------------------
  const state = { wrongIn: false, run: 0, wrongAll: false, disagree: false, parseFail: false, image: false,
    judgeDisagree: false, search: "", searchText: "", sortKey: null, sortDir: 1, page: 0, view: [], current: -1 };
  const JUDGED = DATA.judge_marks || null; // per question, per run: D judge ≠ parser, A judged, S stale/error, - none
  const stats = QS.map((q, i) => {
    const marks = DATA.marks[i];
    let graded = 0, right = 0;
    for (const m of marks) { if (GRADED.has(m)) graded++; if (m === "C") right++; }
    const distinct = new Set(DATA.answers[i].filter((a) => a !== ""));
    return { graded, right, disagree: distinct.size > 1, parseFail: marks.includes("P"),
      haystack: fold(q.id + "\n" + q.stem + "\n" + (q.case || "") + "\n" + q.choices.map((c) => c[1]).join("\n") +
        "\n" + (q.category || "")) };
  });
  const FILTERS = [
    ["wrongIn", "wrong in this run", "the run chosen on the right answered it wrongly (parse failures and errors count as wrong)",
      (i) => WRONG.has(DATA.marks[i][state.run])],
    ["wrongAll", "wrong in every run", "no run that was graded on it got it right: candidate key errors or hard questions",
      (i) => stats[i].graded > 0 && stats[i].right === 0],
    ["disagree", "runs disagree", "at least two runs gave different parsed answers",
      (i) => stats[i].disagree],
    ["parseFail", "parse failures", "at least one run's answer could not be parsed",
      (i) => stats[i].parseFail],
    ["image", "image questions", "the question needs its clinical image(s)",
      (i) => QS[i].image],
  ];
  if (JUDGED) {
    FILTERS.push(["judgeDisagree", "parser ≠ judge",
      "in at least one run, a judge decided differently from the parser (other letters, or right vs wrong)",
      (i) => JUDGED[i].includes("D")]);
  }

  function matches(i) {
    for (const [key, , , test] of FILTERS) if (state[key] && !test(i)) return false;
    return !state.search || stats[i].haystack.includes(state.search);
  }
  function sortValue(i, key) {
    const q = QS[i];
    if (key === "order") return i;
    if (key === "right") return stats[i].graded ? stats[i].right / stats[i].graded : "";
    if (key === "human") return q.human === null ? "" : q.human;
    if (key.startsWith("run:")) return "CWPEM-".indexOf(DATA.marks[i][Number(key.slice(4))]);
    return q[key] === null || q[key] === undefined ? "" : q[key];
  }
  function computeView() {
    const view = [];
    for (let i = 0; i < QS.length; i++) if (matches(i)) view.push(i);
    if (state.sortKey) {
      view.sort((a, b) => {
        const c = compareKeys(sortValue(a, state.sortKey), sortValue(b, state.sortKey));
        return c === 0 ? a - b : state.sortDir * c;
      });
    }
    state.view = view;
    state.page = Math.min(state.page, Math.max(0, Math.ceil(view.length / PAGE) - 1));
  }

  const ATTRS = [...new Set(QS.flatMap((q) => Object.keys(q.attributes || {})))].slice(0, 3);
  const COLUMNS = [
    ["order", "id", (q) => q.id],
    ...(DATA.multi_exam ? [["exam", "exam", (q) => q.exam]] : []),
    ...(QS.some((q) => q.block) ? [["block", "block", (q) => q.block], ["section", "section", (q) => q.section]] : []),
    ...ATTRS.map((name) => [`attr:${name}`, name, (q) => (q.attributes || {})[name] || ""]),
    ["type", "type", (q) => (q.type === "multi" ? `multi-${q.select}` : q.type)],
    ["image", "image", (q) => (q.image ? "yes" : "no")],
    ["points", "points", (q) => q.points],
    ...(QS.some((q) => q.human !== null) ? [["human", "human %", (q) => (q.human === null ? "" : q.human.toFixed(1))]] : []),
    ["right", "runs ✓", (q, i) => (stats[i].graded ? `${stats[i].right}/${stats[i].graded}` : "")],
  ];

  function renderFilters() {
    const box = document.getElementById("filters");
    box.replaceChildren();
    for (const [key, label, help, test] of FILTERS) {
      let count = 0;
      for (let i = 0; i < QS.length; i++) if (test(i)) count++;
      const check = el("input", { type: "checkbox", id: `f-${key}`, "data-filter": key,
        onchange: (e) => { state[key] = e.target.checked; state.page = 0; refresh(); } });
      check.checked = state[key];
      box.append(el("label", { title: help }, check, ` ${label} `, el("span", { class: "count", id: `c-${key}` }, `(${count})`)));
      if (key === "wrongIn") {
        const select = el("select", { id: "f-run", "aria-label": "run for 'wrong in this run'",
          onchange: (e) => { state.run = Number(e.target.value); state.page = 0; renderFilters(); refresh(); } },
        RUNS.map((r, k) => el("option", { value: k, selected: k === state.run }, r.label)));
        box.append(select);
      }
    }
    const search = el("input", { type: "search", id: "f-search", placeholder: "search id, stem, choices…",
      value: state.searchText, oninput: (e) => {
        state.searchText = e.target.value;
        state.search = fold(e.target.value.trim());
        state.page = 0;
        refresh();
      } });
    box.append(search, el("span", { class: "count", id: "f-shown" }));
  }

  function renderHead() {
    const row = el("tr");
    const headers = [...COLUMNS.map(([key, label]) => [key, label, null]),
      ...RUNS.map((r, k) => [`run:${k}`, r.label, `${r.label} — run ${r.name}`])];
    for (const [key, label, title] of headers) {
      const th = el("th", { class: key.startsWith("run:") ? "run" : null, title: title || `sort by ${label}`, tabindex: 0 }, label);
      if (state.sortKey === key) th.setAttribute("aria-sort", state.sortDir === 1 ? "ascending" : "descending");
      const sort = () => {
        state.sortDir = state.sortKey === key ? -state.sortDir : 1;
        state.sortKey = key;
        renderHead(); refresh();
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
      row.append(th);
    }
    document.querySelector("#qtable thead").replaceChildren(row);
  }

  function renderPager(id) {
    const pages = Math.max(1, Math.ceil(state.view.length / PAGE));
    const first = state.view.length ? state.page * PAGE + 1 : 0;
    const last = Math.min(state.view.length, (state.page + 1) * PAGE);
    const go = (p) => () => { state.page = p; renderRows(); };
    document.getElementById(id).replaceChildren(
      el("button", { disabled: state.page === 0, onclick: go(state.page - 1), "aria-label": "previous page" }, "‹ prev"),
      el("span", { class: "muted" }, `${first}–${last} of ${state.view.length} (page ${state.page + 1}/${pages})`),
      el("button", { disabled: state.page >= pages - 1, onclick: go(state.page + 1), "aria-label": "next page" }, "next ›"));
  }

  function renderRows() {
    const rows = state.view.slice(state.page * PAGE, (state.page + 1) * PAGE).map((i) => {
      const q = QS[i];
      const marks = DATA.marks[i];
      const tr = el("tr", { "data-qid": q.id, tabindex: 0, class: i === state.current ? "current" : null,
        onclick: () => openQuestion(i), onkeydown: (e) => { if (e.key === "Enter") openQuestion(i); } },
      COLUMNS.map(([key, , get]) => el("td", { class: ["points", "human", "right"].includes(key) ? "num" : null }, get(q, i))),
      RUNS.map((r, k) => {
        const m = marks[k];
        const answer = DATA.answers[i][k];
        const differs = JUDGED !== null && JUDGED[i][k] === "D";
        const grade = DATA.judge_grades ? DATA.judge_grades[i][k] : "";
        const title = `${r.label}: ${VERDICT[m]}${answer ? " — " + answer : ""}` +
          (grade ? ` — judge: ${grade}` : "") + (differs ? " — a judge decided differently from the parser" : "");
        return el("td", { class: `m m-${m === "-" ? "none" : m}${differs ? " jd" : ""}`, title },
          m === "C" || m === "W" ? `${SYMBOL[m]} ${answer}` : SYMBOL[m],
          grade ? el("span", { class: "jg" }, ` ⚖${grade}`) : null, differs ? el("span", { class: "jd-mark" }, " ≠") : null);
      }));
      return tr;
    });
    document.querySelector("#qtable tbody").replaceChildren(...rows);
    renderPager("pager-top");
    renderPager("pager-bottom");
    document.getElementById("f-shown").textContent = `${state.view.length} of ${QS.length} questions shown`;
  }

  function refresh() { computeView(); renderRows(); }

  // ---- lazily unpacked per-question answer texts -----------------------------------------------
  const chunkCache = new Map();
  async function unpack(id) {
    const b64 = document.getElementById(id).textContent.trim();
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).text();
  }
  function chunk(k) {
    if (!chunkCache.has(k)) {
      chunkCache.set(k, unpack(`chunk-${k}`).then(JSON.parse));
      if (chunkCache.size > 8) chunkCache.delete(chunkCache.keys().next().value); // keep memory bounded
    }
    return chunkCache.get(k);
  }

  // ---- question view ---------------------------------------------------------------------------
  const panel = document.getElementById("qview");

  function facts(d) {
    if (!d) return "";
    const parts = [];
    if (d.parse_rule) parts.push(`parse rule: ${d.parse_rule}${d.strict ? " (strict format)" : ""}`);
    if (d.kinki_hits && d.kinki_hits.length) parts.push(`prohibited-choice picks: ${d.kinki_hits.join(",")}`);
    parts.push(`tokens: ${fmtInt(d.prompt_tokens)} prompt / ${fmtInt(d.completion_tokens)} completion` +
      (d.reasoning_tokens ? ` (${fmtInt(d.reasoning_tokens)} reasoning)` : ""));
    if (d.latency_s !== null && d.latency_s !== undefined) parts.push(`latency: ${d.latency_s.toFixed(1)} s`);
    if (d.finish_reason) parts.push(`finish: ${d.finish_reason}`);
    if (d.cost_usd !== null && d.cost_usd !== undefined) parts.push(`cost: $${d.cost_usd.toFixed(4)}`);
    if (d.attempts > 1) parts.push(`attempts: ${d.attempts}`);
    return parts.join(" · ");
  }

  function judgeGrade(e) {
    if (e.status === "stale") return "stale: it judged an earlier answer (not used)";
    if (e.status !== "ok") return `judge error: ${e.error || "no grade"}`;
    if (e.kind === "score") return `score ${e.score}/10`;
    if (e.kind === "verdict") return `${e.grade}${e.confidence === null ? "" : ` (confidence ${e.confidence} %)`}`;
    return `answer: ${e.grade}${e.correct ? " ✓" : " ✗"}`;
  }

  function judgesBlock(run, judges) {
    const names = Object.keys(judges).sort();
    return el("div", { class: "judges" }, names.map((name) => {
      const e = judges[name];
      const who = (run.judges && run.judges[name]) || name;
      const agrees = e.agrees === true ? "agrees with the parser" : e.agrees === false ? "disagrees with the parser" : null;
      return el("div", { class: `judge${e.agrees === false ? " disagree" : ""}`, "data-judge": name },
        el("div", { class: "judge-head" }, `⚖ ${who} · ${e.rubric}: `, el("strong", {}, judgeGrade(e)),
          agrees ? el("span", { class: `badge${e.agrees ? "" : " warn"}` }, agrees) : null,
          e.extracted ? el("span", { class: "muted" }, ` · read: ${e.extracted}`) : null),
        e.rationale ? el("p", { class: "rationale", lang: LANG }, e.rationale) : null);
    }));
  }

  function runBlock(i, k, d) {
    const m = DATA.marks[i][k];
    const answer = DATA.answers[i][k];
    const run = RUNS[k];
    const box = el("section", { class: `run-answer ${m}`, "data-run": run.name },
      el("h4", {}, `${SYMBOL[m] || "·"} ${run.label} `,
        el("span", { class: "badge" }, VERDICT[m]),
        el("span", { class: "badge" }, answer ? `answer: ${answer}` : "no parsed answer")),
      el("div", { class: "facts" }, `run ${run.name}`, d ? " · " + facts(d) : ""));
    if (!d) return box;
    if (d.judges) box.append(judgesBlock(run, d.judges));
    if (d.error) box.append(el("pre", { class: "error" }, `error: ${d.error}`));
    if (d.answer_text !== null || !d.error) {
      box.append(el("div", { class: "label muted" }, "answer text"),
        el("pre", { class: "answer-text", lang: LANG }, d.answer_text || "(empty answer)"));
    }
    if (d.reasoning_text) {
      const details = el("details", { class: "reasoning" },
        el("summary", {}, `reasoning (${fmtInt(d.reasoning_chars)} characters)`));
      details.addEventListener("toggle", () => {  // the text becomes DOM only when someone reads it
        if (details.open && details.childElementCount === 1) details.append(el("pre", { lang: LANG }, d.reasoning_text));
      });
      box.append(details);
    }
    return box;
  }

  function spread(i) {
    const counts = new Map();
    [...DATA.marks[i]].forEach((m, k) => {
      if (!GRADED.has(m)) return;
      const key = DATA.answers[i][k] || (m === "E" ? "error" : "parse failure");
      counts.set(key, (counts.get(key) || 0) + 1);
    });
    return el("div", { class: "spread" }, "answers across runs: ",
      [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([a, n]) => el("span", { title: `${n} run(s)` }, `${a} ×${n}`)));
  }

  async function openQuestion(i) {
    state.current = i;
    const q = QS[i];
    const pos = state.view.indexOf(i);
    const step = (delta) => () => { const j = state.view[pos + delta]; if (j !== undefined) openQuestion(j); };
    panel.replaceChildren(...[
      el("div", { class: "bar" },
        el("h2", {}, q.id),
        el("button", { onclick: step(-1), disabled: pos <= 0, title: "previous in the filtered list (←)" }, "‹"),
        el("button", { onclick: step(1), disabled: pos < 0 || pos >= state.view.length - 1, title: "next (→)" }, "›"),
        el("button", { onclick: closeQuestion, title: "close (Esc)", id: "qview-close" }, "✕")),
      el("div", { class: "meta" }, [q.exam ? `exam ${q.exam}` : null, q.block ? `block ${q.block}` : null, q.section ? `${q.section} section` : null,
        ...Object.entries(q.attributes || {}).map(([k, v]) => `${k}: ${v}`),
        q.type === "multi" ? `choose ${q.select}` : q.type, `${q.points} point${q.points === 1 ? "" : "s"}`,
        q.human === null ? null : `examinees ${q.human.toFixed(1)} % correct`, q.category].filter(Boolean).join(" · ")),
      q.case ? el("div", { class: "case", lang: LANG }, q.case) : null,
      el("div", { class: "stem", lang: LANG }, q.stem),
      q.images.length ? el("div", { class: "images" }, q.images.map((n) => {
        const img = DATA.images[n];
        return el("img", { src: document.getElementById(`img-${n}`).textContent.trim(), alt: img.name, title: img.name,
          width: img.width, height: img.height, loading: "lazy" });
      })) : null,
      q.image && !q.images.length ? el("p", { class: "warn" }, "This question needs an image that the data set does not include.") : null,
      el("ol", { class: "choices", lang: LANG }, q.choices.map(([letter, text]) =>
        el("li", { class: q.gold.some((a) => a.includes(letter)) ? "gold" : null },
          `${letter}　${text}`, q.kinki.includes(letter) ? el("span", { class: "kinki" }, "prohibited choice (unofficial)") : null))),
      el("p", { class: "gold-line" }, el("strong", {}, "Gold answer: "), goldText(q),
        q.all_credited ? " (every candidate is credited)" : "", q.points === 0 ? " (excluded from grading)" : ""),
      q.notes.length ? el("p", { class: "muted" }, `data notes: ${q.notes.join("; ")}`) : null,
      spread(i),
      el("h3", {}, "Runs"),
      el("div", { id: "qview-runs" }, el("p", { class: "muted" }, "loading answers…"))].filter(Boolean));
    panel.hidden = false;
    document.body.classList.add("qview-open");
    panel.scrollTop = 0;
    document.querySelectorAll("#qtable tr.current").forEach((tr) => tr.classList.remove("current"));
    const row = document.querySelector(`#qtable tr[data-qid="${CSS.escape(q.id)}"]`);
    if (row) {
      row.classList.add("current");
      row.scrollIntoView({ block: "nearest" });
    }
    if (location.hash !== `#q=${encodeURIComponent(q.id)}`) history.replaceState(null, "", `#q=${encodeURIComponent(q.id)}`);
    let details;
    try {
      if (typeof DecompressionStream === "undefined") throw new Error("this browser lacks DecompressionStream");
      details = (await chunk(Math.floor(i / DATA.chunk_size)))[q.id] || [];
    } catch (err) {
      details = [];
      panel.querySelector("#qview-runs").before(el("p", { class: "warn" },
        `Answer texts could not be unpacked (${err.message}); use a current Chrome, Firefox or Safari.`));
    }
    if (state.current !== i) return; // another question was opened meanwhile
    panel.querySelector("#qview-runs").replaceChildren(...RUNS.map((r, k) => runBlock(i, k, details[k] || null)));
  }

  function closeQuestion() {
    panel.hidden = true;
    document.body.classList.remove("qview-open");
    state.current = -1;
    document.querySelectorAll("#qtable tr.current").forEach((tr) => tr.classList.remove("current"));
    history.replaceState(null, "", location.pathname + location.search);
  }

  document.addEventListener("keydown", (e) => {
    if (panel.hidden || e.target.matches("input, select, textarea")) return;
    const pos = state.view.indexOf(state.current);
    if (e.key === "Escape") closeQuestion();
    else if (e.key === "ArrowRight" && pos >= 0 && pos < state.view.length - 1) openQuestion(state.view[pos + 1]);
    else if (e.key === "ArrowLeft" && pos > 0) openQuestion(state.view[pos - 1]);
  });

  function openFromHash() {
    const m = /^#q=(.+)$/.exec(location.hash);
    if (!m) return;
    const id = decodeURIComponent(m[1]);
    const i = QS.findIndex((q) => q.id === id);
    if (i >= 0 && i !== state.current) openQuestion(i);
  }
  window.addEventListener("hashchange", openFromHash);

  if (JUDGED) {
    document.querySelector(".legend").append(" ⚖ the judge's grade of record · ≠ a judge decided differently from " +
      "the parser; the question view shows each judge's grade and rationale.");
  }
  renderFilters();
  renderHead();
  refresh();
  openFromHash();
  document.body.dataset.ready = "true"; // lets tests (and people) know the page is fully built
})();
