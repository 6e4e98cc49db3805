// LEQL box of Log Search: syntax colours under a transparent textarea, and completion of keys,
// raw-record paths, operators and clauses (Tab or Enter accepts, arrows choose, Escape closes).
"use strict";
const LEQL_CLAUSES = ["where", "groupby", "calculate", "having", "sort", "limit", "timeslice", "select"];
const LEQL_OPERATORS = ["AND", "OR", "NOT", "CONTAINS", "ICONTAINS", "STARTS-WITH", "ISTARTS-WITH",
  "CONTAINS-ANY", "ICONTAINS-ANY", "CONTAINS-ALL", "ICONTAINS-ALL", "STARTS-WITH-ANY",
  "ISTARTS-WITH-ANY", "IN", "IIN", "NOCASE", "IP", "count", "sum", "average", "max", "min", "unique"];
const LEQL_TOKEN = new RegExp([
  String.raw`("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\])*"?|'(?:\\.|[^'\\])*'?)`,
  String.raw`(\b(?:${LEQL_CLAUSES.join("|")}|nocase|ip)(?=\s*\())`,
  String.raw`((?:\b(?:I?CONTAINS|I?STARTS-WITH)(?:-ANY|-ALL)?|\bI?IN|\bAND|\bOR|\bNOT)\b|!=|>=|<=|=|<|>)`,
  String.raw`(\/(?:\\.|[^/\\])*\/[a-z]*)`,
  String.raw`(-?\b\d+(?:\.\d+)?(?:e-?\d+)?\b)`,
].join("|"), "gi");
const LEQL_CLASSES = ["str", "kw", "op", "re", "num"];

function leqlHighlight(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(LEQL_TOKEN)) {
    if (m.index > last) out.append(text.slice(last, m.index));
    const group = m.slice(1).findIndex((g) => g !== undefined);
    out.append(el("span", { class: `t-${LEQL_CLASSES[group]}`, text: m[0] }));
    last = m.index + m[0].length;
  }
  out.append(text.slice(last) + "\n");
  return out;
}

// Raw paths seen in recent events of the chosen log sets and names (sampled by the server),
// refreshed whenever the choice changes; ``into`` is the array the editor completes from, and
// ``learnt`` runs once it holds the new paths.
function leqlRawPaths(form, into, learnt) {
  let asked = 0;
  const learn = async () => {
    const params = new URLSearchParams(), mine = ++asked;
    // log_sets boxes are sent as log_set, log_names boxes as log_name.
    for (const box of $$('input[name^="log_"]:checked', form)) params.append(box.name.slice(0, -1), box.value);
    const answer = await api("GET", `/api/v1/raw-paths?${params}`);
    // Only the answer for the latest choice counts; an earlier one may arrive after it.
    if (answer.ok && mine === asked) {
      into.splice(0, into.length, ...answer.data.paths);
      learnt();
    }
  };
  form.addEventListener("change", (ev) => { if (ev.target.name === "log_sets" || ev.target.name === "log_names") learn(); });
  return learn();
}

function leqlEditor(textarea, keys, paths = []) {
  const wrap = el("div", { class: "leql" });
  const layer = el("pre", { "aria-hidden": "true" });
  const list = el("ul", { class: "suggest", id: "suggest", hidden: "" });
  textarea.replaceWith(wrap);
  wrap.append(layer, textarea, list);
  let choices = [], chosen = 0;

  const paint = () => { layer.replaceChildren(leqlHighlight(textarea.value)); layer.scrollTop = textarea.scrollTop; };
  const prefix = () => {
    const before = textarea.value.slice(0, textarea.selectionStart);
    return (before.match(/[A-Za-z_][\w.-]*$/) || [""])[0];
  };
  const close = () => { list.hidden = true; choices = []; };
  const render = () => {
    list.replaceChildren(...choices.map((word, i) => {
      const li = el("li", { text: word, class: i === chosen ? "on" : "" });
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); chosen = i; accept(); });
      return li;
    }));
    list.hidden = !choices.length;
  };
  const suggest = () => {
    const p = prefix().toLowerCase();
    const starts = (w) => w.toLowerCase().startsWith(p) && w.toLowerCase() !== p;
    // A raw path is found by the start of any of its segments too: "errorc" offers properties.status.errorCode.
    const inner = p.includes(".") ? [] : paths.filter((w) => !starts(w) && w.toLowerCase().split(".").slice(1).some((s) => s.startsWith(p)));
    choices = p ? [...[...LEQL_CLAUSES, ...LEQL_OPERATORS, ...keys, ...paths].filter(starts), ...inner].slice(0, 8) : [];
    chosen = 0;
    render();
  };
  function accept() {
    const p = prefix(), word = choices[chosen];
    const at = textarea.selectionStart;
    const tail = LEQL_CLAUSES.includes(word) ? "(" : "";
    textarea.value = textarea.value.slice(0, at - p.length) + word + tail + textarea.value.slice(at);
    textarea.selectionStart = textarea.selectionEnd = at - p.length + word.length + tail.length;
    close();
    paint();
  }
  textarea.addEventListener("input", () => { paint(); suggest(); });
  textarea.addEventListener("scroll", paint);
  textarea.addEventListener("blur", close);
  textarea.addEventListener("keydown", (ev) => {
    if (list.hidden) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      chosen = (chosen + (ev.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
      render();
    } else if ((ev.key === "Tab" || ev.key === "Enter") && !ev.ctrlKey && !ev.metaKey) accept();
    else if (ev.key === "Escape") close();
    else return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
  });
  const observer = new MutationObserver(paint);
  observer.observe(textarea, { attributes: true });
  textarea.addEventListener("change", paint);
  paint();
  // refresh: paths may arrive while the analyst is typing, so what is offered follows them.
  return { paint, refresh: () => { if (document.activeElement === textarea) suggest(); } };
}
