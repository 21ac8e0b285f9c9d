// prtrace trace viewer: routes are in the URL fragment (#/traces, #/traces/<id>,
// #/traces/<id>/events/<event id>), so the static files need no server-side routing.
import { ApiError, allEvents, artifactText, getTrace, listTraces, resultLink, token } from "./api.js";
import { append, clear, diffBlock, duration, h } from "./dom.js";

const view = document.getElementById("view");
const loginSection = document.getElementById("login");
const statusLine = document.getElementById("status");
const logoutButton = document.getElementById("logout");

function say(text) { statusLine.textContent = text; }

function showLogin(message) {
  loginSection.hidden = false;
  logoutButton.hidden = true;
  clear(view);
  say(message || "");
  document.getElementById("token").focus();
}

document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  token.set(input.value.trim());
  input.value = "";
  route();
});
logoutButton.addEventListener("click", () => { token.clear(); showLogin("Logged out."); });
window.addEventListener("hashchange", () => route());

async function route() {
  if (!token.get()) { showLogin(); return; }
  loginSection.hidden = true;
  logoutButton.hidden = false;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "traces" && parts[1]) await showTrace(parts[1], parts[3]);
    else await showList();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      token.clear();
      showLogin("The token was refused; log in again.");
      return;
    }
    clear(view);
    view.append(h("p", { role: "alert", class: "bad" }, `Error: ${error.message}`));
    say("");
  }
}

// ---- list -------------------------------------------------------------------------

const VERDICTS = ["resolved", "unresolved", "error"];
const STATUSES = ["open", "finalizing", "assembling", "testing", "judging", "complete", "rejected", "failed"];
let listState = { items: [], next: null };

function verdictOf(trace) { return trace.outcome?.qa?.verdict ?? null; }
function overallOf(trace) { return trace.outcome?.judge?.overall ?? null; }
// The list's overall cell: the judge's score, or a labelled stand-in's (never mixed up).
function overallCell(trace) {
  const standIn = trace.outcome?.judge?.stand_in_overall ?? null;
  if (overallOf(trace) === null && standIn !== null) {
    return h("span", { class: "warn", title: "model unavailable: offline stand-in" }, `– (stand-in ${standIn})`);
  }
  return overallOf(trace) ?? "–";
}

async function showList() {
  say("Loading traces…");
  const page = await listTraces();
  listState = { items: page.items, next: page.next_token };
  renderList();
  say(`${listState.items.length} traces loaded.`);
}

function select(id, label, options) {
  return h("div", {},
    h("label", { for: id }, label),
    h("select", { id, onchange: renderTable },
      h("option", { value: "" }, "any"), options.map((o) => h("option", { value: o }, o))));
}

function renderList() {
  clear(view);
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter traces",
    onsubmit: (e) => e.preventDefault() },
    select("f-status", "Status", STATUSES),
    select("f-verdict", "Verdict", VERDICTS),
    h("div", {}, h("label", { for: "f-text" }, "Title or id contains"),
      h("input", { id: "f-text", type: "search", oninput: renderTable })),
    h("div", {}, h("label", { for: "f-sort" }, "Sort by"),
      h("select", { id: "f-sort", onchange: renderTable },
        h("option", { value: "created-desc" }, "newest first"),
        h("option", { value: "created-asc" }, "oldest first"),
        h("option", { value: "score-desc" }, "overall score, high to low"),
        h("option", { value: "score-asc" }, "overall score, low to high"))));
  const more = h("button", { type: "button", id: "more", hidden: !listState.next, onclick: loadMore },
    "Load more traces");
  view.append(h("h2", {}, "Traces"), filters, h("div", { id: "trace-table" }), more);
  renderTable();
}

async function loadMore() {
  const page = await listTraces(listState.next);
  listState.items.push(...page.items);
  listState.next = page.next_token;
  renderList();
}

function renderTable() {
  const status = document.getElementById("f-status").value;
  const verdict = document.getElementById("f-verdict").value;
  const text = document.getElementById("f-text").value.toLowerCase();
  const sort = document.getElementById("f-sort").value;
  let items = listState.items.filter((t) =>
    (!status || t.status === status) && (!verdict || verdictOf(t) === verdict) &&
    (!text || t.trace_id.toLowerCase().includes(text) ||
      String(t.metadata?.task?.title ?? "").toLowerCase().includes(text)));
  const score = (t) => overallOf(t) ?? -1;
  const by = {
    "created-desc": (a, b) => b.created_at.localeCompare(a.created_at),
    "created-asc": (a, b) => a.created_at.localeCompare(b.created_at),
    "score-desc": (a, b) => score(b) - score(a),
    "score-asc": (a, b) => score(a) - score(b),
  }[sort];
  items = [...items].sort(by);
  const rows = items.map((t) => h("tr", {},
    h("td", {}, h("a", { href: `#/traces/${encodeURIComponent(t.trace_id)}`, class: "mono" }, t.trace_id)),
    h("td", {}, t.metadata?.task?.title ?? ""),
    h("td", {}, t.status),
    h("td", {}, verdictBadge(verdictOf(t))),
    h("td", {}, overallCell(t)),
    h("td", {}, t.created_at)));
  const table = h("table", {},
    h("caption", { class: "muted" }, `${items.length} of ${listState.items.length} traces shown`),
    h("thead", {}, h("tr", {}, ["Trace", "Task", "Status", "Verdict", "Overall", "Created"].map(
      (c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows));
  append(clear(document.getElementById("trace-table")), [table]);
}

function verdictBadge(verdict) {
  if (!verdict) return h("span", { class: "muted" }, "–");
  const kind = verdict === "resolved" ? "ok" : verdict === "unresolved" ? "bad" : "warn";
  return h("span", { class: `badge ${kind}`, "data-verdict": verdict }, verdict);
}

// ---- one trace ----------------------------------------------------------------------

async function showTrace(traceId, focusEvent) {
  say("Loading the trace…");
  const trace = await getTrace(traceId);
  clear(view);
  const outcome = trace.outcome ?? {};
  const meta = trace.metadata ?? {};
  view.append(
    h("p", {}, h("a", { href: "#/traces" }, "← all traces")),
    h("h2", { id: "trace-title" }, meta.task?.title ?? trace.trace_id),
    h("dl", { class: "kv" },
      h("dt", {}, "Trace"), h("dd", { class: "mono" }, trace.trace_id),
      h("dt", {}, "Status"), h("dd", { id: "trace-status" }, trace.status),
      h("dt", {}, "Repository"), h("dd", {}, `${meta.repository?.url ?? ""} @ ${meta.repository?.base_commit ?? ""}`),
      h("dt", {}, "Author"), h("dd", {}, `${meta.author?.id ?? ""} (${meta.author?.kind ?? ""})`),
      h("dt", {}, "Created"), h("dd", {}, trace.created_at)));
  if (trace.status === "rejected") {
    view.append(h("section", { class: "panel" }, h("h3", {}, "Rejected"),
      h("p", { class: "bad" }, `${outcome.reason?.code}: ${outcome.reason?.detail}`)));
  }
  if (trace.status === "failed") {
    view.append(h("section", { class: "panel" }, h("h3", {}, "Failed"),
      h("p", { class: "bad" }, `${outcome.stage}: ${outcome.error}`)));
  }
  if (trace.status === "complete") {
    view.append(integrityPanel(trace), qaPanel(trace), judgePanel(trace), metricsPanel(outcome.metrics ?? {}));
  }
  const timeline = h("section", { class: "panel", "aria-labelledby": "timeline-title" },
    h("h3", { id: "timeline-title" }, "Timeline"));
  view.append(timeline);
  if (["complete", "testing", "judging", "failed"].includes(trace.status)) {
    try {
      const events = await allEvents(trace.trace_id);
      timeline.append(renderTimeline(trace, events, outcome.metrics?.idle_threshold_ms));
    } catch (error) {
      timeline.append(h("p", { class: "muted" }, `Events not available: ${error.message}`));
    }
  } else {
    timeline.append(h("p", { class: "muted" }, "Events are shown once the trace is assembled."));
  }
  say(`Trace ${trace.trace_id} loaded.`);
  if (focusEvent) focusOn(focusEvent);
}

function integrityPanel(trace) {
  const chain = trace.outcome.chain ?? {};
  const chunks = trace.outcome.chunk_count ?? trace.chunks_received;
  return h("section", { class: "panel", id: "integrity", "aria-labelledby": "integrity-title" },
    h("h3", { id: "integrity-title" }, "Integrity"),
    h("dl", { class: "kv" },
      h("dt", {}, "Chain head"), h("dd", { class: "mono", id: "chain-head" }, chain.head ?? "–"),
      h("dt", {}, "Chain length"), h("dd", {}, `${chain.length ?? "–"} events (key ${chain.key_id ?? "–"})`),
      h("dt", {}, "Chunks"), h("dd", { class: "ok" },
        `${chunks} of ${trace.finalize?.expected_chunks ?? chunks} verified: each chunk's MAC, ` +
        "event seq continuity and schema were checked when the trace was assembled")));
}

function testList(name, list) {
  if (!list) return null;
  return h("div", {}, h("h4", {}, `${name} (${list.count})`),
    list.ids.length ? h("ul", { "data-list": name }, list.ids.map((id) => h("li", { class: "mono" }, id)))
      : h("p", { class: "muted" }, "none"),
    list.truncated ? h("p", { class: "muted" }, "(list cut; the QA report has all)") : null);
}

function linkButton(traceId, route, label) {
  const holder = h("span", {});
  const button = h("button", { type: "button", onclick: async () => {
    try {
      const link = await resultLink(traceId, route);
      append(clear(holder), [h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer" },
        `${label} (link valid ${link.expires_in} s)`)]);
    } catch (error) { append(clear(holder), [h("span", { class: "bad" }, error.message)]); }
  } }, `Get ${label} link`);
  holder.append(button);
  return holder;
}

// Which pytest runs of the QA task there are, in the order they ran.
const QA_RUNS = [["base", "base"], ["final", "final"],
  ["base_with_final_tests", "base with the final's tests"],
  ["held", "held (the base's tests and harness on the final code)"]];

function qaEvidence(qa) {
  const source = qa.target_source && qa.target_source !== "none" ? ` (target tests from ${qa.target_source})` : "";
  return [
    qa.resolution ? h("p", {}, "Resolution: ",
      h("strong", { id: "qa-resolution", "data-resolution": qa.resolution }, qa.resolution), source) : null,
    qa.verdict_reason ? h("p", { id: "qa-reason" }, "Why: ", qa.verdict_reason) : null];
}

function targetList(qa) {
  const targets = qa.target_tests;
  if (!targets || !targets.count) return null;
  const unresolved = new Set(qa.unresolved_targets?.ids ?? []);
  const open = qa.unresolved_targets?.count ?? 0;
  return h("div", {}, h("h4", {}, `Target tests (${targets.count}, ${open} unresolved)`),
    h("ul", { "data-list": "TARGETS" }, targets.ids.map((id) => unresolved.has(id)
      ? h("li", { class: "mono unresolved", "data-unresolved": "true" }, id, h("span", { class: "bad" }, " (unresolved)"))
      : h("li", { class: "mono" }, id))),
    targets.truncated ? h("p", { class: "muted" }, "(list cut; the QA report has all)") : null,
    open && qa.unresolved_targets?.truncated ? h("p", { class: "muted" }, "(unresolved list cut; the QA report has all)") : null);
}

function flagList(qa) {
  const flags = qa.flags ?? [];
  if (!flags.length) return null;
  const total = qa.flag_count ?? flags.length;
  const blocking = flags.filter((f) => f.blocking).length;
  return h("div", { id: "qa-flags" }, h("h4", {}, `Flags (${total}, ${blocking} blocking)`),
    h("ul", { class: "flags" }, flags.map((f) =>
      h("li", { class: f.blocking ? "flag blocking" : "flag", "data-flag": f.code, "data-blocking": String(Boolean(f.blocking)) },
        h("span", { class: `badge ${f.blocking ? "bad" : "warn"}` }, f.blocking ? "blocking" : "not blocking"), " ",
        h("strong", { class: "mono" }, f.code), `: ${f.detail}`,
        f.paths.length ? h("ul", {}, f.paths.map((path) => h("li", { class: "mono" }, path)),
          f.path_count > f.paths.length ? h("li", { class: "muted" }, `… ${f.path_count - f.paths.length} more`) : null) : null))),
    total > flags.length ? h("p", { class: "muted" }, `(${total - flags.length} more flags in the QA report)`) : null);
}

function runList(traceId, qa) {
  const runs = QA_RUNS.filter(([name]) => qa.runs?.[name]);
  if (!runs.length) return null;
  return h("ul", { class: "runs" }, runs.map(([name, label]) => {
    const run = qa.runs[name];
    return h("li", { "data-run": name },
      h("strong", {}, `${label}: `),
      `exit ${run.exit_code ?? "–"}, ${run.passed} passed, ${run.failed} failed, ${run.errors} errors, ${run.skipped} skipped`,
      run.timed_out ? h("span", { class: "bad" }, " (timed out)") : null,
      run.error_reason ? h("span", { class: "bad" }, ` (${run.error_reason})`) : null,
      run.log_sha256 ? artifactButton(traceId, { sha256: run.log_sha256 }, `${name} log`, false) : null);
  }));
}

function qaPanel(trace) {
  const qa = trace.outcome.qa;
  const panel = h("section", { class: "panel", id: "qa", "aria-labelledby": "qa-title" },
    h("h3", { id: "qa-title" }, "QA verdict"));
  if (!qa) {
    panel.append(h("p", { class: "muted" }, `QA did not run (${trace.outcome.qa_skipped ?? "unknown"}).`));
    return panel;
  }
  append(panel, [
    h("p", {}, "Verdict: ", h("strong", { id: "qa-verdict" }, verdictBadge(qa.verdict)),
      ` · ${qa.backend ?? ""} sandbox · ${duration(qa.duration_ms)}`),
    qa.error_reason ? h("p", { class: "bad" }, `${qa.error_reason}: ${qa.error_detail ?? ""}`) : null,
    qaEvidence(qa),
    flagList(qa),
    h("div", { class: "grid" },
      targetList(qa),
      testList("FAIL_TO_PASS", qa.fail_to_pass), testList("PASS_TO_FAIL", qa.pass_to_fail),
      testList("FAIL_TO_FAIL", qa.fail_to_fail),
      qa.fail_to_absent?.count ? testList("FAIL_TO_ABSENT", qa.fail_to_absent) : null,
      qa.fail_to_skipped?.count ? testList("FAIL_TO_SKIPPED", qa.fail_to_skipped) : null,
      testList("PASS_TO_PASS", qa.pass_to_pass)),
    runList(trace.trace_id, qa),
    h("p", {}, "Logs: ", linkButton(trace.trace_id, "qa-report", "QA report with test logs"))]);
  return panel;
}

function citeLink(traceId, eventId) {
  return h("a", { href: `#/traces/${encodeURIComponent(traceId)}/events/${encodeURIComponent(eventId)}`,
    "data-cite": eventId, onclick: (e) => {
      e.preventDefault();
      history.replaceState(null, "", e.currentTarget.getAttribute("href"));
      focusOn(eventId);
    } }, eventId);
}

function scoreCards(trace, scores, kind) {
  return h("div", { class: "grid" }, (scores ?? []).map((s) =>
    h("article", { class: kind, "data-dimension": s.dimension },
      h("h4", {}, `${s.dimension}: `, h("span", { class: "score-value" }, `${s.score}`), " / 5"),
      h("p", {}, s.rationale),
      s.cited_event_ids.length ? h("p", { class: "cites" }, "Cited: ",
        s.cited_event_ids.map((id) => citeLink(trace.trace_id, id))) : null)));
}

// An ensemble of models: who said what, the dimensions whose spread flags review marked.
function modelsTable(review) {
  const dimensions = Object.keys(review.spread ?? {});
  const flagged = (d) => (review.spread[d] ?? 0) > review.threshold;
  return h("table", { id: "judge-models" },
    h("caption", { class: "muted" },
      `Each model's scores (spread above ${review.threshold} flags review)`),
    h("thead", {}, h("tr", {}, ["Model", "Answers", "Overall", ...dimensions].map((c) =>
      h("th", { scope: "col", class: flagged(c) ? "bad" : null }, c)))),
    h("tbody", {}, review.models.map((m) => h("tr", { "data-model": m.judge },
      h("th", { scope: "row", class: "mono" }, m.judge),
      h("td", {}, m.samples),
      h("td", {}, m.overall ?? "–"),
      dimensions.map((d) => h("td", { class: flagged(d) ? "bad" : null }, m.scores?.[d] ?? "–"))))));
}

function judgePanel(trace) {
  const judge = trace.outcome.judge ?? {};
  const standIn = judge.stand_in ?? null;
  const review = judge.review ?? null;
  return h("section", { class: "panel", id: "judge", "aria-labelledby": "judge-title" },
    h("h3", { id: "judge-title" }, "Judge scores"),
    h("p", {}, `${judge.judge ?? ""} (${judge.status ?? ""}), rubric ${judge.rubric_version ?? ""}, overall `,
      h("strong", { id: "judge-overall" }, judge.overall ?? "–")),
    judge.needs_human_review ? h("div", { id: "judge-review", class: "bad", role: "note" },
      h("strong", {}, "Needs human review: the answers disagree."),
      (review?.reasons ?? []).length ? h("ul", {}, review.reasons.map((r) => h("li", {}, r))) : null)
      : null,
    judge.summary ? h("p", {}, judge.summary) : null,
    (judge.problems ?? []).length ? h("ul", { class: "bad" }, judge.problems.map((p) => h("li", {}, p))) : null,
    scoreCards(trace, judge.scores, "score"),
    (review?.models ?? []).length ? modelsTable(review) : null,
    // The model was unavailable: heuristic scores, labelled, never shown as the model's.
    standIn ? h("div", { id: "judge-stand-in", class: "stand-in" },
      h("h4", {}, `Stand-in, not a model score: ${standIn.judge}, overall `,
        h("strong", { id: "judge-stand-in-overall" }, standIn.overall ?? "–")),
      h("p", { class: "warn" }, "The model could not be reached; these offline heuristic scores stand in."),
      scoreCards(trace, standIn.scores, "stand-in-score")) : null);
}

function metricsPanel(metrics) {
  const rows = Object.entries(metrics).filter(([k]) => k !== "version").map(([k, v]) =>
    h("tr", {}, h("th", { scope: "row" }, k),
      h("td", { class: "mono" }, typeof v === "object" && v !== null ? JSON.stringify(v) :
        k.endsWith("_ms") && typeof v === "number" ? `${v} (${duration(v)})` : String(v))));
  return h("section", { class: "panel", id: "metrics", "aria-labelledby": "metrics-title" },
    h("h3", { id: "metrics-title" }, "Metrics"),
    h("table", {}, h("tbody", {}, rows)));
}

function focusOn(eventId) {
  const node = document.getElementById(`event-${eventId}`);
  if (!node) { say(`Event ${eventId} is not in this trace's timeline.`); return; }
  for (const other of document.querySelectorAll("li.event.cited")) other.classList.remove("cited");
  node.classList.add("cited");
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
  say(`Showing event ${eventId}.`);
}

// ---- timeline -------------------------------------------------------------------------

function renderTimeline(trace, events, idleThresholdMs) {
  const threshold = idleThresholdMs ?? 5 * 60 * 1000;
  const list = h("ol", { class: "timeline", "aria-label": "Events in time order" });
  const start = events.length ? Date.parse(events[0].ts) : 0;
  let previous = null;
  for (const event of events) {
    const at = Date.parse(event.ts);
    if (previous !== null && at - previous >= threshold) {
      list.append(h("li", { class: "gap" }, `idle ${duration(at - previous)}`));
    }
    previous = at;
    list.append(renderEvent(trace.trace_id, event, at - start));
  }
  return events.length ? list : h("p", { class: "muted" }, "No events.");
}

function artifactButton(traceId, ref, label, asDiff) {
  const holder = h("div", {});
  holder.append(h("button", { type: "button", onclick: async () => {
    try {
      const text = await artifactText(traceId, ref.sha256);
      append(clear(holder), [asDiff ? diffBlock(text, label) : h("pre", { tabindex: "0", "aria-label": label }, text)]);
    } catch (error) {
      append(clear(holder), [h("p", { class: "bad" }, `${label}: ${error.message}`,
        error.url ? [" — ", h("a", { href: error.url, target: "_blank", rel: "noopener noreferrer" },
          `open ${label} directly`)] : null)]);
    }
  } }, `Show ${label}${ref.size === undefined ? "" : ` (${ref.size} bytes)`}`));
  return holder;
}

function renderEvent(traceId, event, offsetMs) {
  const p = event.payload ?? {};
  const body = [];
  switch (event.type) {
    case "file_edit":
      body.push(h("p", { class: "mono" }, `${p.change} ${p.old_path ? `${p.old_path} → ` : ""}${p.path}`,
        h("span", { class: "ok" }, ` +${p.lines_added}`), h("span", { class: "bad" }, ` −${p.lines_removed}`)));
      if (p.diff) body.push(diffBlock(p.diff, `diff of ${p.path}`));
      if (p.diff_ref) body.push(artifactButton(traceId, p.diff_ref, `diff of ${p.path}`, true));
      break;
    case "cmd_run": {
      const ok = p.exit_code === 0;
      body.push(h("pre", {}, `$ ${p.argv.join(" ")}`),
        h("p", {}, "exit ", h("span", { class: `badge ${ok ? "ok" : "bad"}`, "data-exit": p.exit_code }, p.exit_code),
          ` · ${duration(p.duration_ms)} · in ${p.cwd}`));
      if (p.stdout_ref) body.push(artifactButton(traceId, p.stdout_ref, "stdout", false));
      if (p.stderr_ref) body.push(artifactButton(traceId, p.stderr_ref, "stderr", false));
      break;
    }
    case "test_run":
      body.push(h("p", {}, `${p.framework}: `,
        h("span", { class: "ok" }, `${p.passed} passed`), ", ",
        h("span", { class: p.failed ? "bad" : "" }, `${p.failed} failed`),
        `, ${p.errors} errors, ${p.skipped} skipped`, p.outcome ? ` (${p.outcome})` : ""),
        h("pre", {}, `$ ${p.command.join(" ")}`));
      if (p.failing_tests?.length) body.push(h("ul", {}, p.failing_tests.map((t) => h("li", { class: "mono" }, t))));
      break;
    case "commit":
      body.push(h("p", { class: "mono" }, p.sha), h("pre", {}, p.message),
        h("p", {}, `files: ${(p.files ?? []).join(", ")}`));
      if (p.diff_ref) body.push(artifactButton(traceId, p.diff_ref, `diff of commit ${p.sha.slice(0, 12)}`, true));
      break;
    case "rationale_note":
      body.push(h("p", {}, h("strong", {}, `${p.kind}: `), p.text));
      break;
    default:
      body.push(h("pre", {}, JSON.stringify(p, null, 2)));
  }
  return h("li", { class: "event", id: `event-${event.event_id}`, tabindex: "-1", "data-type": event.type,
    "aria-label": `event ${event.seq}: ${event.type}` },
    h("div", { class: "event-head" },
      h("span", { class: "event-type" }, event.type.replace("_", " ")),
      h("time", { datetime: event.ts }, event.ts),
      h("span", { class: "muted" }, `+${duration(offsetMs)}`),
      h("span", { class: "muted mono" }, `#${event.seq} ${event.event_id}`)),
    body);
}

route();
